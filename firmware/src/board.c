#include "board.h"

#include <avr/eeprom.h>
#include <stddef.h>
#include <string.h>

#include "config.h"
#include "frame.h"
#include "hw.h"

/* Message types (section 6), ACK status (7), flags (8.1) and inputs (8.2). */
enum {
    T_HELLO = 0x01, T_SET_OUTPUTS, T_SET_RELAY, T_CLEAR_FAULTS, T_GET_IDENTITY,
    T_ACK = 0x80, T_IDENTITY, T_TELEMETRY, T_FAULT
};
enum { S_OK, S_BAD_LENGTH, S_BAD_VALUE, S_UNKNOWN_TYPE, S_INCOMPATIBLE_VERSION, S_REFUSED };
#define F_DEADMAN(ch) ((uint16_t)(0x0001u << (ch)))
#define F_LIMIT_HOT(ch) ((uint16_t)(0x0004u << (ch)))
#define F_LIMIT_SENSOR(ch) ((uint16_t)(0x0010u << (ch)))
#define F_CUTOUT(ch) ((uint16_t)(0x0040u << (ch)))
#define F_RESET 0x0100u
#define F_LIMIT_PLATE(ch) ((uint16_t)(0x0200u << (ch)))
#define F_ALL 0x07FFu
/* Flags that hold a channel's setting at 0 while latched. */
#define F_HOLDS_ZERO(ch) (F_LIMIT_HOT(ch) | F_LIMIT_SENSOR(ch) | F_LIMIT_PLATE(ch))
#define IN_RELAY_CLOSED 0x01u
#define IN_CUTOUT_OPEN(ch) ((uint8_t)(0x02u << (ch)))

/* Layout promised in board.h (a negative array size fails the build). */
typedef char board_layout_check[(offsetof(struct board, faults) == 4
                                 && offsetof(struct board, relay_closed) == 6
                                 && offsetof(struct board, host_minor) == 9
                                 && offsetof(struct board, adc) == 10
                                 && offsetof(struct board, hot_run) == 24
                                 && offsetof(struct board, plate_run) == 28
                                 && offsetof(struct board, refreshed_ms) == 30
                                 && offsetof(struct board, commands_rejected) == 34
                                 && sizeof(struct board) == 36) ? 1 : -1];

struct board board;

static const uint8_t payload_len[6] = {0, 2, 4, 1, 2, 0}; /* by host TYPE 1..5 */

/* The last command received, for duplicate detection (section 5): its SEQ, TYPE and
 * PAYLOAD (every CRC-valid frame, carried out or rejected), the status it got and whether
 * an IDENTITY followed the ACK. */
static uint8_t last_valid, last_seq, last_type, last_len, last_status, last_identity;
static uint8_t last_payload[FRAME_MAX_PAYLOAD];
static uint16_t window_pos;
static uint32_t serial_number;

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)v);
    put16(p + 2, (uint16_t)(v >> 16));
}

static uint16_t applied(uint8_t ch)
{
    return board.relay_closed ? board.setting[ch] : 0;
}

static void send_ack(uint8_t seq, uint8_t status)
{
    uint8_t p[2] = {seq, status};
    frame_send(T_ACK, p, sizeof p);
}

static void send_identity(void)
{
    uint8_t p[14];
    p[0] = PROTO_MAJOR;
    p[1] = PROTO_MINOR;
    p[2] = FW_MAJOR;
    p[3] = FW_MINOR;
    p[4] = FW_PATCH;
    put32(p + 5, serial_number);
    put32(p + 9, hw_millis());
    p[13] = board.reset_cause;
    frame_send(T_IDENTITY, p, sizeof p);
}

/* Latch `bits`; newly raised ones open the relay and go out in one FAULT (9.6). */
static void raise_flags(uint16_t bits)
{
    uint16_t fresh = bits & (uint16_t)~board.faults;
    if (!fresh)
        return;
    board.faults |= bits;
    board.relay_closed = 0;
    hw_drive(0, 0, 0); /* now, not at the next tick */
    uint8_t p[4];
    put16(p, fresh);
    put16(p + 2, board.faults);
    frame_send(T_FAULT, p, sizeof p);
}

void board_boot(uint8_t reset_cause)
{
    memset(&board, 0, sizeof board);
    board.reset_cause = reset_cause;
    board.faults = F_RESET; /* no FAULT for it: nobody can be listening yet */
    last_valid = 0;
    window_pos = 0; /* the windows run back to back from boot (9.2) */
    uint32_t s = eeprom_read_dword((const uint32_t *)EEPROM_SERIAL_ADDR);
    serial_number = (s == 0xFFFFFFFFUL) ? SERIAL_DEFAULT : s;
}

void board_tick(uint8_t elapsed_ms)
{
    uint32_t now = hw_millis();
    /* Dead-man (9.3): act no later than DEADMAN_MS after the last refresh. */
    if ((board.setting[0] || board.setting[1]) && now - board.refreshed_ms >= DEADMAN_MS) {
        uint16_t bits = 0;
        for (uint8_t ch = 0; ch < CHANNELS; ch++) {
            if (board.setting[ch]) {
                board.setting[ch] = 0;
                bits |= F_DEADMAN(ch);
            }
        }
        raise_flags(bits);
    }
    /* Time-proportioned SSRs (9.2): window k covers uptime [k, k + 1) x WINDOW_MS, the
     * same for both channels; a channel is on while the time since its window started
     * is below applied/1000 of the window.  `applied` is compared on every tick, so a
     * change in mid-window acts at once on the same window. */
    window_pos = (uint16_t)((window_pos + elapsed_ms) % WINDOW_MS);
    uint16_t on0 = (uint16_t)((uint32_t)applied(0) * WINDOW_MS / 1000u);
    uint16_t on1 = (uint16_t)((uint32_t)applied(1) * WINDOW_MS / 1000u);
    hw_drive(window_pos < on0, window_pos < on1, board.relay_closed);
}

/* A consecutive-sample counter one higher, stopping at 255 ("at least", 9.4). */
static uint8_t run_up(uint8_t n)
{
    return n < 255u ? (uint8_t)(n + 1u) : n;
}

static uint8_t at_rail(uint16_t c)
{
    return c <= RAIL_LOW_MAX || c >= RAIL_HIGH_MIN;
}

void board_sample(uint32_t uptime_ms, const uint16_t counts[SENSORS])
{
    uint16_t raised = 0;
    uint8_t cutout[CHANNELS] = {hw_cutout_open(0), hw_cutout_open(1)};
    memcpy(board.adc, counts, sizeof board.adc);
    for (uint8_t ch = 0; ch < CHANNELS; ch++) {
        uint16_t a = counts[2 * ch], b = counts[2 * ch + 1];
        uint8_t a_rail = at_rail(a), b_rail = at_rail(b);
        /* Two independent counters (9.4).  A sensor at a rail is broken, never hot (a
         * short reads like boiling water), and it does not hide the other sensor's hot
         * reading. */
        uint8_t hot = (!a_rail && a < HOT_BELOW_COUNTS) || (!b_rail && b < HOT_BELOW_COUNTS);
        board.rail_run[ch] = (a_rail || b_rail) ? run_up(board.rail_run[ch]) : 0;
        board.hot_run[ch] = hot ? run_up(board.hot_run[ch]) : 0;
        uint16_t bits = 0;
        /* A broken sensor only forces a channel that is still driven (9.4). */
        if (board.rail_run[ch] >= LIMIT_SAMPLES && board.setting[ch])
            bits |= F_LIMIT_SENSOR(ch);
        if (board.hot_run[ch] >= LIMIT_SAMPLES)
            bits |= F_LIMIT_HOT(ch);
        /* The plate limit (9.7): a plate sensor clear of the rails above 60 °C, whatever
         * the setting.  A plate sensor at a rail is broken, never hot: the bimetal
         * cut-out still guards that plate. */
        uint16_t pl = counts[SENSOR_PLATE0 + ch];
        board.plate_run[ch] = (!at_rail(pl) && pl < PLATE_HOT_BELOW_COUNTS)
                                  ? run_up(board.plate_run[ch]) : 0;
        if (board.plate_run[ch] >= LIMIT_SAMPLES)
            bits |= F_LIMIT_PLATE(ch);
        if (bits)
            board.setting[ch] = 0;
        if (cutout[ch])
            bits |= F_CUTOUT(ch);
        raised |= bits;
    }
    raise_flags(raised);

    board.inputs = (board.relay_closed ? IN_RELAY_CLOSED : 0)
                   | (cutout[0] ? IN_CUTOUT_OPEN(0) : 0) | (cutout[1] ? IN_CUTOUT_OPEN(1) : 0);
    /* The 1.0 layout (19 bytes), and the 1.1 fields after it (25 bytes) for a host that
     * said minor >= 1 in its HELLO: a 1.0 host ignores a TELEMETRY of another length. */
    uint8_t p[25];
    put32(p, uptime_ms);
    for (uint8_t i = 0; i < WATER_SENSORS; i++)
        put16(p + 4 + 2 * i, counts[i]);
    put16(p + 12, applied(0));
    put16(p + 14, applied(1));
    p[16] = board.inputs;
    put16(p + 17, board.faults);
    for (uint8_t i = 0; i < 3; i++)
        put16(p + 19 + 2 * i, counts[SENSOR_PLATE0 + i]);
    frame_send(T_TELEMETRY, p, board.host_minor >= 1 ? 25u : 19u);
}

/* A flag's cause has gone (8.1) unless its condition held on the latest sample. */
static void clear_flags(uint16_t mask)
{
    uint16_t persisting = 0;
    for (uint8_t ch = 0; ch < CHANNELS; ch++) {
        if (board.hot_run[ch])
            persisting |= F_LIMIT_HOT(ch);
        if (board.rail_run[ch])
            persisting |= F_LIMIT_SENSOR(ch);
        if (board.plate_run[ch])
            persisting |= F_LIMIT_PLATE(ch);
        if (hw_cutout_open(ch))
            persisting |= F_CUTOUT(ch);
    }
    board.faults &= (uint16_t)~(mask & F_ALL & (uint16_t)~persisting);
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | ((uint16_t)p[1] << 8));
}

/* Carry out one new command; returns its ACK status.  *identity is set when an
 * IDENTITY must follow the ACK. */
static uint8_t execute(uint8_t type, const uint8_t *p, uint8_t len, uint8_t *identity)
{
    if (type < T_HELLO || type > T_GET_IDENTITY)
        return S_UNKNOWN_TYPE;
    if (len != payload_len[type])
        return S_BAD_LENGTH;
    switch (type) {
    case T_HELLO:
        *identity = 1;
        if (p[0] != PROTO_MAJOR)
            return S_INCOMPATIBLE_VERSION;
        board.host_minor = p[1]; /* the telemetry layout this host reads */
        return S_OK;
    case T_GET_IDENTITY:
        *identity = 1;
        return S_OK;
    case T_SET_OUTPUTS: {
        uint16_t v[2] = {get16(p), get16(p + 2)};
        if (v[0] > 1000u || v[1] > 1000u)
            return S_BAD_VALUE;
        for (uint8_t ch = 0; ch < CHANNELS; ch++)
            board.setting[ch] = (board.faults & F_HOLDS_ZERO(ch)) ? 0 : v[ch];
        board.refreshed_ms = hw_millis();
        board_tick(0); /* a change acts at once, in the current window (9.2) */
        return S_OK;
    }
    case T_SET_RELAY:
        if (p[0] > 1u)
            return S_BAD_VALUE;
        if (p[0] && board.faults)
            return S_REFUSED;
        board.relay_closed = p[0];
        board_tick(0); /* switch now, not at the next tick */
        return S_OK;
    default: /* T_CLEAR_FAULTS */
        clear_flags(get16(p));
        return S_OK;
    }
}

void frame_accepted(uint8_t seq, uint8_t type, const uint8_t *payload, uint8_t len)
{
    if (last_valid && seq == last_seq && type == last_type && len == last_len
        && memcmp(payload, last_payload, len) == 0) {
        /* A retransmission (section 5): the same answer as the first time, and nothing
         * carried out again except what is idempotent (the dead-man refresh of an
         * accepted SET_OUTPUTS, a fresh IDENTITY if the first answer had one). */
        if (type == T_SET_OUTPUTS && last_status == S_OK)
            board.refreshed_ms = hw_millis();
        send_ack(seq, last_status);
        if (last_identity)
            send_identity();
        return;
    }
    /* Every CRC-valid frame, carried out or rejected, is the last command. */
    last_valid = 1;
    last_seq = seq;
    last_type = type;
    last_len = len;
    memcpy(last_payload, payload, len);
    last_identity = 0;
    last_status = execute(type, payload, len, &last_identity);
    if (last_status != S_OK)
        board.commands_rejected++;
    send_ack(seq, last_status);
    if (last_identity)
        send_identity();
}
