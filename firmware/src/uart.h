/* UART0 at 115200 8N1 with interrupt-driven receive and transmit rings. */
#ifndef HYDROTHERM_UART_H
#define HYDROTHERM_UART_H

#include <stdint.h>

void uart_init(void);
/* Next received byte into *out; 0 when none is waiting. */
uint8_t uart_read(uint8_t *out);
/* 1 when a received byte is waiting (call with interrupts off to decide on sleeping). */
uint8_t uart_available(void);
/* Queue `len` bytes whole, or none of them (returns 0) if they do not fit. */
uint8_t uart_write(const uint8_t *data, uint8_t len);
/* Bytes lost because the receive ring was full (the main loop fell behind). */
extern volatile uint16_t uart_rx_overruns;

#endif
