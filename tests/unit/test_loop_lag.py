import asyncio
import time

from adapter.server.loop_lag import watch_loop_lag
from adapter.tasks import cancel_and_wait


async def test_a_blocked_loop_shows_as_lateness() -> None:
    observed: list[float] = []
    first = asyncio.Event()

    def observe(lateness: float) -> None:
        observed.append(lateness)
        first.set()

    task = asyncio.create_task(watch_loop_lag(observe, interval=0.001))
    await first.wait()
    time.sleep(0.1)  # block the loop, as a long callback would
    while len(observed) < 3:
        await asyncio.sleep(0)
    await cancel_and_wait([task])
    assert max(observed) >= 0.09
    assert min(observed) >= 0.0
