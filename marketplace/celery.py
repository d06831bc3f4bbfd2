"""The Celery application.

Configuration lives in settings under the CELERY_ namespace (JSON only, late
acknowledgement, prefetch of one, time limits, the beat schedule). Tasks use
`DjangoTask`, so callers enqueue with `task.delay_on_commit(...)`: a task whose
transaction rolls back is never sent.
"""

import os
from typing import Any

from celery import Celery
from celery.signals import worker_init, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings")

app = Celery("vetted", task_cls="celery.contrib.django.task:DjangoTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Connects the signals that carry the request id from the web process into tasks.
import marketplace.tracing  # noqa: E402, F401


@worker_process_init.connect(dispatch_uid="telemetry.worker_process")
def _trace_in_pool_process(**kwargs: Any) -> None:
    # A prefork pool's child: set up after the fork, so the span exporter's thread lives in it.
    from marketplace import telemetry

    telemetry.setup(default_service_name="vetted-worker")


@worker_init.connect(dispatch_uid="telemetry.worker")
def _trace_in_worker(sender: Any = None, **kwargs: Any) -> None:
    # The solo, thread and green pools run tasks in the worker's own process, which no fork follows.
    from celery.concurrency import get_implementation
    from celery.concurrency.prefork import TaskPool

    from marketplace import telemetry

    if sender is not None and get_implementation(sender.pool_cls) is not TaskPool:
        telemetry.setup(default_service_name="vetted-worker")
