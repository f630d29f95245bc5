/*
 * Receive ring: 64 bytes, filled by the RX interrupt; the main loop empties it at least
 * once a millisecond (11.5 bytes arrive per millisecond at 115200 baud).  Transmit
 * ring: 256 bytes, enough for the largest burst the board sends at once (an ACK and an
 * IDENTITY, a FAULT and a TELEMETRY), drained by the data-register-empty interrupt.
 */
#include "uart.h"

#include <avr/interrupt.h>
#include <avr/io.h>
#include <util/atomic.h>

#include "config.h"

#define RX_SIZE 64u  /* power of two */
#define TX_SIZE 256u /* indices wrap as uint8_t */

static volatile uint8_t rx_ring[RX_SIZE];
static volatile uint8_t rx_head, rx_tail;
static volatile uint8_t tx_ring[TX_SIZE];
static volatile uint8_t tx_head, tx_tail;
volatile uint16_t uart_rx_overruns;

void uart_init(void)
{
    /* Double speed: UBRR = 16 gives 117647 baud (+2.1 %), the usual 115200 setting
     * at 16 MHz, within the tolerance of 8N1 receivers. */
    UCSR0A = _BV(U2X0);
    UBRR0 = (uint16_t)((F_CPU / (8UL * UART_BAUD)) - 1UL);
    UCSR0C = _BV(UCSZ01) | _BV(UCSZ00); /* 8N1 */
    UCSR0B = _BV(RXEN0) | _BV(TXEN0) | _BV(RXCIE0);
}

ISR(USART_RX_vect)
{
    uint8_t b = UDR0;
    uint8_t next = (uint8_t)((rx_head + 1u) & (RX_SIZE - 1u));
    if (next == rx_tail) {
        uart_rx_overruns++;
        return;
    }
    rx_ring[rx_head] = b;
    rx_head = next;
}

ISR(USART_UDRE_vect)
{
    if (tx_tail == tx_head) {
        UCSR0B &= (uint8_t)~_BV(UDRIE0);
        return;
    }
    UDR0 = tx_ring[tx_tail];
    tx_tail = (uint8_t)(tx_tail + 1u);
}

uint8_t uart_read(uint8_t *out)
{
    if (rx_tail == rx_head)
        return 0;
    *out = rx_ring[rx_tail];
    rx_tail = (uint8_t)((rx_tail + 1u) & (RX_SIZE - 1u));
    return 1;
}

uint8_t uart_available(void)
{
    return rx_tail != rx_head;
}

uint8_t uart_write(const uint8_t *data, uint8_t len)
{
    uint8_t head = tx_head;
    uint8_t used;
    ATOMIC_BLOCK(ATOMIC_RESTORESTATE) { used = (uint8_t)(head - tx_tail); }
    if ((uint16_t)used + len > TX_SIZE - 1u)
        return 0;
    while (len--) {
        tx_ring[head] = *data++;
        head = (uint8_t)(head + 1u);
    }
    ATOMIC_BLOCK(ATOMIC_RESTORESTATE)
    {
        tx_head = head;
        UCSR0B |= _BV(UDRIE0);
    }
    return 1;
}
