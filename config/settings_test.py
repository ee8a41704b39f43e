"""Test settings: the same stack as production, with fast hashing and jobs run eagerly."""

import os

os.environ.setdefault("FLEETROOT_ALLOW_DEV_SECRET", "true")

from config.settings import *  # noqa: F403
from config.settings import VAR_DIR

DEBUG = False
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = True
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
MEDIA_ROOT = str(VAR_DIR / "test-media")
WEBHOOK_ALLOW_PRIVATE_TARGETS = True
WEBHOOK_TIMEOUT_SECONDS = 2.0
WHITENOISE_AUTOREFRESH = True

if not DATABASE_IS_SPATIALITE:  # noqa: F405
    # The test process opens and closes connections from its own threads and drops the test
    # database at the end: no pool here (a pooled connection would keep it open). The servers
    # that tests start run config.settings, with the pool.
    DATABASES["default"]["OPTIONS"].pop("pool", None)  # noqa: F405

if DATABASE_IS_SPATIALITE:  # noqa: F405
    # A file, not shared-cache memory: threads in concurrency tests then wait on the lock
    # (busy timeout) as in production instead of failing with "table is locked".
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}  # noqa: F405
