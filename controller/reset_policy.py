"""Who may reset which trip: the one place that says it.

A trip is reset by a person, and the supervisor then judges whether its cause has gone.
Some causes cannot be shown to have gone while the master relay is open (a welded
solid-state relay, the board's hot-water limit, a bimetal cut-out): those will need a
named service person rather than the therapist at the table (issue 9, part 3).  Every
screen that offers a reset — the dashboard's button, Home Assistant's button entity, the
``reset_allowed`` fields of the MQTT state — asks ``therapist_may_reset`` and nothing
else, so making a reason service-only is a change to ``SERVICE_ONLY`` alone.

Today the set is empty: the service reset path does not exist yet, and a trip nobody can
reset would leave a table unusable.  Tests pass their own set to show the wiring.
"""

from __future__ import annotations

from collections.abc import Iterable

#: Trip reasons a therapist may not reset (they need a service person).
SERVICE_ONLY: frozenset[str] = frozenset()


def therapist_may_reset(reason: str, service_only: Iterable[str] = SERVICE_ONLY) -> bool:
    """True when a therapist may ask to reset a trip with this reason."""
    return reason not in frozenset(service_only)
