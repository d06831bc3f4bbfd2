"""Django settings for Vetted, read only from environment variables.

With nothing set, the embedded default runs on one machine with no servers:
SQLite, the in-memory channel layer, local-memory cache and a filesystem Celery
broker. DATABASE_URL and REDIS_URL move it onto PostgreSQL and Redis. The README
lists every variable.
"""

import importlib.util
import warnings
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
import django_stubs_ext
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from marketplace.env import (
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_optional_str,
    env_str,
)
from marketplace.pool import IdleCheck

# Lets generic annotations such as ModelAdmin[User] work at run time, not only under mypy.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VETTED_VAR_DIR", str(BASE_DIR / "var")))

DJANGO_ENV = env_choice("DJANGO_ENV", "development", ("development", "production"))
PRODUCTION = DJANGO_ENV == "production"

_DEV_SECRET_KEY = "dev-only-secret-key-not-for-production"  # noqa: S105 - refused in production
SECRET_KEY = env_str("SECRET_KEY", _DEV_SECRET_KEY)
DEBUG = env_bool("DEBUG", not PRODUCTION)
# asyncio's debug mode in server processes: a callback that holds the event loop longer than
# ASYNCIO_SLOW_CALLBACK_SECONDS is logged by `asyncio` ("Executing ... took 0.3 seconds").
ASYNCIO_DEBUG = env_bool("ASYNCIO_DEBUG", DEBUG)
# asyncio's own default (0.1 s) fires on one-off warm-ups (first imports and connections) on a busy machine.
ASYNCIO_SLOW_CALLBACK_SECONDS = env_float("ASYNCIO_SLOW_CALLBACK_SECONDS", 0.25, minimum=0.001)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

if PRODUCTION:
    if DEBUG:
        raise ImproperlyConfigured("DEBUG must be false when DJANGO_ENV=production")
    if SECRET_KEY == _DEV_SECRET_KEY or len(SECRET_KEY) < 50:
        raise ImproperlyConfigured("SECRET_KEY must be set to a random value of at least 50 characters in production")
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("ALLOWED_HOSTS must name the hosts this service answers for in production")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "ninja",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "marketplace",
    "accounts",
    "vetting",
    "hiring_requests",
    "conversations",
    "payments",
    "reviews",
    "web",
    "django_htmx",
]
# Development tools (dev_tools: seed_demo, demo, screenshots, stripe_double) live in the repository,
# not in the wheel (pyproject.toml), so the app is installed only where it can be imported: a
# production install from the wheel starts without it.
if importlib.util.find_spec("dev_tools") is not None:
    INSTALLED_APPS.append("dev_tools")

MIDDLEWARE = [
    "marketplace.tracing.RequestIdMiddleware",
    # Times every request by its route pattern (marketplace.metrics).
    "marketplace.metrics.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    # Under /api/: refuses an unknown Vetted-Version before anything runs, and names the version on
    # every response, the JSON errors of the next middleware included (marketplace.versions).
    "marketplace.versions.ApiVersionMiddleware",
    # Under /api/, errors Django produces itself (unknown path, 405, 413, 500) become JSON; inside the
    # header middleware above, so those responses carry the security headers too.
    "marketplace.errors.ApiErrorsMiddleware",
    # Right after security, before anything that reads sessions or the database: assets cost nothing.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Which staff members proved a second factor (TOTP) in this session (django-otp).
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "marketplace.db.DatabaseGuardMiddleware",
    # Failed admin logins, counted per address and per account (marketplace.admin_login).
    "marketplace.admin_login.AdminLoginLimitMiddleware",
    # RateLimit-* fields for requests a throttle counted (marketplace.throttling); above the next
    # one, so a 304 carries them too.
    "marketplace.throttling.RateLimitHeadersMiddleware",
    # Last, nearest the view: ETag and 304 for API reads, and per-user Cache-Control and Vary
    # (marketplace.conditional); every middleware above adds its headers to the 304 as well.
    "marketplace.conditional.ApiConditionalGetMiddleware",
]

ROOT_URLCONF = "marketplace.urls"
ASGI_APPLICATION = "marketplace.asgi.application"
AUTH_USER_MODEL = "accounts.User"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "web.context.bell",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------

DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'vetted.sqlite3'}")
_database = dj_database_url.parse(DATABASE_URL, conn_max_age=0)
DATABASE_POOL_CHECK_IDLE_SECONDS = env_float("DATABASE_POOL_CHECK_IDLE_SECONDS", 1.0, minimum=0.0)
if _database["ENGINE"] == "django.db.backends.postgresql":
    # Every connection carries its own deadlines, so nothing waits on PostgreSQL for ever:
    # a statement, a row lock, or a transaction left open by a stuck request.
    _pg_guards = {
        "statement_timeout": env_int("DATABASE_STATEMENT_TIMEOUT_MS", 15_000, minimum=0),
        "lock_timeout": env_int("DATABASE_LOCK_TIMEOUT_MS", 3_000, minimum=0),
        "idle_in_transaction_session_timeout": env_int("DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS", 30_000, minimum=0),
        # JIT compiles a query's expressions when its estimated cost is high; for the ranking query that
        # costs ~100 ms per call and saves nothing (docs/benchmarks.md). Off unless asked for.
        "jit": "on" if env_bool("DATABASE_JIT", False) else "off",
    }
    # The pool checks a connection before handing it out (psycopg_pool's check_connection, one empty
    # round trip) and replaces a dead one: after PostgreSQL restarts, every idle pooled connection is
    # dead, and without the check each would fail one request before the pool noticed. It checks only
    # a connection last lent DATABASE_POOL_CHECK_IDLE_SECONDS ago or more (marketplace.pool says why).
    _pool_check = IdleCheck(DATABASE_POOL_CHECK_IDLE_SECONDS)
    _database["OPTIONS"] = {
        "connect_timeout": env_int("DATABASE_CONNECT_TIMEOUT", 5, minimum=1),
        "options": " ".join(f"-c {name}={value}" for name, value in _pg_guards.items()),
        "pool": {
            "min_size": env_int("DATABASE_POOL_MIN_SIZE", 1, minimum=0),
            "max_size": env_int("DATABASE_POOL_MAX_SIZE", 10, minimum=1),
            "timeout": env_float("DATABASE_POOL_TIMEOUT", 5.0, minimum=0.1),
            # How long the pool retries one failed connection attempt (with exponential backoff) before it
            # gives up and starts afresh on the next request. psycopg_pool's default, 300 s, lets the backoff
            # grow to minutes: after a long outage the pool would wait that long to notice PostgreSQL is back.
            "reconnect_timeout": env_float("DATABASE_POOL_RECONNECT_TIMEOUT", 5.0, minimum=1.0),
            "check": _pool_check.check,
        },
    }
elif _database["ENGINE"] == "django.db.backends.sqlite3":
    _database["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    # A file, not memory, so that a Celery worker started by a test sees the test database.
    _database["TEST"] = {"NAME": str(VAR_DIR / "test-vetted.sqlite3")}
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, channel layer, Celery broker --------------------------------

REDIS_URL = env_optional_str("REDIS_URL")
CHANNEL_LAYER_PREFIX = env_str("CHANNEL_LAYER_PREFIX", "vetted-ws")
# Websocket lifetimes (marketplace.realtime): a live socket refreshes its slot and its groups every
# heartbeat; a dead process's slots lapse after the TTL, its group memberships after the group expiry.
WEBSOCKET_HEARTBEAT_SECONDS = env_float("WEBSOCKET_HEARTBEAT_SECONDS", 20.0, minimum=0.05)
WEBSOCKET_SLOT_TTL_SECONDS = env_int("WEBSOCKET_SLOT_TTL_SECONDS", 60, minimum=1)
WEBSOCKET_GROUP_EXPIRY_SECONDS = env_int("WEBSOCKET_GROUP_EXPIRY_SECONDS", 120, minimum=10)

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "vetted-cache"),
            "OPTIONS": {"socket_timeout": 2, "socket_connect_timeout": 2},
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "marketplace.channel_layer.RedisChannelLayer",
            "CONFIG": {
                # channels-redis blocks in BZPOPMIN for 5 s; redis-py's default socket timeout is
                # also 5 s, so an idle read could time out and kill a consumer. Read for longer.
                # redis-py's pool also refuses (rather than waits) past 100 connections, which
                # a burst of thousands of websockets closing at once exceeds.
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "socket_timeout": 15,
                        "socket_connect_timeout": 5,
                        "max_connections": env_int("CHANNEL_LAYER_MAX_CONNECTIONS", 500, minimum=10),
                    }
                ],
                "prefix": CHANNEL_LAYER_PREFIX,
                "capacity": 1000,
                "expiry": 60,
                # Live sockets re-join their groups every WEBSOCKET_HEARTBEAT_SECONDS (marketplace.realtime),
                # so a killed process's memberships lapse in minutes instead of channels-redis's default day.
                "group_expiry": WEBSOCKET_GROUP_EXPIRY_SECONDS,
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Email notifications (marketplace.notifications, docs/notifications.md) ------------

# Unread chat messages are emailed this long after they arrive, unless read or seen online meanwhile.
CHAT_EMAIL_DIGEST_MINUTES = env_int("CHAT_EMAIL_DIGEST_MINUTES", 15, minimum=1)
# The daily digest goes out at this hour, UTC.
EMAIL_DAILY_DIGEST_HOUR = env_int("EMAIL_DAILY_DIGEST_HOUR", 8, minimum=0)
if EMAIL_DAILY_DIGEST_HOUR > 23:
    raise ImproperlyConfigured("EMAIL_DAILY_DIGEST_HOUR is an hour of the day, 0 to 23")
# Engineers are reminded of an unanswered invitation this long before it expires.
INVITATION_EXPIRY_REMINDER_MINUTES = env_int("INVITATION_EXPIRY_REMINDER_MINUTES", 60, minimum=1)
# Clients are reminded of a submitted week this long before silence approves it.
TIMESHEET_REVIEW_REMINDER_HOURS = env_int("TIMESHEET_REVIEW_REMINDER_HOURS", 24, minimum=1)
# Tries per email (the first and the retries, with backoff) before its outbox row is marked failed.
EMAIL_SEND_MAX_ATTEMPTS = 5
# Where people reach this service: links in emails (unsubscribe) are absolute.
SITE_URL = env_str(
    "SITE_URL", f"https://{ALLOWED_HOSTS[0].lstrip('.')}" if PRODUCTION else "http://127.0.0.1:8000"
).rstrip("/")

# --- Celery -------------------------------------------------------------------

CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 60, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 90, minimum=1)
# On SIGTERM a worker stops taking tasks and lets running ones finish for this long (a warm shutdown;
# no task outlives its time limit anyway); then it stops, and unacknowledged tasks return to the queue.
CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT = float(CELERY_TASK_TIME_LIMIT)
CELERY_FILESYSTEM_BROKER_DIR = VAR_DIR / "celery-broker"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL or "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        "data_folder_in": str(CELERY_FILESYSTEM_BROKER_DIR),
        "data_folder_out": str(CELERY_FILESYSTEM_BROKER_DIR),
        "processed_folder": str(CELERY_FILESYSTEM_BROKER_DIR / "processed"),
        # Without this, workers write their broadcast exchanges to ./control in the current folder.
        "control_folder": str(CELERY_FILESYSTEM_BROKER_DIR / "control"),
        "store_processed": False,
    }
    # kombu's filesystem transport expects its folders to exist.
    for _folder in ("processed", "control"):
        (CELERY_FILESYSTEM_BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
else:
    # A task whose worker died unacknowledged comes back after this. Sized to the task time limit (no task
    # runs longer, so none is handed out twice) plus a margin that also covers the longest retry countdown
    # (accounts' welcome email: 2**5 s); not an hour, so an interrupted task comes back within minutes.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT_SECONDS", CELERY_TASK_TIME_LIMIT + 60, minimum=1),
        # kombu scans for such tasks every interval x throttle seconds (100 s by default); every 5 s
        # instead, so a killed worker's task is back at most 5 s after its visibility timeout.
        "unacked_restore_interval": 5,
        "unacked_restore_throttle": 1,
        "socket_connect_timeout": 2,
    }
# Sending a task happens after its transaction committed, in the request: bounded, so a broker that is
# down costs the caller under a second or two, then the task is left to its sweep (marketplace.celery).
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "vetted")
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    "payments.sweep": {"task": "payments.tasks.sweep", "schedule": 60.0, "options": {"expires": 55}},
    "payments.timesheets-close": {
        "task": "payments.tasks.timesheets_close",
        "schedule": 300.0,
        "options": {"expires": 290},
    },
    "reviews.publish-due": {"task": "reviews.tasks.publish_due", "schedule": 300.0, "options": {"expires": 290}},
    "payments.reconcile": {"task": "payments.tasks.reconcile", "schedule": 600.0, "options": {"expires": 590}},
    "hiring_requests.sweep": {
        "task": "hiring_requests.tasks.sweep",
        "schedule": 60.0,
        # A sweep that waited longer than its period is superseded by the next one.
        "options": {"expires": 55},
    },
    "vetting.expiry-reminders": {"task": "vetting.tasks.expiry_reminders", "schedule": crontab(minute=7, hour=8)},
    "accounts.purge-revoked-tokens": {
        "task": "accounts.tasks.tokens_purge_revoked",
        "schedule": crontab(minute=17, hour=3),
    },
    "marketplace.notifications-sweep": {
        "task": "marketplace.tasks.notifications_sweep",
        "schedule": 30.0,
        "options": {"expires": 25},
    },
    "marketplace.notifications-prune": {
        "task": "marketplace.tasks.notifications_prune",
        "schedule": crontab(minute=37, hour=3),
    },
    "marketplace.idempotency-records-purge": {
        # Hourly: each run deletes about an hour's worth of keys, a short statement.
        "task": "marketplace.tasks.idempotency_records_purge",
        "schedule": crontab(minute=47),
        "options": {"expires": 3_000},
    },
    "accounts.welcome-mails-sweep": {
        "task": "accounts.tasks.welcome_mails_sweep",
        "schedule": 300.0,
        "options": {"expires": 290},
    },
    "marketplace.email-outbox-sweep": {
        # Sends what is due: unread-chat digests after their delay, and emails whose task was lost.
        "task": "marketplace.tasks.email_outbox_sweep",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "marketplace.email-reminders": {
        "task": "marketplace.tasks.email_reminders",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "marketplace.email-daily-digest": {
        "task": "marketplace.tasks.email_daily_digest",
        "schedule": crontab(minute=0, hour=EMAIL_DAILY_DIGEST_HOUR),
    },
    "accounts.clear-expired-sessions": {
        "task": "accounts.tasks.sessions_clear_expired",
        "schedule": crontab(minute=27, hour=3),
    },
}

# --- Auth ---------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
SESSION_COOKIE_AGE = int(timedelta(days=14).total_seconds())
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"

# Rate limits: "<requests>/<seconds>" per client address (and per email for login).
RATE_LIMIT_LOGIN = env_str("RATE_LIMIT_LOGIN", "10/60")
RATE_LIMIT_TOKEN_CREATE = env_str("RATE_LIMIT_TOKEN_CREATE", "10/60")
RATE_LIMIT_REGISTER = env_str("RATE_LIMIT_REGISTER", "20/3600")
RATE_LIMIT_CHAT_REST = env_str("RATE_LIMIT_CHAT_REST", "60/60")
API_TOKEN_PURGE_AFTER_DAYS = env_int("API_TOKEN_PURGE_AFTER_DAYS", 30, minimum=1)

# --- Vetting ------------------------------------------------------------------

VETTING_SCREENING_TARGET_DAYS = env_int("VETTING_SCREENING_TARGET_DAYS", 2, minimum=1)
VETTING_DECISION_TARGET_DAYS = env_int("VETTING_DECISION_TARGET_DAYS", 7, minimum=1)
VETTING_VALIDITY_DAYS = env_int("VETTING_VALIDITY_DAYS", 365, minimum=1)
VETTING_REAPPLY_COOLDOWN_DAYS = env_int("VETTING_REAPPLY_COOLDOWN_DAYS", 90, minimum=0)
VETTING_REVOKED_COOLDOWN_DAYS = env_int("VETTING_REVOKED_COOLDOWN_DAYS", 180, minimum=0)
# Renewal opens this long before a record expires, while the record stays valid; the reminder goes out then.
VETTING_RENEWAL_WINDOW_DAYS = env_int("VETTING_RENEWAL_WINDOW_DAYS", 30, minimum=1)

# --- Matching -------------------------------------------------------------------

MATCH_DEADLINE_HOURS = env_int("MATCH_DEADLINE_HOURS", 8, minimum=1)
MATCH_WARN_BEFORE_MINUTES = env_int("MATCH_WARN_BEFORE_MINUTES", 120, minimum=1)
MATCH_WAVE_SIZE = env_int("MATCH_WAVE_SIZE", 5, minimum=1)
MATCH_SHORTLIST_TARGET = env_int("MATCH_SHORTLIST_TARGET", 3, minimum=1)
MATCH_INVITATION_TTL_MINUTES = env_int("MATCH_INVITATION_TTL_MINUTES", 120, minimum=1)
# Widening step N may be proposed to the client N x this many minutes after raising (paced along the deadline).
MATCH_WIDEN_INTERVAL_MINUTES = env_int("MATCH_WIDEN_INTERVAL_MINUTES", 90, minimum=1)
# Offers waiting on one engineer at once: a sought-after engineer is not flooded, others get a turn.
MATCH_MAX_PENDING_INVITATIONS = env_int("MATCH_MAX_PENDING_INVITATIONS", 3, minimum=1)
MATCH_TZ_RELAX_MINUTES = env_int("MATCH_TZ_RELAX_MINUTES", 120, minimum=0)
MATCH_BUDGET_RELAX_BP = env_int("MATCH_BUDGET_RELAX_BP", 1000, minimum=0)
if MATCH_BUDGET_RELAX_BP > 5000:
    raise ImproperlyConfigured("MATCH_BUDGET_RELAX_BP is at most 5000 (a 50% raise of the client's budget)")

# --- Payments -------------------------------------------------------------------

# Without STRIPE_SECRET_KEY the service talks to the in-repo Stripe double (make run serves it).
STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY", "sk_test_double")
STRIPE_API_BASE = env_str(
    "STRIPE_API_BASE",
    "http://127.0.0.1:12111" if STRIPE_SECRET_KEY == "sk_test_double" else "https://api.stripe.com",  # noqa: S105
)
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET", "whsec_double")
# How many event ids already stored each process remembers, to answer Stripe's duplicates without a
# query (payments.services.webhooks.StoredEventIds; about 100 bytes each).
WEBHOOK_STORED_IDS_REMEMBERED = env_int("WEBHOOK_STORED_IDS_REMEMBERED", 10_000, minimum=1)
if PRODUCTION and (STRIPE_SECRET_KEY == "sk_test_double" or STRIPE_WEBHOOK_SECRET == "whsec_double"):  # noqa: S105
    raise ImproperlyConfigured("STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET must be set in production")

# What a page needs to confirm a payment in the browser with Stripe.js (the Payment Element): the
# publishable key and where Stripe.js is loaded from. With the double there is no js.stripe.com, so
# the double serves a stand-in for Stripe.js at <STRIPE_API_BASE>/v3/ (docs/payments.md).
_stripe_double = STRIPE_SECRET_KEY == "sk_test_double"  # noqa: S105 - the double's placeholder key
STRIPE_PUBLISHABLE_KEY = env_str("STRIPE_PUBLISHABLE_KEY", "pk_test_double" if _stripe_double else "")
STRIPE_JS_URL = env_str(
    "STRIPE_JS_URL", f"{STRIPE_API_BASE.rstrip('/')}/v3/" if _stripe_double else "https://js.stripe.com/v3/"
)
if PRODUCTION and STRIPE_PUBLISHABLE_KEY in ("", "pk_test_double"):
    raise ImproperlyConfigured("STRIPE_PUBLISHABLE_KEY must be set in production")
if STRIPE_PUBLISHABLE_KEY and not STRIPE_PUBLISHABLE_KEY.startswith("pk_"):
    raise ImproperlyConfigured("STRIPE_PUBLISHABLE_KEY must be a publishable key (pk_...), never the secret key")
# A test publishable key with a live secret key (or the reverse) fails every payment in the browser.
if STRIPE_PUBLISHABLE_KEY and ("_live_" in STRIPE_PUBLISHABLE_KEY) != ("_live_" in STRIPE_SECRET_KEY):
    raise ImproperlyConfigured("STRIPE_PUBLISHABLE_KEY and STRIPE_SECRET_KEY must both be live keys or both test keys")

STRIPE_TIMEOUT_SECONDS = env_float("STRIPE_TIMEOUT_SECONDS", 10.0, minimum=0.1)
STRIPE_RETRY_ATTEMPTS = env_int("STRIPE_RETRY_ATTEMPTS", 3, minimum=1)
# One operation's whole budget at Stripe, retries included.
STRIPE_DEADLINE_SECONDS = env_float("STRIPE_DEADLINE_SECONDS", 25.0, minimum=0.1)
STRIPE_BREAKER_FAILURES = env_int("STRIPE_BREAKER_FAILURES", 5, minimum=1)
STRIPE_BREAKER_RESET_SECONDS = env_float("STRIPE_BREAKER_RESET_SECONDS", 30.0, minimum=1.0)
STRIPE_SLOW_CALL_SECONDS = env_float("STRIPE_SLOW_CALL_SECONDS", 5.0, minimum=0.1)
# The bulkhead: Stripe calls one process makes at once, well below the database pool's size.
STRIPE_MAX_CONCURRENCY = env_int("STRIPE_MAX_CONCURRENCY", 4, minimum=1)
STRIPE_BULKHEAD_WAIT_SECONDS = env_float("STRIPE_BULKHEAD_WAIT_SECONDS", 1.0, minimum=0.0)
# A step claimed this long ago and not recorded is taken as abandoned; the sweep finishes it.
PAYMENT_STEP_STALE_SECONDS = env_int("PAYMENT_STEP_STALE_SECONDS", 60, minimum=1)
# Stripe retries a webhook for up to three days; a stored event is ours to retry as long, and after.
STRIPE_EVENT_STUCK_SECONDS = env_int("STRIPE_EVENT_STUCK_SECONDS", 3_600, minimum=60)
# An Idempotency-Key left in flight by a process that died is released after this long.
IDEMPOTENCY_IN_FLIGHT_SECONDS = env_int("IDEMPOTENCY_IN_FLIGHT_SECONDS", 120, minimum=1)
# How long an Idempotency-Key is remembered (Stripe: 24 hours, https://docs.stripe.com/api/idempotent_requests).
IDEMPOTENCY_KEY_TTL_SECONDS = env_int("IDEMPOTENCY_KEY_TTL_SECONDS", 86_400, minimum=60)
if IDEMPOTENCY_KEY_TTL_SECONDS <= IDEMPOTENCY_IN_FLIGHT_SECONDS:
    # A key forgotten while its request may still run would let a retry run the operation twice at once.
    raise ImproperlyConfigured("IDEMPOTENCY_KEY_TTL_SECONDS must be longer than IDEMPOTENCY_IN_FLIGHT_SECONDS")
PLATFORM_FEE_BP = env_int("PLATFORM_FEE_BP", 1000, minimum=0)
MILESTONE_REVIEW_DAYS = env_int("MILESTONE_REVIEW_DAYS", 7, minimum=1)
MILESTONE_MAX_CHANGE_ROUNDS = env_int("MILESTONE_MAX_CHANGE_ROUNDS", 3, minimum=0)
# Hourly work: weeks run Monday 00:00 to Sunday 24:00 UTC. The engineer may still edit a week this many
# hours after it ends (Upwork: until Monday 12:00 UTC); then it closes and goes to the client.
TIMESHEET_EDIT_GRACE_HOURS = env_int("TIMESHEET_EDIT_GRACE_HOURS", 12, minimum=0)
# The client approves or disputes a closed week within this many days; silence approves.
TIMESHEET_REVIEW_DAYS = env_int("TIMESHEET_REVIEW_DAYS", 5, minimum=1)
# A failed charge is retried this many days after the first failure; after the last, the engagement pauses.
TIMESHEET_CHARGE_RETRY_DAYS = [int(day) for day in env_list("TIMESHEET_CHARGE_RETRY_DAYS", ["1", "3", "5"])]
if sorted(set(TIMESHEET_CHARGE_RETRY_DAYS)) != TIMESHEET_CHARGE_RETRY_DAYS or min(TIMESHEET_CHARGE_RETRY_DAYS) < 0:
    raise ImproperlyConfigured("TIMESHEET_CHARGE_RETRY_DAYS must be increasing whole days, such as 1,3,5")

# Reviews: each side of a paid step may review the other within this many days; then both are published.
REVIEW_WINDOW_DAYS = env_int("REVIEW_WINDOW_DAYS", 14, minimum=1)
# How many imaginary 4-star reviews every rating starts with (the Bayesian prior's weight).
REPUTATION_PRIOR_WEIGHT = env_int("REPUTATION_PRIOR_WEIGHT", 5, minimum=1)

# --- Chat -----------------------------------------------------------------------

CHAT_MAX_BODY_CHARS = 4_000
CHAT_MAX_FRAME_BYTES = env_int("CHAT_MAX_FRAME_BYTES", 16_384, minimum=4_096)
CHAT_RATE_PER_SECOND = env_float("CHAT_RATE_PER_SECOND", 10.0, minimum=0.1)
CHAT_RATE_BURST = env_int("CHAT_RATE_BURST", 20, minimum=1)
CHAT_MAX_CONNECTIONS_PER_USER = env_int("CHAT_MAX_CONNECTIONS_PER_USER", 10, minimum=1)
CHAT_ERRORS_BEFORE_CLOSE = env_int("CHAT_ERRORS_BEFORE_CLOSE", 10, minimum=1)
CHAT_PAGE_SIZE = 50

# --- Websockets and notifications ------------------------------------------------

# Threads for websocket consumers' database calls (marketplace.realtime.ws_db), per process.
WEBSOCKET_DB_THREADS = env_int("WEBSOCKET_DB_THREADS", 8, minimum=1)
NOTIFICATIONS_MAX_CONNECTIONS_PER_USER = env_int("NOTIFICATIONS_MAX_CONNECTIONS_PER_USER", 10, minimum=1)
NOTIFICATIONS_RETENTION_DAYS = env_int("NOTIFICATIONS_RETENTION_DAYS", 30, minimum=1)
# With no cross-process channel layer (the embedded default), notification sockets read the log this often,
# so what the worker writes still arrives; with Redis, pushes arrive and the log is read only to fill gaps.
NOTIFICATIONS_POLL_SECONDS = env_float("NOTIFICATIONS_POLL_SECONDS", 0.0 if REDIS_URL else 1.0, minimum=0.0)


# --- API, websockets, health --------------------------------------------------

NINJA_PAGINATION_PER_PAGE = 20
NINJA_PAGINATION_MAX_LIMIT = 100
# Every list pages by keyset cursor (marketplace.pagination); limit is 1 to MAX_LIMIT.
NINJA_PAGINATION_CLASS = "marketplace.pagination.CursorPagination"
# The reverse proxies allowed to say who the client is (marketplace.proxies); uvicorn gets the same list.
FORWARDED_ALLOW_IPS = env_list("FORWARDED_ALLOW_IPS", [])
# ninja's own header parsing stays off: the client address comes from marketplace.proxies alone.
NINJA_NUM_PROXIES = 0
# Origins a browser websocket may come from; by default the hosts this service answers for.
WEBSOCKET_ALLOWED_ORIGINS = env_list("WEBSOCKET_ALLOWED_ORIGINS", [])
# Hosts a return URL we hand to Stripe (payout onboarding) may point at; empty: ALLOWED_HOSTS.
RETURN_URL_HOSTS = env_list("RETURN_URL_HOSTS", [])
# A request's whole body must arrive within this many seconds (marketplace.bodies), or it gets 408.
REQUEST_BODY_TIMEOUT_SECONDS = env_float("REQUEST_BODY_TIMEOUT_SECONDS", 10.0, minimum=0.1)
HEALTH_CHECK_TIMEOUT = env_float("HEALTH_CHECK_TIMEOUT", 2.0, minimum=0.1)
# Graceful shutdown of `manage.py serve` (marketplace.shutdown): readiness says `draining` for
# SHUTDOWN_DRAIN_SECONDS (a load balancer's probe interval and threshold), then websockets close with
# 1012 and requests in hand get up to SHUTDOWN_GRACE_SECONDS to finish.
SHUTDOWN_DRAIN_SECONDS = env_float("SHUTDOWN_DRAIN_SECONDS", 5.0, minimum=0.0)
SHUTDOWN_GRACE_SECONDS = env_float("SHUTDOWN_GRACE_SECONDS", 30.0, minimum=1.0)

# --- Staff accounts -------------------------------------------------------------

# The admin lives here (without the leading slash); moving it off /admin/ takes it out of scanners' way.
ADMIN_PATH = env_str("ADMIN_PATH", "admin/").strip("/") + "/"
# The admin login is limited like the API's (marketplace.admin_login): per client address and per
# account, ADMIN_LOGIN_RATE failed attempts; past it even the right password is refused (429).
RATE_LIMIT_ADMIN_LOGIN = env_str("RATE_LIMIT_ADMIN_LOGIN", "5/900")
# Staff prove a second factor (TOTP, django-otp) at the admin login in production; the demo stays
# one-step in development. `manage.py totp_device <email>` gives a staff member their authenticator key.
ADMIN_REQUIRE_OTP = env_bool("ADMIN_REQUIRE_OTP", PRODUCTION)
OTP_TOTP_ISSUER = "Vetted"

# --- Security headers (every environment) --------------------------------------

# Django's built-in Content-Security-Policy. Everything comes from this origin: the pages, the
# admin and the API docs load only our own scripts (no inline script). Styles allow inline
# attributes because Swagger UI and the admin set some from their scripts; websockets are 'self'.
SECURE_CSP: dict[str, list[str]] = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF, CSP.UNSAFE_INLINE],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}
# The pages that host Stripe's Payment Element (funding a milestone, saving a card) also load
# Stripe.js, lets it call Stripe's API and show its frames
# (https://docs.stripe.com/security/guide#content-security-policy).
_stripe_js = urlsplit(STRIPE_JS_URL)
_stripe_api = urlsplit(STRIPE_API_BASE)
STRIPE_PAGE_CSP: dict[str, list[str]] = {
    **SECURE_CSP,
    "script-src": [*SECURE_CSP["script-src"], f"{_stripe_js.scheme}://{_stripe_js.netloc}", "https://*.js.stripe.com"],
    "connect-src": [*SECURE_CSP["connect-src"], f"{_stripe_api.scheme}://{_stripe_api.netloc}"],
    "frame-src": ["https://js.stripe.com", "https://*.js.stripe.com", "https://hooks.stripe.com"],
}
# The payouts page's form leads to Stripe's hosted onboarding (an Account Link on connect.stripe.com, or
# the double): `form-action` covers where a form's answer redirects, so that origin is allowed there.
_onboarding = (
    "https://connect.stripe.com"
    if STRIPE_API_BASE == "https://api.stripe.com"
    else (f"{_stripe_api.scheme}://{_stripe_api.netloc}")
)
STRIPE_ONBOARDING_PAGE_CSP: dict[str, list[str]] = {
    **SECURE_CSP,
    "form-action": [*SECURE_CSP["form-action"], _onboarding],
}
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
# Browser features none of our pages use, switched off (django-permissions-policy).
PERMISSIONS_POLICY: dict[str, list[str]] = {
    feature: []
    for feature in (
        "accelerometer",
        "camera",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "payment",
        "usb",
    )
}

# --- Security (production) ----------------------------------------------------

if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    if env_bool("SECURE_PROXY_SSL_HEADER", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Email, i18n, static ------------------------------------------------------

MAIL_BACKEND = env_choice("MAIL_BACKEND", "smtp" if PRODUCTION else "file", ("smtp", "file", "console"))
# Development writes each email to a file here (`make run` says where); tests use Django's locmem backend.
MAIL_FILE_DIR = VAR_DIR / "mail"
if MAIL_BACKEND == "smtp":
    MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {
                "host": env_str("SMTP_HOST", "localhost"),
                "port": env_int("SMTP_PORT", 25, minimum=1),
                "username": env_str("SMTP_USERNAME", ""),
                "password": env_str("SMTP_PASSWORD", ""),
                "use_tls": env_bool("SMTP_USE_TLS", False),
                "timeout": 10,
            },
        }
    }
elif MAIL_BACKEND == "file":
    MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "OPTIONS": {"file_path": str(MAIL_FILE_DIR)},
        }
    }
else:
    MAILERS = {"default": {"BACKEND": "django.core.mail.backends.console.EmailBackend"}}
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Vetted <no-reply@vetted.test>")

# The web app's pages (web/urls.py): where login_required sends a stranger, and where logging in leads.
LOGIN_URL = "web:login"
LOGIN_REDIRECT_URL = "web:home"
LOGOUT_REDIRECT_URL = "landing"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Static files are served by whitenoise's middleware in every mode (uvicorn serves none).
# Production: `collectstatic` (part of the deploy, docs/operations.md) writes hashed, compressed
# copies to STATIC_ROOT, served with far-future cache headers. Development: the same middleware
# finds the assets in the apps directly, so `make run` needs no collectstatic.
STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "static")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION
# whitenoise answers with a file iterator that Django's ASGI handler reads whole in a thread
# (with a warning per file). Assets are small and, in production, cached far-future by
# browsers and proxies; our own responses never stream, so the warning says nothing new.
warnings.filterwarnings("ignore", message="StreamingHttpResponse must consume synchronous iterators")
WHITENOISE_AUTOREFRESH = DEBUG and not PRODUCTION
if not PRODUCTION:
    # whitenoise warns at start-up when STATIC_ROOT is missing; development never collects into it.
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)

# Who may read /metrics (marketplace.metrics): these networks, or a caller with this bearer token.
METRICS_ALLOWED_NETWORKS = env_list("METRICS_ALLOWED_NETWORKS", ["127.0.0.1/32", "::1/128"])
METRICS_TOKEN = env_optional_str("METRICS_TOKEN")
# Error reports go to Sentry only when this is set (marketplace.error_reports).
SENTRY_DSN = env_optional_str("SENTRY_DSN")
# --- Tracing ---
# OpenTelemetry traces (marketplace.telemetry), sent over OTLP/HTTP to `<endpoint>/v1/traces` only when
# the endpoint is set (e.g. `http://jaeger:4318`); unset, nothing is instrumented. The service name
# defaults to `vetted-web` for server processes and `vetted-worker` for Celery workers.
OTEL_EXPORTER_OTLP_ENDPOINT = env_optional_str("OTEL_EXPORTER_OTLP_ENDPOINT")
OTEL_SERVICE_NAME = env_optional_str("OTEL_SERVICE_NAME")
# Head sampling, with the SDK's own variable names and values
# (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/#general-sdk-configuration).
# The default traces one request in ten, and every request whose caller sent a sampled `traceparent`
# (its tasks follow their parent): tracing everything costs reads about a fifth of their throughput
# (docs/benchmarks.md, "Soak"). `parentbased_always_on` traces everything.
OTEL_TRACES_SAMPLER = env_choice(
    "OTEL_TRACES_SAMPLER",
    "parentbased_traceidratio",
    (
        "always_on",
        "always_off",
        "traceidratio",
        "parentbased_always_on",
        "parentbased_always_off",
        "parentbased_traceidratio",
    ),
)
OTEL_TRACES_SAMPLER_ARG = env_float("OTEL_TRACES_SAMPLER_ARG", 0.1, minimum=0.0)
if OTEL_TRACES_SAMPLER_ARG > 1:
    raise ImproperlyConfigured("OTEL_TRACES_SAMPLER_ARG is a ratio, 0 to 1")
# --- end Tracing ---

# `json`: one object per line for log pipelines (production's default); `text`: `time level logger event
# key=value ... request_id=...`, for people (the default elsewhere, such as `make run`).
LOG_FORMAT = env_choice("LOG_FORMAT", "json" if PRODUCTION else "text", choices=("json", "text"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "marketplace.tracing.RequestIdFilter"}},
    "formatters": {
        "text": {
            "()": "marketplace.tracing.EventFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
        "json": {"()": "marketplace.tracing.JsonEventFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # One line per outgoing HTTP request is noise; failures surface through our own events.
    # OpenTelemetry warns of each malformed `tracestate` a caller sends, quoting it: a caller could fill
    # the logs with text of its choosing. The header is ignored either way (W3C Trace Context §3.3).
    "loggers": {
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        "opentelemetry.trace.span": {"level": "ERROR"},
    },
}
