"""The README a newcomer follows: exactly two set-up commands (the demo, the tests), the
test command CI runs verbatim, and every `hydrotherm` command line it shows is one the
command line accepts."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from hydrotherm.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_exactly_two_set_up_commands() -> None:
    blocks = re.findall(r"```sh\n(.*?)```", README, re.S)
    assert len(blocks) == 2, blocks
    demo, tests = (b.strip() for b in blocks)
    assert demo.endswith(".venv/bin/hydrotherm demo") and "\n" not in demo
    assert tests.endswith(".venv/bin/python -m pytest") and "\n" not in tests
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()[-1]
    assert ci == tests  # CI runs the README's test command verbatim


SHOWN = sorted(set(re.findall(r"`\.venv/bin/hydrotherm ([^`.][^`]*)`", README)))


def test_the_readme_shows_the_venv_commands() -> None:
    assert "demo --speed 60 --tables 3" in SHOWN and "sim-status" in SHOWN
    assert any(c.startswith("events --table ") for c in SHOWN)
    assert "holds the terminal" in README or "keeps the terminal" in README


@pytest.mark.parametrize("line", SHOWN)
def test_every_command_shown_parses(line: str) -> None:
    build_parser().parse_args(shlex.split(line))
