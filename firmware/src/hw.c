#include "hw.h"

#include <avr/interrupt.h>
#include <avr/io.h>
#include <avr/wdt.h>
#include <util/atomic.h>

#include "config.h"
#include "pins.h"

/* --- reset cause ------------------------------------------------------------------
 * MCUSR must be read and cleared, and the watchdog switched off, before anything
 * else runs: after a watchdog reset the watchdog stays enabled (WDRF forces WDE) and
 * would reset the board again during start-up.  .init3 runs before .data/.bss are
 * set up, so the copies live in .noinit.
 *
 * The Nano's bootloader (optiboot, version 4.6 and later) reads and clears MCUSR
 * itself and hands its value to the application in register r2, which the start-up code has not touched yet
 * here.  So when MCUSR reads 0, the copy in r2 is used (if it looks like reset flags:
 * no bits above the four defined ones); flashed without a bootloader, MCUSR is used. */
static uint8_t mcusr_at_boot __attribute__((section(".noinit")));
static uint8_t r2_at_boot __attribute__((section(".noinit")));

void hw_early_init(void) __attribute__((naked, used, section(".init3")));
void hw_early_init(void)
{
    uint8_t r2;
    __asm__ volatile("mov %0, r2" : "=r"(r2));
    r2_at_boot = r2;
    mcusr_at_boot = MCUSR;
    MCUSR = 0;
    wdt_disable();
}

uint8_t hw_reset_cause(void)
{
    /* docs/protocol.md 8.3: 0 POWER_ON, 1 WATCHDOG, 2 BROWN_OUT, 3 SOFTWARE,
     * 4 EXTERNAL.  Power-on wins (the other flags are meaningless then); no flag at
     * all means the program counter reached the reset vector without a reset. */
    const uint8_t known = _BV(PORF) | _BV(EXTRF) | _BV(BORF) | _BV(WDRF);
    uint8_t f = mcusr_at_boot;
    if (!f && !(r2_at_boot & (uint8_t)~known))
        f = r2_at_boot;
    if (f & _BV(PORF))
        return 0;
    if (f & _BV(BORF))
        return 2;
    if (f & _BV(EXTRF))
        return 4;
    if (f & _BV(WDRF))
        return 1;
    return 3;
}

/* --- 1 ms tick: timer 0 in CTC mode, 16 MHz / 64 / 250 ------------------------------ */
static volatile uint32_t millis;
static volatile uint8_t ticks;

ISR(TIMER0_COMPA_vect)
{
    millis++;
    ticks++;
}

uint32_t hw_millis(void)
{
    uint32_t m;
    ATOMIC_BLOCK(ATOMIC_RESTORESTATE) { m = millis; }
    return m;
}

uint8_t hw_take_ticks(void)
{
    uint8_t t;
    ATOMIC_BLOCK(ATOMIC_RESTORESTATE)
    {
        t = ticks;
        ticks = 0;
    }
    return t;
}

/* --- ADC: interrupt-driven, one sensor after the other ------------------------------ */
static volatile uint8_t adc_ch, adc_n;
static volatile uint16_t adc_sum;
static volatile uint16_t adc_sums[SENSORS];
static volatile uint8_t adc_done;

static void adc_select(uint8_t ch)
{
    /* AVcc reference: the dividers are fed from the same 5 V, so the reading is
     * ratiometric and the supply's tolerance cancels. */
    ADMUX = _BV(REFS0) | ch;
    adc_n = 0;
    adc_sum = 0;
}

ISR(ADC_vect)
{
    uint16_t v = ADC; /* read before the multiplexer changes */
    if (adc_n >= ADC_DISCARD)
        adc_sum += v;
    if (++adc_n < ADC_DISCARD + ADC_SUM_OF) {
        ADCSRA |= _BV(ADSC);
        return;
    }
    adc_sums[adc_ch] = adc_sum;
    if (++adc_ch >= SENSORS) {
        adc_done = 1;
        return;
    }
    adc_select(adc_ch);
    ADCSRA |= _BV(ADSC);
}

uint8_t hw_work_pending(void)
{
    return ticks || adc_done;
}

void adc_start(void)
{
    ATOMIC_BLOCK(ATOMIC_RESTORESTATE)
    {
        adc_done = 0;
        adc_ch = 0;
        adc_select(0);
        ADCSRA |= _BV(ADSC);
    }
}

uint8_t adc_result(uint16_t counts[SENSORS])
{
    if (!adc_done)
        return 0;
    for (uint8_t i = 0; i < SENSORS; i++) {
        uint16_t s;
        ATOMIC_BLOCK(ATOMIC_RESTORESTATE) { s = adc_sums[i]; }
        /* 16 conversions of a 10-bit ADC whose code k means k..k+1 LSB (datasheet:
         * ADC = Vin * 1024 / Vref): the mean voltage is (sum/16 + 0.5) LSB, and the
         * protocol's counts are 4095 * Vin / Vref, so
         * counts = 4095 * (sum + 8) / 16384, rounded.  Section 11.1. */
        uint32_t c = (((uint32_t)s + 8u) * COUNTS_FULL + 8192u) >> 14;
        counts[i] = c > COUNTS_FULL ? COUNTS_FULL : (uint16_t)c;
    }
    adc_done = 0;
    return 1;
}

/* --- pins --------------------------------------------------------------------------- */
uint8_t hw_cutout_open(uint8_t ch)
{
    return (CUTOUT_PIN & _BV(ch ? CUTOUT1_BIT : CUTOUT0_BIT)) ? 1 : 0;
}

void hw_drive(uint8_t ssr0, uint8_t ssr1, uint8_t relay)
{
    uint8_t v = OUT_PORT & (uint8_t)~(_BV(SSR0_BIT) | _BV(SSR1_BIT) | _BV(RELAY_BIT));
    if (relay) {
        v |= _BV(RELAY_BIT);
        if (ssr0)
            v |= _BV(SSR0_BIT);
        if (ssr1)
            v |= _BV(SSR1_BIT);
    }
    OUT_PORT = v;
    if (relay)
        DBG_PORT |= _BV(LED_BIT);
    else
        DBG_PORT &= (uint8_t)~_BV(LED_BIT);
}

void hw_busy(uint8_t on)
{
    if (on)
        DBG_PORT |= _BV(BUSY_BIT);
    else
        DBG_PORT &= (uint8_t)~_BV(BUSY_BIT);
}

void hw_init(void)
{
    OUT_PORT &= (uint8_t)~(_BV(SSR0_BIT) | _BV(SSR1_BIT) | _BV(RELAY_BIT));
    OUT_DDR |= _BV(SSR0_BIT) | _BV(SSR1_BIT) | _BV(RELAY_BIT);
    CUTOUT_PORT |= _BV(CUTOUT0_BIT) | _BV(CUTOUT1_BIT); /* pull-ups: open reads high */
    DBG_DDR |= _BV(BUSY_BIT) | _BV(LED_BIT);
    DIDR0 = 0x3F; /* A0..A5 analog only: no digital input buffer leakage (A6 has none) */

    TCCR0A = _BV(WGM01);             /* CTC */
    TCCR0B = _BV(CS01) | _BV(CS00);  /* clk / 64 = 250 kHz */
    OCR0A = (uint8_t)(F_CPU / 64UL / 1000UL - 1UL);
    TIMSK0 = _BV(OCIE0A);

    /* ADC clock 16 MHz / 128 = 125 kHz (50..200 kHz for full 10-bit accuracy):
     * 104 us per conversion, 7 x 17 conversions = 12.4 ms per reading. */
    ADCSRA = _BV(ADEN) | _BV(ADIE) | _BV(ADPS2) | _BV(ADPS1) | _BV(ADPS0);
}
