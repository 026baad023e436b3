"""``guanjia demo``: what ``make demo`` runs (stack, simulators, edge agent, cloud service)."""

from __future__ import annotations


def demo() -> None:
    """Start the whole system on this machine and print where to look."""
    raise NotImplementedError
