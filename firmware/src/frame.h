/*
 * Framing (docs/protocol.md sections 2 to 4): the receiver that finds frames in the
 * byte stream exactly as the reference codec does, and the encoder for board frames.
 */
#ifndef HYDROTHERM_FRAME_H
#define HYDROTHERM_FRAME_H

#include <stdint.h>

#define FRAME_SOF0 0xA5u
#define FRAME_SOF1 0x5Au
#define FRAME_MAX_PAYLOAD 64u
#define FRAME_OVERHEAD 7u

/* Diagnostics, as the reference receiver counts them (section 4). */
struct frame_counters {
    uint16_t frames;
    uint16_t crc_errors;
    uint16_t oversized;
    uint16_t discarded_bytes;
};

extern struct frame_counters frame_counters;

/* Called by the receiver for every CRC-valid frame (defined by the message layer). */
void frame_accepted(uint8_t seq, uint8_t type, const uint8_t *payload, uint8_t len);

/* The receiver works in small steps so that no pass of the main loop takes long,
 * whatever arrives on the line: feed a byte only while frame_rx_wants_byte(), and call
 * frame_rx_work() while it returns non-zero.  Frames are delivered to
 * frame_accepted() as they are found. */
uint8_t frame_rx_wants_byte(void);
void frame_rx_byte(uint8_t byte);
/* One step of the section 4 loop; returns RX_IDLE (needs a byte), RX_MORE (call again)
 * or RX_CHECKED (a candidate's CRC was computed: the expensive step; call again). */
uint8_t frame_rx_work(void);
enum { RX_IDLE = 0, RX_MORE = 1, RX_CHECKED = 2 };

/* Forget a partly received frame (boot). */
void frame_rx_reset(void);

/* CRC-16/CCITT-FALSE over `len` bytes, continuing from `crc` (start with 0xFFFF). */
uint16_t frame_crc(uint16_t crc, const uint8_t *data, uint8_t len);

/* Queue one whole board frame with the next board SEQ; returns 0 if the transmit
 * buffer had no room (the frame is dropped whole, its SEQ still used: the host
 * counts it as lost). */
uint8_t frame_send(uint8_t type, const uint8_t *payload, uint8_t len);

#endif
