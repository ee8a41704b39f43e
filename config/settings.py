"""Settings, read from the environment (12-factor).

With no environment at all the project runs embedded: a SpatiaLite file under var/, an in-memory
channel layer and background jobs run in-process. Set DATABASE_URL (postgis://...) and REDIS_URL
for the production stack.
"""

import sys
from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF, UNSAFE_INLINE

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG and not env.bool("FLEETROOT_ALLOW_DEV_SECRET", default=False):
        raise environ.ImproperlyConfigured(
            "SECRET_KEY is not set. Set it in the environment (or DEBUG=true for development)."
        )
    SECRET_KEY = "dev-only-insecure-secret-key-change-me-0123456789abcdefghijklmnopq"  # noqa: S105

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.gis",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "simple_history",
    "csp",
    "axes",
    "core",
    "identity",
    "fleet",
    "dispatch",
    "scorecards",
    "onboarding",
    "payouts",
    "discipline",
    "integrations",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "core.middleware.BodySizeLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Last, as django-axes asks: it turns a lockout into its answer.
    "axes.middleware.AxesMiddleware",
]

# The admin's history pages only show old versions: a "Revert" would save the old row without
# the services' rules (core.admin_history.HistoryAdmin also refuses the POST).
SIMPLE_HISTORY_REVERT_DISABLED = True

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
# postgis://user:pass@host:5432/name for production; a SpatiaLite file by default.
environ.Env.DB_SCHEMES["postgres"] = environ.Env.DB_SCHEMES["postgis"]
environ.Env.DB_SCHEMES["postgresql"] = environ.Env.DB_SCHEMES["postgis"]
DATABASE_URL = env("DATABASE_URL", default=f"spatialite:///{VAR_DIR / 'fleetroot.sqlite3'}")
DATABASES = {"default": env.db_url_config(DATABASE_URL)}
DATABASE_IS_SPATIALITE = DATABASES["default"]["ENGINE"].endswith("spatialite")
if DATABASE_IS_SPATIALITE:
    # pyenv's CPython cannot load SQLite extensions; pysqlite3, built against the system
    # libsqlite3, can. It must replace sqlite3 before Django imports its SQLite backend.
    import pysqlite3

    sys.modules["sqlite3"] = pysqlite3
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["OPTIONS"] = {
        # Writers queue for the lock instead of failing; IMMEDIATE takes the write lock when a
        # transaction starts, so two transactions never deadlock upgrading a read lock.
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    SPATIALITE_LIBRARY_PATH = "mod_spatialite"
else:
    # Under ASGI every request runs in its own thread: persistent connections (CONN_MAX_AGE)
    # would stay open one per thread until PostgreSQL runs out. A pool per process bounds them;
    # a request that finds it empty waits DB_POOL_TIMEOUT seconds, then gets a 503.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DB_POOL_MIN_SIZE", default=1),
        "max_size": env.int("DB_POOL_MAX_SIZE", default=10),
        "timeout": env.float("DB_POOL_TIMEOUT", default=10.0),
    }

# How long a service waits for a row another transaction holds (core.db.lock).
DB_LOCK_TIMEOUT_MS = env.int("DB_LOCK_TIMEOUT_MS", default=3000)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "identity.User"

# --- Redis: channel layer, cache, Celery ----------------------------------------------------
REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env("CACHE_KEY_PREFIX", default="fleetroot"),
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Background jobs: Celery workers on Redis, or the same task functions run in-process by the
# demo's scheduler thread (core.scheduler) when there is no broker.
BACKGROUND_JOBS = "celery" if REDIS_URL else "in-process"
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
# Every organisation with open orders and online drivers gets a dispatch round this often; an
# order created, a driver online, an offer declined or lapsed asks for one sooner.
DISPATCH_ROUND_SECONDS = env.float("DISPATCH_ROUND_SECONDS", default=5.0)
# Travel times (README "Travel times"): haversine | roads (embedded graph) | pgrouting (PostGIS).
TRAVEL_TIME_PROVIDER = env("TRAVEL_TIME_PROVIDER", default="roads")
if TRAVEL_TIME_PROVIDER not in ("haversine", "roads", "pgrouting"):
    raise environ.ImproperlyConfigured("TRAVEL_TIME_PROVIDER must be one of haversine, roads, pgrouting")
ROADS_OSM_FILE = env.path(
    "ROADS_OSM_FILE", default=str(BASE_DIR / "demo" / "data" / "helsinki-center.osm.pbf")
)
ROADS_CACHE_DIR = env.path("ROADS_CACHE_DIR", default=str(VAR_DIR / "cache"))
ROADS_MAX_SNAP_M = env.float("ROADS_MAX_SNAP_M", default=300.0)
TRAFFIC_FEED_WEIGHT = env.float("TRAFFIC_FEED_WEIGHT", default=0.6)
TRAFFIC_BUCKET_SECONDS = env.int("TRAFFIC_BUCKET_SECONDS", default=300)
TRAFFIC_FEED_URL = env("TRAFFIC_FEED_URL", default="")
TRAFFIC_FEED_ORG = env("TRAFFIC_FEED_ORG", default="")
# Drivers' routes: every SLA_WATCH_SECONDS the ETAs are worked out again from the drivers' last
# positions; a route whose ETAs drifted more than ETA_RESEQUENCE_DRIFT_SECONDS is re-sequenced;
# an ETA that moved more than ETA_CHANGE_NOTIFY_SECONDS from the one last announced is sent as
# `order.eta_changed`. A stop predicted later than SLA_AT_RISK_RAISE_SECONDS past its window
# raises `order.at_risk`; the alert clears only under SLA_AT_RISK_CLEAR_SECONDS (no flapping).
SLA_WATCH_SECONDS = env.float("SLA_WATCH_SECONDS", default=30.0)
ETA_RESEQUENCE_DRIFT_SECONDS = env.int("ETA_RESEQUENCE_DRIFT_SECONDS", default=180)
ETA_CHANGE_NOTIFY_SECONDS = env.int("ETA_CHANGE_NOTIFY_SECONDS", default=300)
SLA_AT_RISK_RAISE_SECONDS = env.int("SLA_AT_RISK_RAISE_SECONDS", default=300)
SLA_AT_RISK_CLEAR_SECONDS = env.int("SLA_AT_RISK_CLEAR_SECONDS", default=120)
# Predictive dispatch (organisations whose rules turn `reposition` on): idle drivers get
# suggestions to move toward forecast demand this often.
REPOSITION_SECONDS = env.float("REPOSITION_SECONDS", default=120.0)
CELERY_BEAT_SCHEDULE = {
    "send-due-webhooks": {"task": "integrations.send_due_webhooks", "schedule": 5.0},
    "expire-due-offers": {"task": "dispatch.expire_due_offers", "schedule": 5.0},
    "run-dispatch-rounds": {"task": "dispatch.run_dispatch_rounds", "schedule": DISPATCH_ROUND_SECONDS},
    "learn-traffic": {"task": "dispatch.learn_traffic", "schedule": 300.0},
    "watch-slas": {"task": "dispatch.watch_slas", "schedule": SLA_WATCH_SECONDS},
    "suggest-repositioning": {"task": "dispatch.suggest_repositioning", "schedule": REPOSITION_SECONDS},
    # In-process only: rounds asked for by events (with Celery they are queued as tasks).
    "run-requested-dispatch-rounds": {"task": "dispatch.run_requested_dispatch_rounds", "schedule": 1.0},
    # Hourly: closes yesterday's payout cycle of each organisation once it has ended.
    "run-daily-payouts": {"task": "payouts.run_daily_payouts", "schedule": 3600.0},
    "send-pending-payouts": {"task": "payouts.send_pending_payouts", "schedule": 60.0},
    "purge-idempotency-records": {
        "task": "core.purge_expired_idempotency_records",
        "schedule": 3600.0,
    },
}

# --- Settlement (payouts) -----------------------------------------------------------------
# ledger: payouts are recorded and paid by hand; stripe: Stripe Connect (Express accounts).
PAYOUT_PROVIDER = env("PAYOUT_PROVIDER", default="ledger")
STRIPE_API_KEY = env("STRIPE_API_KEY", default="")
STRIPE_API_BASE = env("STRIPE_API_BASE", default="")  # empty: Stripe's own https://api.stripe.com
STRIPE_WEBHOOK_SECRET = env("STRIPE_WEBHOOK_SECRET", default="")
STRIPE_WEBHOOK_TOLERANCE_SECONDS = env.int("STRIPE_WEBHOOK_TOLERANCE_SECONDS", default=300)
STRIPE_ACCOUNT_COUNTRY = env("STRIPE_ACCOUNT_COUNTRY", default="FI")
# The instant cash-out fee the driver pays: a share of the amount, at least a minimum.
PAYOUT_INSTANT_FEE_BASIS_POINTS = env.int("PAYOUT_INSTANT_FEE_BASIS_POINTS", default=150)
PAYOUT_INSTANT_FEE_MIN_MINOR = env.int("PAYOUT_INSTANT_FEE_MIN_MINOR", default=50)
# A proof of delivery is accepted within this many metres of the drop-off.
POD_GEOFENCE_RADIUS_M = env.float("POD_GEOFENCE_RADIUS_M", default=50.0)
# Links to proof images in webhooks and the API are signed and expire after this long.
POD_LINK_TTL_SECONDS = env.int("POD_LINK_TTL_SECONDS", default=7 * 24 * 3600)
# A recipient's link to rate a delivery opens this long after the delivery (one rating per order).
RATING_LINK_TTL_SECONDS = env.int("RATING_LINK_TTL_SECONDS", default=7 * 24 * 3600)
# Where this server is reached from outside (for links in webhooks).
PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", default="http://127.0.0.1:8000")

# --- Auth ----------------------------------------------------------------------------------
# django-axes first: it refuses a locked-out user or address before the password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Login throttling (site and admin): after AXES_FAILURE_LIMIT wrong passwords for a username,
# or from an address, that username or address is locked out; each further lockout within a
# day lasts twice as long (core.auth.lockout_cooloff). Every failure and lockout is logged.
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_COOLOFF_TIME = "core.auth.lockout_cooloff"
LOGIN_LOCKOUT_BASE = timedelta(seconds=env.int("LOGIN_LOCKOUT_BASE_SECONDS", default=60))
AXES_RESET_ON_SUCCESS = True
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# The address counted is the connection's own (REMOTE_ADDR): X-Forwarded-For is the client's
# to write, so trusting it unasked lets anyone dodge the lockout or aim it at someone else.
# Behind N reverse proxies that each append to X-Forwarded-For, set TRUSTED_PROXY_COUNT=N
# (core.auth.client_ip reads the N-th address from the right).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
AXES_CLIENT_IP_CALLABLE = "core.auth.client_ip"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/live/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# --- Internationalisation, time ------------------------------------------------------------
LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static and media files ----------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=str(VAR_DIR / "media"))
STORAGES = {
    "default": {
        "BACKEND": env("DEFAULT_FILE_STORAGE_BACKEND", default="django.core.files.storage.FileSystemStorage")
    },
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# --- Security (production values come from the environment) --------------------------------
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# Content-Security-Policy on every page (django-csp): our own origin only, no inline script,
# no eval. Swagger UI and OpenLayers inject <style> elements and style attributes, so styles
# may be inline; a style cannot run script.
LIVE_MAP_TILE_ORIGIN = env("LIVE_MAP_TILE_ORIGIN", default="")  # e.g. https://tile.openstreetmap.org
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:", *([LIVE_MAP_TILE_ORIGIN] if LIVE_MAP_TILE_ORIGIN else [])],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# GDAL 3.6 is older than the versions Django 5.2 tests with; it works for what we use.
SILENCED_SYSTEM_CHECKS = ["gis.W001"]

# --- API ------------------------------------------------------------------------------------
# Request bodies are capped per route before they are read (core.asgi_limits): the longest
# matching path prefix sets the limit, REQUEST_MAX_BODY_BYTES covers every other route.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=256 * 1024)
API_UPLOAD_MAX_BODY_BYTES = env.int("API_UPLOAD_MAX_BODY_BYTES", default=12 * 1024 * 1024)
REQUEST_MAX_BODY_BYTES = env.int("REQUEST_MAX_BODY_BYTES", default=2 * 1024 * 1024)
REQUEST_BODY_LIMITS = [
    ("/api/", API_MAX_BODY_BYTES),
    # Proof-of-delivery photos and identity documents (multipart; spooled to disk past
    # FILE_UPLOAD_MAX_MEMORY_SIZE, Django's default 2.5 MB).
    ("/api/v1/driver/", API_UPLOAD_MAX_BODY_BYTES),
    ("/api/v1/onboarding/", API_UPLOAD_MAX_BODY_BYTES),
    ("/onboarding/", API_UPLOAD_MAX_BODY_BYTES),  # the applicant's pages upload photos
    ("/admin/", API_UPLOAD_MAX_BODY_BYTES),
    ("/rate/", 8 * 1024),  # a recipient's rating: stars and at most 500 characters
]
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=10 * 1024 * 1024)
API_KEY_DEFAULT_RATE_PER_MINUTE = env.int("API_KEY_DEFAULT_RATE_PER_MINUTE", default=600)
IDEMPOTENCY_KEY_TTL = timedelta(hours=24)
# How long a request may hold its Idempotency-Key IN_PROGRESS before a retry may take it over
# (a request that crashed never releases it). Longer than any request runs.
IDEMPOTENCY_LEASE = timedelta(seconds=env.int("IDEMPOTENCY_LEASE_SECONDS", default=120))
UPLOAD_MAX_IMAGE_BYTES = env.int("UPLOAD_MAX_IMAGE_BYTES", default=8 * 1024 * 1024)
UPLOAD_MAX_IMAGE_PIXELS = env.int("UPLOAD_MAX_IMAGE_PIXELS", default=40_000_000)

# --- Onboarding ------------------------------------------------------------------------------
# Identity documents and biometrics live here, outside MEDIA_ROOT and the static root; only the
# permission-checked, audited view in onboarding serves them.
ONBOARDING_PRIVATE_ROOT = env.path("ONBOARDING_PRIVATE_ROOT", default=str(VAR_DIR / "private"))
# Selfies, liveness frames and their face data are deleted this long after the decision.
ONBOARDING_BIOMETRIC_RETENTION_DAYS = env.int("ONBOARDING_BIOMETRIC_RETENTION_DAYS", default=30)
# A driver is told this many days before a watched document (licence, insurance, ID) lapses.
ONBOARDING_EXPIRY_NOTICE_DAYS = env.int("ONBOARDING_EXPIRY_NOTICE_DAYS", default=14)
# A pipeline that fails to run (an exception, a worker killed) is tried this many times in
# all (onboarding.resume_pipelines re-queues it), then the application goes to a person.
ONBOARDING_PIPELINE_MAX_ATTEMPTS = env.int("ONBOARDING_PIPELINE_MAX_ATTEMPTS", default=3)
# Four-eyes: a reviewer's decision against the checks' outcome needs a second reviewer.
ONBOARDING_FOUR_EYES = env.bool("ONBOARDING_FOUR_EYES", default=False)
# Background screening: "local" (rules below) or "checkr" (the HTTP API, its webhooks).
ONBOARDING_SCREENING_PROVIDER = env("ONBOARDING_SCREENING_PROVIDER", default="local")
# The local provider answers "consider" for these document numbers, else "clear".
ONBOARDING_LOCAL_SCREENING_CONSIDER = env.list("ONBOARDING_LOCAL_SCREENING_CONSIDER", default=[])
CHECKR_API_URL = env("CHECKR_API_URL", default="https://api.checkr.com")
CHECKR_API_KEY = env("CHECKR_API_KEY", default="")
CHECKR_PACKAGE = env("CHECKR_PACKAGE", default="driver_pro")
CHECKR_TIMEOUT_SECONDS = env.float("CHECKR_TIMEOUT_SECONDS", default=10.0)
CELERY_BEAT_SCHEDULE |= {
    # Scorecards: windows moved on to the new day and each driver's daily snapshot (idempotent).
    "scorecards-snapshot": {"task": "scorecards.snapshot_scorecards", "schedule": 3600.0},
}
CELERY_BEAT_SCHEDULE |= {
    "onboarding-watch-document-expiry": {"task": "onboarding.watch_document_expiry", "schedule": 3600.0},
    "onboarding-purge-biometrics": {"task": "onboarding.purge_biometrics", "schedule": 3600.0},
    "onboarding-resume-pipelines": {"task": "onboarding.resume_pipelines", "schedule": 600.0},
}
# --- Discipline -------------------------------------------------------------------------------
# How often suspensions that ran their length are lifted (discipline.end_due_suspensions).
DISCIPLINE_SUSPENSION_SWEEP_SECONDS = env.float("DISCIPLINE_SUSPENSION_SWEEP_SECONDS", default=60.0)
CELERY_BEAT_SCHEDULE |= {
    "discipline-end-due-suspensions": {
        "task": "discipline.end_due_suspensions",
        "schedule": DISCIPLINE_SUSPENSION_SWEEP_SECONDS,
    },
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "identity.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["core.api.permissions.IsOrganisationMember"],
    "DEFAULT_THROTTLE_CLASSES": ["identity.throttling.ApiKeyRateThrottle"],
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.CreatedCursorPagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.api.parsers.DepthLimitedJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.errors.exception_handler",
    "DATETIME_FORMAT": "iso-8601",
    "COERCE_DECIMAL_TO_STRING": False,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Fleetroot API",
    "DESCRIPTION": (
        "REST API for order management systems. Authenticate with `Authorization: Bearer "
        "<api key>`. Every POST takes an `Idempotency-Key` header. Webhooks are signed: see "
        "the `Fleetroot-Signature` header in the README."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "DriverStatusEnum": "fleet.models.DriverStatus",
        "DisputeKindEnum": "payouts.models.DisputeKind",
        "PayoutKindEnum": "payouts.models.PayoutKind",
        "DisciplineActionEnum": "discipline.models.DecisionAction",
        "DisciplineDecisionStatusEnum": "discipline.models.DecisionStatus",
        "DisciplineReviewKindEnum": "discipline.models.DisciplineReview.Kind",
        "DisciplineReviewStatusEnum": "discipline.models.DisciplineReview.Status",
        "DisciplineReviewOutcomeEnum": "discipline.models.DisciplineReview.Outcome",
    },
}

# --- Webhooks -------------------------------------------------------------------------------
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=5.0)
# The whole of one try: resolving the host, connecting, sending and reading the answer.
WEBHOOK_ATTEMPT_DEADLINE_SECONDS = env.float("WEBHOOK_ATTEMPT_DEADLINE_SECONDS", default=10.0)
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=10)
WEBHOOK_RETRY_BASE_SECONDS = env.float("WEBHOOK_RETRY_BASE_SECONDS", default=10.0)
WEBHOOK_ALLOW_PRIVATE_TARGETS = env.bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", default=DEBUG)
# A sweep sends at most this many due deliveries of one organisation, interleaved with the
# others'; in-process (no Celery) on this many threads (integrations.webhooks.sweep).
WEBHOOK_SWEEP_PER_ORG = env.int("WEBHOOK_SWEEP_PER_ORG", default=4)
WEBHOOK_SWEEP_WORKERS = env.int("WEBHOOK_SWEEP_WORKERS", default=8)
# Active subscriptions per organisation: each adds a delivery per event to the shared sweeps.
WEBHOOK_MAX_SUBSCRIPTIONS_PER_ORG = env.int("WEBHOOK_MAX_SUBSCRIPTIONS_PER_ORG", default=10)
# Of those, at most this many for one client (a client's key cannot take all the slots).
WEBHOOK_MAX_SUBSCRIPTIONS_PER_CLIENT = env.int("WEBHOOK_MAX_SUBSCRIPTIONS_PER_CLIENT", default=3)
# Plain http:// targets: development only (signed, but readable and alterable on the way).
WEBHOOK_ALLOW_HTTP = env.bool("WEBHOOK_ALLOW_HTTP", default=DEBUG)

# --- Live map ---------------------------------------------------------------------------------
# Base tiles (e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png, which needs internet access)
# and a GeoJSON streets overlay are optional. The demo serves its city's streets from its
# bundled extract at /demo/streets.geojson (make demo sets it), so its map works offline.
LIVE_MAP_TILE_URL = env("LIVE_MAP_TILE_URL", default="")
LIVE_MAP_STREETS_URL = env("LIVE_MAP_STREETS_URL", default="")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}
