"""Request and token rate limits: the generic cell rate algorithm, shared by every store.

Each store keeps one number per limit (the theoretical arrival time) and updates it in the
same atomic write as the budget reservation; this module is the arithmetic.
"""

from __future__ import annotations

from shared.store.base import RateLimit

GCRA_PERIOD_S = 60.0


def gcra(tat: float | None, now: float, rate: RateLimit) -> tuple[bool, float, float]:
    """Generic cell rate algorithm: (allowed, new theoretical arrival time, retry after).

    Chosen over a token bucket because its whole state is one number (the theoretical
    arrival time), so a store can update it with one conditional write.
    """
    interval = GCRA_PERIOD_S / max(1, rate.limit_per_minute)
    new_tat = max(tat or now, now) + rate.cost * interval
    if new_tat - now > GCRA_PERIOD_S:
        return False, tat or now, new_tat - now - GCRA_PERIOD_S
    return True, new_tat, 0.0


def gcra_remaining(tat: float, now: float, rate: RateLimit) -> int:
    """Units still available right now after the bucket reached ``tat``."""
    interval = GCRA_PERIOD_S / max(1, rate.limit_per_minute)
    return max(0, int((GCRA_PERIOD_S - max(0.0, tat - now)) / interval))
