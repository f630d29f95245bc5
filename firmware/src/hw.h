/* The board's hardware below the protocol: clock tick, ADC, pins, reset cause. */
#ifndef HYDROTHERM_HW_H
#define HYDROTHERM_HW_H

#include <stdint.h>

void hw_init(void);

/* Milliseconds since boot (wraps after 49.7 days, as uptime_ms does). */
uint32_t hw_millis(void);
/* Millisecond ticks since the last call (the main loop's heartbeat). */
uint8_t hw_take_ticks(void);

/* 1 when an interrupt left work for the main loop (a tick, a finished reading). */
uint8_t hw_work_pending(void);

/* Start one oversampled reading of the seven sensors (section 11.1, ~12.4 ms): four in
 * the water, one per heater plate, one in the room. */
void adc_start(void);
/* 1 and the seven 12-bit counts once the reading started last has finished. */
uint8_t adc_result(uint16_t counts[7]);

/* The bimetal cut-out read-back: 1 = open (also a broken read-back wire). */
uint8_t hw_cutout_open(uint8_t ch);
/* Drive the SSRs and the master relay (1 = on / closed). */
void hw_drive(uint8_t ssr0, uint8_t ssr1, uint8_t relay);
void hw_busy(uint8_t on);

/* Reset cause of this boot, as docs/protocol.md 8.3 numbers it. */
uint8_t hw_reset_cause(void);

#endif
