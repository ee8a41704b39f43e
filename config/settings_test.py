"""Test settings: the same stack as production, with fast hashing and jobs run eagerly."""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

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
# Per test process, so two runs side by side (CI runs PostGIS and SpatiaLite at once) never
# share files they write; removed when the process ends.
TEST_RUN_DIR = Path(tempfile.mkdtemp(prefix="fleetroot-test-"))
atexit.register(shutil.rmtree, TEST_RUN_DIR, ignore_errors=True)
MEDIA_ROOT = str(TEST_RUN_DIR / "media")
ONBOARDING_PRIVATE_ROOT = TEST_RUN_DIR / "private"
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
