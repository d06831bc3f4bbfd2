"""The Celery application.

Configuration lives in settings under the CELERY_ namespace (JSON only, late
acknowledgement, prefetch of one, time limits, the beat schedule). Tasks use
`DjangoTask`, so callers enqueue with `task.delay_on_commit(...)`: a task whose
transaction rolls back is never sent.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings")

app = Celery("vetted", task_cls="celery.contrib.django.task:DjangoTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Connects the signals that carry the request id from the web process into tasks.
import marketplace.tracing  # noqa: E402, F401
