/*
 * simhost: runs the compiled board firmware in simavr, in lock-step with a driver.
 *
 * The driver (sim/firmware/harness.py) owns the world outside the MCU: the plant, the
 * serial line, the clock.  It talks to this program over stdin/stdout, one text line
 * per request and per answer, so the MCU only ever runs when the driver says so and
 * everything happens on the MCU's own simulated time (avr->cycle at 16 MHz).
 *
 * Requests:
 *   step UNTIL_US R0 R1 R2 R3 R4 R5 R6 CUT0 CUT1 RXHEX
 *        Run until the MCU's clock reaches UNTIL_US microseconds since power-on.
 *        R0..R6: each sensor divider's node voltage (ADC0..ADC6: the four water
 *        sensors, plate 0, plate 1, room) as a fraction of the ADC reference, in parts
 *        per million (ratiometric: Vref cancels).  CUT0/1: cut-out read-back
 *        levels (1 = open).  RXHEX: bytes for the MCU's UART0 receiver, or "-".
 *   reset    pulse the RESET pin (MCUSR.EXTRF)
 *   power    remove and restore power (MCUSR.PORF; RAM contents lost)
 *   hang     make the main loop hang: the CPU is sent to an endless loop at the end
 *            of flash, interrupts stay as they were (the watchdog must catch it)
 *   peek ADDR LEN     read LEN bytes of data memory at ADDR (hex answer)
 *   stack FROM        bytes between FROM (the end of static data) and the top of RAM
 *                     that still hold the fill pattern: RAM the stack never reached
 *   quit
 * Options: --serial N (written to the EEPROM cell the firmware reads its serial number
 * from), --seed N (ADC noise), --adc-noise-lsb X, --watch ADDR:LEN (data memory to
 * report after every step, e.g. the firmware's `board` object).
 * Answer to step:
 *   ok CYCLE RELAY SSR0 SSR1 HEAT0 HEAT1 PINS BUSYMAX RXLEFT TXHEX
 *        CYCLE: the MCU clock now; RELAY, SSR0, SSR1: cycles each pin was high during
 *        the step; HEAT0/1: cycles SSRn and the relay were both high (heater powered
 *        if the element and cut-out are intact); PINS: levels now (bit 0 relay, 1
 *        SSR0, 2 SSR1); BUSYMAX: the longest main-loop pass so far, in cycles (the
 *        firmware raises PB0 while it works); RXLEFT: bytes not yet taken by the
 *        UART (its FIFO was full); TXHEX: bytes the UART sent, or "-"; then, with --watch, the watched bytes in hex.
 * Other requests answer "ok ..." or "err MESSAGE".
 *
 * The ADC: simavr converts millivolts with ADC = mV * 1023 / Vref.  A real ATmega328P
 * has ADC = floor(Vin * 1024 / Vref) plus about half an LSB of noise, which is what
 * makes oversampling work (docs/protocol.md 11.1).  So at every conversion start the
 * code a real ADC would give is computed here (with Gaussian noise, --adc-noise-lsb)
 * and handed to simavr as the millivolt value that yields exactly that code.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "avr_adc.h"
#include "avr_eeprom.h"
#include "avr_extint.h"
#include "avr_ioport.h"
#include "avr_uart.h"
#include "sim_avr.h"
#include "sim_elf.h"
#include "sim_irq.h"

#define VREF_MV 5000u
#define RX_MAX 4096
#define ADC_INPUTS 7

enum { PIN_RELAY, PIN_SSR0, PIN_SSR1, PIN_BUSY, PINS };

static avr_t *avr;
static FILE *out; /* the answers; stdout itself goes to stderr (simavr logs there) */
static double ratio[ADC_INPUTS]; /* sensor node / Vref */
static double noise_lsb = 0.5;
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint8_t level[PINS];
static avr_cycle_count_t since[PINS], on_cycles[PINS], heat_since[2], heat_cycles[2];
static avr_cycle_count_t busy_max, step_start;
static uint8_t heat_on[2];

static uint8_t rx_buf[RX_MAX];
static int rx_len, rx_pos;
static int uart_xoff;
static char tx_hex[2 * 65536 + 2];
static int tx_len;

static uint8_t cut_level[2];
static unsigned watch_addr, watch_len;
static avr_irq_t *cut_irq[2], *uart_in;

/* --- random numbers for the ADC noise ------------------------------------------------ */
static double uniform01(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return ((rng_state >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static double gauss(void)
{
    return sqrt(-2.0 * log(uniform01())) * cos(2.0 * M_PI * uniform01());
}

/* --- pins ------------------------------------------------------------------------------ */
static void heat_update(int ch, avr_cycle_count_t now)
{
    uint8_t on = level[PIN_RELAY] && level[ch ? PIN_SSR1 : PIN_SSR0];
    if (on == heat_on[ch])
        return;
    if (heat_on[ch])
        heat_cycles[ch] += now - (heat_since[ch] > step_start ? heat_since[ch] : step_start);
    heat_on[ch] = on;
    heat_since[ch] = now;
}

static void set_level(int pin, uint8_t v)
{
    avr_cycle_count_t now = avr->cycle;
    v = v ? 1 : 0;
    if (v == level[pin])
        return;
    if (level[pin]) {
        avr_cycle_count_t from = since[pin] > step_start ? since[pin] : step_start;
        on_cycles[pin] += now - from;
        if (pin == PIN_BUSY && now - since[pin] > busy_max)
            busy_max = now - since[pin];
    }
    level[pin] = v;
    since[pin] = now;
    heat_update(0, now);
    heat_update(1, now);
}

static void pin_changed(struct avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    set_level((int)(intptr_t)param, (uint8_t)value);
}

/* After a reset every output is an input again: the drivers' pull-downs switch off. */
static void outputs_released(void)
{
    for (int pin = 0; pin < PINS; pin++)
        set_level(pin, 0);
}

/* The cut-out read-back is driven from outside.  simavr 1.6 lets a pin's internal
 * pull-up win over a level raised on its IRQ, so the level is also registered as the
 * pin's "external" state, which its port logic honours on every PORT write. */
static void drive_cutouts(int force)
{
    avr_ioport_external_t ext = {.name = 'D', .mask = (1u << 2) | (1u << 3),
                                 .value = (unsigned)(cut_level[0] << 2 | cut_level[1] << 3)};
    avr_ioctl(avr, AVR_IOCTL_IOPORT_SET_EXTERNAL('D'), &ext);
    for (int ch = 0; ch < 2; ch++) {
        if (force) /* the IRQ filters repeats: make it see a change */
            avr_raise_irq(cut_irq[ch], !cut_level[ch]);
        avr_raise_irq(cut_irq[ch], cut_level[ch]);
    }
}

/* Every reset (the watchdog's too, which simavr performs by itself) releases the
 * outputs at once; the cut-out read-back wires keep the level the plant gives them (the
 * port's reset would otherwise forget the external level, and a cut-out still open at
 * boot would read closed). */
static void (*core_reset)(avr_t *a);

static void on_reset(avr_t *a)
{
    if (core_reset)
        core_reset(a);
    outputs_released();
    if (cut_irq[0])
        drive_cutouts(1);
}

/* --- ADC --------------------------------------------------------------------------------- */
static void adc_trigger(struct avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    (void)param;
    union {
        avr_adc_mux_t mux;
        uint32_t v;
    } e = {.v = value};
    if (e.mux.kind != ADC_MUX_SINGLE || e.mux.src >= ADC_INPUTS)
        return;
    int src = e.mux.src;
    double code = floor(1024.0 * ratio[src] + noise_lsb * gauss());
    if (code < 0)
        code = 0;
    if (code > 1023)
        code = 1023;
    /* the smallest mV for which simavr's mV * 1023 / Vref gives this code */
    uint32_t mv = (uint32_t)((code * VREF_MV + 1022) / 1023);
    avr_raise_irq(avr_io_getirq(avr, AVR_IOCTL_ADC_GETIRQ, ADC_IRQ_ADC0 + src), mv);
}

/* --- UART -------------------------------------------------------------------------------- */
static void uart_out(struct avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    (void)param;
    if (tx_len < (int)sizeof tx_hex - 3) {
        static const char hx[] = "0123456789ABCDEF";
        tx_hex[tx_len++] = hx[(value >> 4) & 15];
        tx_hex[tx_len++] = hx[value & 15];
    }
}

static void uart_xon(struct avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    (void)value;
    (void)param;
    uart_xoff = 0;
}

static void uart_xoff_cb(struct avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    (void)value;
    (void)param;
    uart_xoff = 1;
}

static void feed_uart(void)
{
    while (rx_pos < rx_len && !uart_xoff)
        avr_raise_irq(uart_in, rx_buf[rx_pos++]);
    if (rx_pos == rx_len)
        rx_pos = rx_len = 0;
}

/* --- the simulator ----------------------------------------------------------------------- */
static void no_sleep(avr_t *a, avr_cycle_count_t how_long)
{
    (void)a;
    (void)how_long; /* never wait for wall time: the driver paces the simulation */
}

static void watch_pin(char port, int bit, int pin)
{
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_IOPORT_GETIRQ(port), bit), pin_changed,
                            (void *)(intptr_t)pin);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void do_step(char *args)
{
    unsigned long long until_us;
    unsigned long r[ADC_INPUTS];
    unsigned c0, c1;
    char rxhex[8192];
    if (sscanf(args, "%llu %lu %lu %lu %lu %lu %lu %lu %u %u %8191s", &until_us, &r[0], &r[1],
               &r[2], &r[3], &r[4], &r[5], &r[6], &c0, &c1, rxhex) != 11) {
        fprintf(out, "err bad step request\n");
        return;
    }
    for (int i = 0; i < ADC_INPUTS; i++)
        ratio[i] = r[i] > 1000000ul ? 1.0 : r[i] / 1e6;
    if ((uint8_t)(c0 != 0) != cut_level[0] || (uint8_t)(c1 != 0) != cut_level[1]) {
        cut_level[0] = c0 != 0;
        cut_level[1] = c1 != 0;
        drive_cutouts(0);
    }
    if (strcmp(rxhex, "-") != 0) {
        for (size_t i = 0; rxhex[i] && rxhex[i + 1]; i += 2) {
            int hi = hexval(rxhex[i]), lo = hexval(rxhex[i + 1]);
            if (hi < 0 || lo < 0 || rx_len >= RX_MAX)
                break;
            rx_buf[rx_len++] = (uint8_t)(hi << 4 | lo);
        }
    }
    step_start = avr->cycle;
    memset(on_cycles, 0, sizeof on_cycles);
    memset(heat_cycles, 0, sizeof heat_cycles);
    tx_len = 0;
    avr_cycle_count_t target = (avr_cycle_count_t)until_us * (avr->frequency / 1000000u);
    while (avr->cycle < target) {
        feed_uart();
        int state = avr_run(avr);
        if (state == cpu_Done || state == cpu_Crashed) {
            fprintf(out, "err the MCU stopped (state %d) at pc 0x%04x\n", state, avr->pc);
            return;
        }
    }
    feed_uart();
    avr_cycle_count_t now = avr->cycle;
    for (int pin = 0; pin < PINS; pin++)
        if (level[pin])
            on_cycles[pin] += now - (since[pin] > step_start ? since[pin] : step_start);
    for (int ch = 0; ch < 2; ch++)
        if (heat_on[ch])
            heat_cycles[ch] += now - (heat_since[ch] > step_start ? heat_since[ch] : step_start);
    tx_hex[tx_len] = 0;
    fprintf(out, "ok %llu %llu %llu %llu %llu %llu %u %llu %d %s", (unsigned long long)now,
           (unsigned long long)on_cycles[PIN_RELAY], (unsigned long long)on_cycles[PIN_SSR0],
           (unsigned long long)on_cycles[PIN_SSR1], (unsigned long long)heat_cycles[0],
           (unsigned long long)heat_cycles[1],
           (unsigned)(level[PIN_RELAY] | level[PIN_SSR0] << 1 | level[PIN_SSR1] << 2),
           (unsigned long long)busy_max, rx_len - rx_pos, tx_len ? tx_hex : "-");
    if (watch_len) {
        fputc(' ', out);
        for (unsigned i = 0; i < watch_len; i++)
            fprintf(out, "%02X", avr->data[watch_addr + i]);
    }
    fputc('\n', out);
}

/* SRAM holds garbage at power-on; a known pattern instead shows how deep the stack
 * ever went (the start-up code only initialises .data and .bss). */
#define FILL 0xA5u

static void fill_ram(void)
{
    memset(avr->data + avr->ioend + 1, FILL, avr->ramend - avr->ioend);
}

static void do_stack(char *args)
{
    unsigned from;
    if (sscanf(args, "%u", &from) != 1 || from > avr->ramend) {
        fprintf(out, "err bad stack request\n");
        return;
    }
    unsigned n = 0;
    while (from + n <= avr->ramend && avr->data[from + n] == FILL)
        n++;
    fprintf(out, "ok %u\n", n);
}

static void do_reset(int power)
{
    avr_reset(avr);
    if (power) {
        /* RAM does not survive a power cut; the registers and I/O are reset anyway */
        fill_ram();
        avr_regbit_set(avr, avr->reset_flags.porf);
    } else {
        avr_regbit_set(avr, avr->reset_flags.extrf);
    }
    drive_cutouts(1);
    rx_len = rx_pos = 0; /* bytes on the wire during the reset are lost */
    fprintf(out, "ok\n");
}

static void do_hang(void)
{
    /* rjmp .-2 (0xCFFF) in the last flash word, which the firmware does not use */
    uint32_t at = avr->flashend - 1;
    avr->flash[at] = 0xFF;
    avr->flash[at + 1] = 0xCF;
    if (avr->codeend < avr->flashend)
        avr->codeend = avr->flashend;
    avr->pc = at;
    fprintf(out, "ok\n");
}

static void do_peek(char *args)
{
    unsigned addr, len;
    if (sscanf(args, "%u %u", &addr, &len) != 2 || addr + len > (unsigned)avr->ramend + 1u) {
        fprintf(out, "err bad peek request\n");
        return;
    }
    fprintf(out, "ok ");
    for (unsigned i = 0; i < len; i++)
        fprintf(out, "%02X", avr->data[addr + i]);
    fprintf(out, "\n");
}

int main(int argc, char **argv)
{
    out = fdopen(dup(1), "w");
    dup2(2, 1);
    const char *elf = NULL;
    long serial = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--serial") && i + 1 < argc)
            serial = strtol(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            rng_state ^= strtoull(argv[++i], NULL, 0) * 0x2545F4914F6CDD1Dull;
        else if (!strcmp(argv[i], "--watch") && i + 1 < argc) {
            if (sscanf(argv[++i], "%u:%u", &watch_addr, &watch_len) != 2)
                watch_len = 0;
        } else if (!strcmp(argv[i], "--adc-noise-lsb") && i + 1 < argc)
            noise_lsb = strtod(argv[++i], NULL);
        else
            elf = argv[i];
    }
    if (!elf) {
        fprintf(stderr, "usage: simhost [--serial N] [--seed N] [--adc-noise-lsb X] FIRMWARE.elf\n");
        return 2;
    }
    elf_firmware_t fw;
    memset(&fw, 0, sizeof fw);
    if (elf_read_firmware(elf, &fw) != 0) {
        fprintf(stderr, "simhost: cannot read %s\n", elf);
        return 1;
    }
    avr = avr_make_mcu_by_name("atmega328p");
    if (!avr) {
        fprintf(stderr, "simhost: simavr has no atmega328p\n");
        return 1;
    }
    avr_init(avr);
    if (watch_addr + watch_len > (unsigned)avr->ramend + 1u) {
        fprintf(stderr, "simhost: --watch outside data memory\n");
        return 2;
    }
    fw.frequency = 16000000;
    fw.vcc = fw.avcc = fw.aref = VREF_MV;
    avr_load_firmware(avr, &fw);
    fill_ram();
    avr->sleep = no_sleep;
    core_reset = avr->reset;
    avr->reset = on_reset;
    avr->log = 0;
    if (serial >= 0) {
        uint8_t ee[4] = {(uint8_t)serial, (uint8_t)(serial >> 8), (uint8_t)(serial >> 16),
                         (uint8_t)(serial >> 24)};
        avr_eeprom_desc_t d = {.ee = ee, .offset = 0, .size = 4};
        avr_ioctl(avr, AVR_IOCTL_EEPROM_SET, &d);
    }
    watch_pin('D', 7, PIN_RELAY);
    watch_pin('D', 4, PIN_SSR0);
    watch_pin('D', 5, PIN_SSR1);
    watch_pin('B', 0, PIN_BUSY);
    /* INT0/INT1 share the cut-out pins; the firmware leaves them disabled, but
     * simavr would poll a low level on them every few cycles, stopping the MCU from
     * sleeping.  Plain edge/level semantics are what the real chip has. */
    avr_extint_set_strict_lvl_trig(avr, 0, 0);
    avr_extint_set_strict_lvl_trig(avr, 1, 0);
    cut_irq[0] = avr_io_getirq(avr, AVR_IOCTL_IOPORT_GETIRQ('D'), 2);
    cut_irq[1] = avr_io_getirq(avr, AVR_IOCTL_IOPORT_GETIRQ('D'), 3);
    drive_cutouts(1);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_ADC_GETIRQ, ADC_IRQ_OUT_TRIGGER),
                            adc_trigger, NULL);
    uart_in = avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_INPUT);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUTPUT),
                            uart_out, NULL);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XON),
                            uart_xon, NULL);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XOFF),
                            uart_xoff_cb, NULL);
    /* no console echo of the UART, and no wall-clock sleeping when the firmware polls */
    uint32_t f = 0;
    avr_ioctl(avr, AVR_IOCTL_UART_SET_FLAGS('0'), &f);

    setvbuf(out, NULL, _IOLBF, 0);
    fprintf(out, "ready %u %u\n", avr->frequency, (unsigned)avr->ramend);
    static char line[16384];
    while (fgets(line, sizeof line, stdin)) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        if (!strncmp(line, "step ", 5))
            do_step(line + 5);
        else if (!strcmp(line, "reset"))
            do_reset(0);
        else if (!strcmp(line, "power"))
            do_reset(1);
        else if (!strcmp(line, "hang"))
            do_hang();
        else if (!strncmp(line, "peek ", 5))
            do_peek(line + 5);
        else if (!strncmp(line, "stack ", 6))
            do_stack(line + 6);
        else if (!strcmp(line, "quit"))
            break;
        else
            fprintf(out, "err unknown request\n");
    }
    return 0;
}
