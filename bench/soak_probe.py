"""tracemalloc inside a process that bench/bench_soak.py starts: a snapshot on SIGUSR2, for the bench to compare.

Imported only by the bench's own entry points (bench/soak_asgi.py, bench/soak_worker.py);
the product's entry points (marketplace.asgi, marketplace.celery) never import it, so a
deployed process has no such handler and traces nothing. Each SIGUSR2 collects garbage,
then writes `<SOAK_PROBE_DIR>/<name>-<n>.snapshot` (tracemalloc's own format) and, last,
`<name>-<n>.json` with what tracemalloc cannot see from outside: the channel layer's
receive buffer. n counts the signals from 0.
"""

import gc
import json
import os
import signal
import tracemalloc
from pathlib import Path
from types import FrameType


def install(name: str) -> None:
    directory = Path(os.environ["SOAK_PROBE_DIR"])
    tracemalloc.start(int(os.environ.get("SOAK_TRACEMALLOC_FRAMES", "1")))
    taken = 0

    def snapshot(signum: int, frame: FrameType | None) -> None:
        nonlocal taken
        from channels.layers import channel_layers

        gc.collect()
        stem = directory / f"{name}-{taken}"
        tracemalloc.take_snapshot().dump(f"{stem}.snapshot")
        layer = channel_layers.backends.get("default")
        facts = {
            "receive_buffer": len(getattr(layer, "receive_buffer", ())),
            "traced_kib": tracemalloc.get_traced_memory()[0] // 1024,
        }
        Path(f"{stem}.json.tmp").write_text(json.dumps(facts))
        Path(f"{stem}.json.tmp").rename(f"{stem}.json")  # the bench waits for this name: written whole
        taken += 1

    signal.signal(signal.SIGUSR2, snapshot)
