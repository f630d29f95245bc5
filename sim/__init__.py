"""Simulated heater board, thermal plant, fault injection and scenarios."""
