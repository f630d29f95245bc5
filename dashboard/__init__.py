"""Therapist dashboard (issue 5)."""
