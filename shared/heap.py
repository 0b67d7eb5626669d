"""The cyclic garbage collector, set for a server once it has loaded what it serves.

A budgeted call allocates a few hundred container objects (dicts, lists, dataclasses)
that reference counting frees; CPython's cyclic collector still runs every 700 such
allocations, and about one run in a hundred is a full one that walks every object the
process holds: the ``anthropic`` SDK, pydantic's validators, the catalog. Measured on
the throughput benchmark (``scripts/bench_throughput.py``), that was 267 µs of collector
time per call, about 15 % of the call's CPU. After the warm-up, :func:`settle` moves
everything loaded so far out of the collector's sight (``gc.freeze``: none of it is
garbage) and lets the young generation grow larger before it is collected.
"""

from __future__ import annotations

import gc
import threading

# Container allocations between two young collections (CPython's default is 700). Objects
# that reference counting frees never count against it; only cycles wait this long.
YOUNG_THRESHOLD = 10_000

_settled = threading.Event()


def settle() -> None:
    """Freeze what is loaded and raise the young threshold (once per process)."""
    if _settled.is_set():
        return
    _settled.set()
    gc.freeze()
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(YOUNG_THRESHOLD, young), middle, old)


__all__ = ["YOUNG_THRESHOLD", "settle"]
