"""Shared fixtures: configuration, the in-process harness, and real ptys."""

from __future__ import annotations

import pytest

from hydrotherm.config import Config
from sim.harness import InProcessHarness


@pytest.fixture
def cfg() -> Config:
    return Config()


@pytest.fixture
def harness(cfg: Config) -> InProcessHarness:
    return InProcessHarness(cfg, seed=1)


@pytest.fixture
def connected(harness: InProcessHarness) -> InProcessHarness:
    harness.connect()
    return harness
