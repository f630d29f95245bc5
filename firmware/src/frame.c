/*
 * The receiver keeps at most one candidate frame (71 bytes) and runs the loop of
 * docs/protocol.md section 4 to completion before it takes the next byte.  That gives
 * the same frames and counters as running it on any larger chunk, because each step
 * depends only on the buffer's contents.  After a failed candidate exactly one byte
 * (the A5 of its start marker) is dropped, so a frame that starts inside a damaged one
 * is found.  The loop runs one step per call, so the main loop can interleave its
 * other duties between the CRC checks of a burst of false candidates: 71 bytes of
 * line noise can hold over twenty of them.
 */
#include "frame.h"

#include <string.h>
#include <util/crc16.h>

#include "uart.h"

#define BUF_SIZE (FRAME_OVERHEAD + FRAME_MAX_PAYLOAD)

struct frame_counters frame_counters;

static uint8_t rx_buf[BUF_SIZE];
static uint8_t rx_len;
static uint8_t settled = 1; /* the loop has run to completion on rx_buf */
static uint8_t tx_seq;

uint16_t frame_crc(uint16_t crc, const uint8_t *data, uint8_t len)
{
    /* _crc_xmodem_update is polynomial 0x1021, not reflected: with the initial value
     * 0xFFFF that is CRC-16/CCITT-FALSE (check value 0x29B1). */
    while (len--)
        crc = _crc_xmodem_update(crc, *data++);
    return crc;
}

static void discard(uint8_t n)
{
    rx_len -= n;
    memmove(rx_buf, rx_buf + n, rx_len);
    frame_counters.discarded_bytes += n;
}

void frame_rx_reset(void)
{
    rx_len = 0;
    settled = 1;
    tx_seq = 0;
}

uint8_t frame_rx_wants_byte(void)
{
    return settled;
}

void frame_rx_byte(uint8_t byte)
{
    /* Room is guaranteed: the receiver only asks for a byte while it waits for the
     * rest of a candidate of at most BUF_SIZE bytes (step 2 or 4). */
    rx_buf[rx_len++] = byte;
    settled = 0;
}

uint8_t frame_rx_work(void)
{
    if (settled)
        return RX_IDLE;
    /* 1. search for the start marker */
    uint8_t i = 0;
    while (i + 1u < rx_len && !(rx_buf[i] == FRAME_SOF0 && rx_buf[i + 1] == FRAME_SOF1))
        i++;
    if (i + 1u >= rx_len) {
        /* no marker: keep only a final A5 (the first half of a marker) */
        if (rx_len && rx_buf[rx_len - 1] == FRAME_SOF0)
            discard(rx_len - 1);
        else
            discard(rx_len);
        settled = 1;
        return RX_IDLE;
    }
    if (i)
        discard(i);
    /* 2. wait for the header */
    if (rx_len < 5) {
        settled = 1;
        return RX_IDLE;
    }
    /* 3. LEN check */
    uint8_t len = rx_buf[2];
    if (len > FRAME_MAX_PAYLOAD) {
        frame_counters.oversized++;
        discard(1);
        return RX_MORE;
    }
    /* 4. wait for the whole candidate */
    uint8_t total = FRAME_OVERHEAD + len;
    if (rx_len < total) {
        settled = 1;
        return RX_IDLE;
    }
    /* 5. CRC over LEN, SEQ, TYPE, PAYLOAD; sent low byte first */
    uint16_t crc = frame_crc(0xFFFF, rx_buf + 2, 3u + len);
    uint16_t got = rx_buf[5 + len] | ((uint16_t)rx_buf[6 + len] << 8);
    if (crc != got) {
        frame_counters.crc_errors++;
        discard(1);
        return RX_CHECKED;
    }
    /* 6. accept */
    frame_counters.frames++;
    frame_accepted(rx_buf[3], rx_buf[4], rx_buf + 5, len);
    rx_len -= total;
    memmove(rx_buf, rx_buf + total, rx_len);
    return RX_CHECKED;
}

uint8_t frame_send(uint8_t type, const uint8_t *payload, uint8_t len)
{
    uint8_t frame[BUF_SIZE];
    frame[0] = FRAME_SOF0;
    frame[1] = FRAME_SOF1;
    frame[2] = len;
    frame[3] = tx_seq++;
    frame[4] = type;
    memcpy(frame + 5, payload, len);
    uint16_t crc = frame_crc(0xFFFF, frame + 2, 3u + len);
    frame[5 + len] = (uint8_t)crc;
    frame[6 + len] = (uint8_t)(crc >> 8);
    return uart_write(frame, FRAME_OVERHEAD + len);
}
