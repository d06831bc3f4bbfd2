import pytest
from django.core.cache import cache
from django.test import Client


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


@pytest.fixture
def csrf_client() -> Client:
    """A browser: CSRF is enforced the way it is for real traffic."""
    return Client(enforce_csrf_checks=True)


def csrf_token(client: Client) -> str:
    response = client.get("/api/auth/csrf")
    return str(response.json()["csrf_token"])
