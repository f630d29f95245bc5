"""Hydrotherm: shared pieces (configuration, clock, command line) used by every part."""

__version__ = "0.1.0"
