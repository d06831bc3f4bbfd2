import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import cast

import pytest
from django.core.cache import cache
from django.db import transaction
from django.test import Client
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from vetting.models import Criterion, Rubric, RubricCategory
from vetting.rubric_spec import DEFAULT_SPECIALTY, build_rubric, load_spec

# Hypothesis's timing checks (a deadline per example, "input generation is slow") measure the machine as
# much as the code: on two shared cores one draw can wait seconds for a core. The properties are what the
# tests assert; how fast they run is the benchmarks' business (bench/). Tests may still set their own.
hypothesis_settings.register_profile("vetted", deadline=None, suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.load_profile("vetted")

# mutmut (`make mutation`) sets MUTANT_UNDER_TEST in every pytest run it starts, and starts one run per
# mutant, each in a fork of the same server process. pytest-django would create, migrate and drop a test
# database in each of them. Under mutmut the suite uses one database of its own (`<name>_mutants`) instead, which
# the runs that check the suite unmutated ("stats", then "" for the clean run) create or migrate, and which
# the mutant runs only point at: their tests still roll back, and TransactionTestCase-style tests still
# flush, exactly as they do on pytest-django's own database.
if "MUTANT_UNDER_TEST" in os.environ:

    @pytest.fixture(scope="session")
    def django_db_setup(django_test_environment, django_db_blocker) -> Iterator[None]:
        from django.conf import settings
        from django.db import connection, connections

        test = connection.settings_dict["TEST"]
        if not test["NAME"]:  # the second run in the same process finds it set
            test["NAME"] = f"{connection.settings_dict['NAME']}_mutants"
        if os.environ["MUTANT_UNDER_TEST"] in {"stats", ""}:
            with django_db_blocker.unblock():
                connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=True)
        else:
            settings.DATABASES["default"]["NAME"] = connection.settings_dict["NAME"] = test["NAME"]
        # A fresh database has what the migrations installed until the session's transactional tests flush
        # it, and pytest-django runs those last; this one is kept, so the previous run may have flushed it.
        with django_db_blocker.unblock():
            shipped_rubric()
        yield
        # Nothing is left open for a process forked after this run (mutmut's "fork" isolation forks the
        # process that ran the unmutated suite): a fork must not share a connection's socket with its parent.
        connections.close_all()
        if connection.vendor == "postgresql":
            connection.close_pool()  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _clear_cache(settings) -> None:
    backend = settings.CACHES["default"]["BACKEND"]
    if backend.endswith("RedisCache"):
        # Not cache.clear(): that flushes the whole Redis database, broker queues included.
        client = cache._cache.get_client(write=True)  # type: ignore[attr-defined]
        for key in client.scan_iter(match=f"{settings.CACHES['default']['KEY_PREFIX']}:*"):
            client.delete(key)
    else:
        cache.clear()


@pytest.fixture(autouse=True)
def _fresh_rate_limits(settings):
    """Rate-limit counters live in the cache; each test starts with none."""
    _clear_cache(settings)
    yield
    _clear_cache(settings)


@pytest.fixture(autouse=True)
def _fresh_channel_layer() -> Iterator[None]:
    """Each test gets its own channel layer object. A server process has one event loop for its life, but each
    async test has its own: a test that ends with a consumer's receive still pending leaves the shared layer's
    receive lock held by a loop that is gone, and every later test that receives would fail on it."""
    yield
    forget_channel_layers()


def forget_channel_layers() -> None:
    """The next use of the channel layer builds a new one. A test that runs several event loops one after another
    (each Hypothesis example under its own `asyncio.run`) calls it before each: a layer's locks belong to one loop."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()


@pytest.fixture
def csrf_client() -> Client:
    """A browser: CSRF is enforced the way it is for real traffic."""
    return Client(enforce_csrf_checks=True)


def csrf_token(client: Client) -> str:
    response = client.get("/api/auth/csrf")
    return str(response.json()["csrf_token"])


def shipped_rubric() -> Rubric:
    """The shipped rubric. Installed by a migration, and again here if a transactional test flushed it."""
    existing = Rubric.objects.filter(specialty=DEFAULT_SPECIALTY).order_by("version").first()
    if existing is not None:
        return existing
    return cast(
        Rubric,
        build_rubric(
            load_spec(),
            version=1,
            created_by_id=None,
            rubric_model=Rubric,
            category_model=RubricCategory,
            criterion_model=Criterion,
        ),
    )


@pytest.fixture
def rubric(db) -> Rubric:
    return shipped_rubric()


@pytest.fixture(autouse=True, scope="session")
def _tests_enqueue_apart():
    """Tasks that tests enqueue go to a queue of their own, emptied at the end, never to a running dev worker."""
    from marketplace.celery import app as celery_app

    celery_app.conf.task_default_queue = "vetted-tests"
    yield
    with celery_app.connection_for_write() as connection:
        connection.default_channel.queue_purge("vetted-tests")


@contextmanager
def rolled_back() -> Iterator[None]:
    """Run the block in a transaction, then roll it back (its on-commit hooks never run)."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


@pytest.fixture(autouse=True)
def _fresh_stripe_gateway():
    """The breaker and bulkhead are per process: no test inherits another's open circuit, nor the event
    ids another test stored (and rolled back)."""
    from payments import gateway
    from payments.services.webhooks import stored_event_ids

    gateway.reset()
    stored_event_ids.clear()
    yield
    gateway.reset()
    stored_event_ids.clear()
