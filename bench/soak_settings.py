"""The project's settings without the request metrics middleware: bench/bench_soak.py's baseline for their cost."""

from marketplace.settings import *  # noqa: F403
from marketplace.settings import MIDDLEWARE

MIDDLEWARE = [name for name in MIDDLEWARE if name != "marketplace.metrics.RequestMetricsMiddleware"]
