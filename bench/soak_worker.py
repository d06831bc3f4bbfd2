"""The project's Celery app, traced by tracemalloc from its first import: bench/bench_soak.py's worker only."""

from bench import soak_probe

soak_probe.install("worker")

from marketplace.celery import app

__all__ = ["app"]
