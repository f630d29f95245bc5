"""Number formatting shared by the progress line, the estimates and the report.
"""

from __future__ import annotations

import math

# --- formatting helpers ------------------------------------------------------------------------


def hms(seconds: float) -> str:
    s = int(round(max(0.0, seconds)))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def fmt_c(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f} °C"


def fmt_g(v: float) -> str:
    if not math.isfinite(v):
        return str(v)
    return f"{v:.3g}" if abs(v) < 1e5 else f"{v:.0f}"
