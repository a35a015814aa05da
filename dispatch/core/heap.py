"""The process's heap and Python's cyclic collector.

One rule for every long-running process of the hub: once what it keeps for its life is loaded,
collect once and freeze it (`settle_heap`), so that no full collection walks it again.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)

# Seconds after the start when the heap is settled a second time (see settle_heap).
SETTLE_AGAIN_S = 30.0


def settle_heap() -> None:
    """Collect once, then freeze what the process holds (gc.freeze): the web worker after its
    start, the process that owns MQTT when the ingest bridge attaches.

    The app, its settings, translations, compiled statements and the township's geometry live as
    long as the process; left in the collector's oldest generation, each full collection walked
    all of them: 125-215 ms pauses with a prefecture loaded (about 300,000 objects), landing on
    whichever request was running. Frozen, they are never walked again; objects made later
    (requests, readings) are collected as before. What is frozen is not freed by the cycle
    collector, so this runs after start-up only (twice: see SETTLE_AGAIN_S), each time on a heap
    with its garbage collected first.
    """
    gc.collect()
    gc.freeze()
    log.debug("heap settled: %s objects frozen", gc.get_freeze_count())
