"""The project's ASGI app, traced by tracemalloc from its first import: bench/bench_soak.py's server only."""

from bench import soak_probe

soak_probe.install("server")

from marketplace.asgi import application

__all__ = ["application"]
