/*
 * Pin assignment of the reference board (Arduino Nano / ATmega328P); docs/hardware.md
 * shows the same table with the circuit around each pin.
 *
 *   PD0/PD1 (D0/D1)  UART RX/TX to the host (the Nano's USB serial)
 *   PD2 (D2)         cut-out 0 read-back, input with pull-up: high = cut-out open
 *   PD3 (D3)         cut-out 1 read-back, likewise
 *   PD4 (D4)         SSR 0 drive (cushion 0 heater), high = on
 *   PD5 (D5)         SSR 1 drive (cushion 1 heater), high = on
 *   PD7 (D7)         master relay driver, high = closed
 *   PB0 (D8)         busy: high while the main loop works (a scope shows loop time)
 *   PB5 (D13)        LED: on while the master relay is closed
 *   PC0..PC3 (A0-A3) NTC dividers: cushion 0 primary, redundant; cushion 1 primary,
 *                    redundant
 *   PC4, PC5 (A4/A5) NTC dividers on heater plate 0 and plate 1 (protocol 1.1)
 *   ADC6 (A6)        NTC divider of the room sensor (protocol 1.1; analog-only pin)
 *
 * All outputs are low (off) from reset until the firmware drives them; the relay and
 * SSR drivers have pull-downs, so a board in reset or with a blank MCU heats nothing.
 */
#ifndef HYDROTHERM_PINS_H
#define HYDROTHERM_PINS_H

#include <avr/io.h>

#define CUTOUT_PORT PORTD
#define CUTOUT_PIN PIND
#define CUTOUT0_BIT PD2
#define CUTOUT1_BIT PD3

#define OUT_PORT PORTD
#define OUT_DDR DDRD
#define SSR0_BIT PD4
#define SSR1_BIT PD5
#define RELAY_BIT PD7

#define DBG_PORT PORTB
#define DBG_DDR DDRB
#define BUSY_BIT PB0
#define LED_BIT PB5

#endif
