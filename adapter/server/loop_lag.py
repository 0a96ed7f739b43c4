"""Event-loop lag: how late a timer fires, the symptom of work that blocks the loop.

Every request and the relist share one thread, so a callback that runs for 100 ms delays
every request by up to 100 ms. A probe sleeps `interval` again and again and records how
much later than asked it woke; a stall of S seconds shows as a lateness of at least
S - interval. Exported as `prometheus_adapter_event_loop_lag_seconds`.
"""

import asyncio
import time
from collections.abc import Callable

__all__ = ["PROBE_INTERVAL", "watch_loop_lag"]

PROBE_INTERVAL = 0.02


async def watch_loop_lag(
    observe: Callable[[float], None], interval: float = PROBE_INTERVAL
) -> None:
    """Call `observe(lateness_seconds)` after every probe, forever (until cancelled)."""
    clock = time.perf_counter
    while True:
        due = clock() + interval
        await asyncio.sleep(interval)
        observe(max(0.0, clock() - due))
