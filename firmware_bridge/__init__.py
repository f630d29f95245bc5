"""Host side of the serial link to the heater board: wire protocol, ADC conversion, link."""
