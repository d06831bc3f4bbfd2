"""The Celery application.

Configuration lives in settings under the CELERY_ namespace (JSON only, late
acknowledgement, prefetch of one, time limits, the beat schedule). Tasks use
`VettedTask` (Celery's `DjangoTask`), so callers enqueue with `task.delay_on_commit(...)`:
a task whose transaction rolls back is never sent, and one whose broker is down when its
transaction commits is logged and counted, never an error for the caller, because the work
it was sent for has committed and the periodic sweep named by its `recovered_by` re-drives
it (docs/operations.md, "When the broker is down").
"""

import functools
import logging
import os
from typing import Any

from celery import Celery
from celery.contrib.django.task import DjangoTask
from celery.signals import worker_init, worker_process_init
from django.db import transaction

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings")

logger = logging.getLogger(__name__)


class VettedTask(DjangoTask):
    """A task sent after its caller's transaction commits, which a broker outage cannot turn into an error.

    `recovered_by` names the beat schedule entry whose sweep re-drives the task's work
    from the database when its message is lost: the broker down at publish, or
    unreachable for longer than `CELERY_TASK_PUBLISH_RETRY_POLICY` waits. A task sent
    on commit must name one (`tests/marketplace/test_task_publishing.py` checks).
    """

    recovered_by: str | None = None

    def delay_on_commit(self, *args: Any, **kwargs: Any) -> None:
        transaction.on_commit(functools.partial(self.publish_or_leave_to_sweep, args, kwargs))

    def publish_or_leave_to_sweep(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        """Send the task now; if the broker cannot take it, log, count and leave it to `recovered_by`.

        Returns whether it was sent. Runs after the commit, so the caller's work stands
        either way and the caller must not see an error for it.
        """
        try:
            self.apply_async(args, kwargs)
        except Exception:
            from marketplace import metrics

            metrics.task_publish_failures.labels(task=self.name).inc()
            logger.exception("task.publish_failed", extra={"task": self.name, "recovered_by": self.recovered_by})
            return False
        return True


app = Celery("vetted", task_cls=VettedTask)
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
