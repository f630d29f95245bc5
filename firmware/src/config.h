/*
 * Fixed numbers of the reference board: protocol version, timing, limits, pins.
 *
 * Every number here is the default of the matching configuration key in the host
 * (hydrotherm/config.py, [board] and [sensor]); docs/protocol.md sections 9 and 11 say
 * why they are what they are.  They are compile-time constants on purpose: a board's
 * safety behaviour must not be changeable over the wire.  Override one for a special
 * build with `make CFLAGS_EXTRA=-DDEADMAN_MS=2000`.
 */
#ifndef HYDROTHERM_CONFIG_H
#define HYDROTHERM_CONFIG_H

#define PROTO_MAJOR 1
#define PROTO_MINOR 1 /* 1.1: plate and room sensors, the plate limit */

#ifndef FW_MAJOR
#define FW_MAJOR 1
#endif
#ifndef FW_MINOR
#define FW_MINOR 1
#endif
#ifndef FW_PATCH
#define FW_PATCH 0
#endif

/* Serial number used while the EEPROM cell (EEPROM_SERIAL_ADDR, u32 little-endian)
 * is erased (0xFFFFFFFF); `make SERIAL=1234` changes the build-time default. */
#ifndef SERIAL_DEFAULT
#define SERIAL_DEFAULT 1UL
#endif
#define EEPROM_SERIAL_ADDR 0

#ifndef TELEMETRY_PERIOD_MS
#define TELEMETRY_PERIOD_MS 200u  /* [board] telemetry_period_s; at most 250 */
#endif
#ifndef DEADMAN_MS
#define DEADMAN_MS 3000u          /* [board] deadman_s; at most 3000 */
#endif
#ifndef WINDOW_MS
#define WINDOW_MS 2000u           /* [board] window_s: time-proportioning window */
#endif
#ifndef LIMIT_SAMPLES
#define LIMIT_SAMPLES 4u          /* [board] limit_samples */
#endif

/* 12-bit counts (docs/protocol.md 9.4, 11).  Hotter is fewer counts.
 * 42.0 °C is 1345.50 counts with the default parts, so "hot" is counts < 1346. */
#define COUNTS_FULL 4095u
#define HOT_BELOW_COUNTS 1346u
#define RAIL_LOW_MAX 40u          /* counts <= 40.95: shorted */
#define RAIL_HIGH_MIN 4055u       /* counts >= 4054.05: open */
/* Plate limit (protocol 1.1, docs/protocol.md 9.7): 60.0 °C is 815.37 counts, so a plate
 * sensor clear of the rails is "hot" at counts < 816.  60 °C is 3 K above the hottest
 * healthy plate (40 °C water, 360 W into 21 W/K: 57.0 °C). */
#define PLATE_HOT_BELOW_COUNTS 816u

/* ADC oversampling (docs/protocol.md 11.1): per sensor and sample, one conversion
 * after the multiplexer switches is thrown away, then 16 are summed. */
#define ADC_DISCARD 1u
#define ADC_SUM_OF 16u
#define WATER_SENSORS 4u          /* A0..A3: two per cushion */
#define SENSORS 7u                /* + A4, A5: plate 0, plate 1; A6: room (protocol 1.1) */
#define SENSOR_PLATE0 4u
#define SENSOR_ROOM 6u
#define CHANNELS 2u

#define UART_BAUD 115200UL

#endif
