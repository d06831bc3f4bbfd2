"""The project's settings, middleware and all, serving bench/hello_urls.py: bench/bench_api.py's baseline."""

from marketplace.settings import *  # noqa: F403

ROOT_URLCONF = "bench.hello_urls"
