/*
 * The board's behaviour (docs/protocol.md sections 5 to 9): commands and their ACKs,
 * duplicate detection, outputs and the master relay, the dead-man, the board-side
 * limits, cut-outs, latched flags, TELEMETRY and FAULT.  No hardware access except
 * through hw.h, and no dynamic memory.
 */
#ifndef HYDROTHERM_BOARD_H
#define HYDROTHERM_BOARD_H

#include <stdint.h>

/* Everything a debugger (or the simulator, tests/test_firmware.py) may want to see, in
 * one object with a fixed layout (the AVR packs structs byte by byte; offsets are
 * checked at compile time in board.c and read by sim/firmware/harness.py):
 *   0 setting[2] u16, 4 faults u16, 6 relay_closed u8, 7 reset_cause u8, 8 inputs u8,
 *   9 host_minor u8 (the minor version of the last accepted HELLO: the telemetry
 *   layout), 10 adc[7] u16 (water 0..3, plate 0, plate 1, room), 24 hot_run[2] u8,
 *   26 rail_run[2] u8, 28 plate_run[2] u8, 30 refreshed_ms u32 (the last dead-man
 *   refresh), 34 commands_rejected u16 (commands answered with another status than OK;
 *   a retransmission is not judged again). */
struct board {
    uint16_t setting[2];
    uint16_t faults;
    uint8_t relay_closed;
    uint8_t reset_cause;
    uint8_t inputs;
    uint8_t host_minor;
    uint16_t adc[7];
    uint8_t hot_run[2];
    uint8_t rail_run[2];
    uint8_t plate_run[2];
    uint32_t refreshed_ms;
    uint16_t commands_rejected;
};

extern struct board board;

void board_boot(uint8_t reset_cause);
/* Every millisecond: the dead-man timer and the time-proportioned SSR outputs. */
void board_tick(uint8_t elapsed_ms);
/* One sample of all sensors taken at `uptime_ms`: limits, cut-outs, TELEMETRY. */
void board_sample(uint32_t uptime_ms, const uint16_t counts[7]);

#endif
