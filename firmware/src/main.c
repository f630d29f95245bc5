/*
 * Hydrotherm reference heater board firmware (ATmega328P, 16 MHz).
 *
 * The main loop sleeps until an interrupt (the 1 ms tick, a received byte, the ADC),
 * then does what is due: parse received bytes, run the dead-man and the SSR windows,
 * start a sensor reading every telemetry period and report it when it is done.  The
 * watchdog is reset once per pass, so a loop that hangs resets the board (reported as
 * reset cause WATCHDOG) and every output goes off with the reset.
 */
#include <avr/interrupt.h>
#include <avr/sleep.h>
#include <avr/wdt.h>

#include "board.h"
#include "config.h"
#include "frame.h"
#include "hw.h"
#include "uart.h"

int main(void)
{
    hw_init();
    uart_init();
    frame_rx_reset();
    board_boot(hw_reset_cause());
    /* 120 ms: far above the longest pass of the loop (a few hundred microseconds),
     * far below anything thermal. */
    wdt_enable(WDTO_120MS);
    set_sleep_mode(SLEEP_MODE_IDLE);
    sei();

    /* The first sample is taken at once and reported before any command is handled
     * (9.6): a command already waiting stays in the UART's ring until then.  With a
     * bimetal cut-out open, that sample's FAULT goes out first, as SEQ 0. */
    uint16_t counts[SENSORS];
    adc_start();
    while (!adc_result(counts))
        wdt_reset();
    board_tick(hw_take_ticks());
    board_sample(0, counts);

    uint32_t next_sample = TELEMETRY_PERIOD_MS;
    uint32_t sample_at = 0;
    uint8_t sampling = 0;
    for (;;) {
        hw_busy(1);
        wdt_reset();
        /* Receive: at most one CRC check per pass, so a burst of false start markers
         * cannot hold up the dead-man, the SSR windows or the sampling. */
        for (;;) {
            uint8_t r = frame_rx_work();
            if (r == RX_CHECKED)
                break;
            if (r == RX_MORE)
                continue;
            uint8_t byte;
            if (!uart_read(&byte))
                break;
            frame_rx_byte(byte);
        }
        uint8_t ticks = hw_take_ticks();
        if (ticks)
            board_tick(ticks);
        uint32_t now = hw_millis();
        if (!sampling && (int32_t)(now - next_sample) >= 0) {
            sample_at = next_sample;
            next_sample += TELEMETRY_PERIOD_MS;
            adc_start();
            sampling = 1;
        }
        if (sampling && adc_result(counts)) {
            sampling = 0;
            board_sample(sample_at, counts);
        }
        hw_busy(0);
        /* Sleep until the next interrupt, unless there is work already.  Checked with
         * interrupts off, and sei immediately followed by sleep is atomic on the AVR,
         * so an interrupt after the check still wakes the loop. */
        cli();
        if (!uart_available() && !hw_work_pending() && frame_rx_wants_byte()) {
            sleep_enable();
            sei();
            sleep_cpu();
            sleep_disable();
        }
        sei();
    }
}
