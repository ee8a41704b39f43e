"""With production values from the environment, `check --deploy` has nothing to say."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_check(extra_env):
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "FLEETROOT_ALLOW_DEV_SECRET")}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", **extra_env)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_deploy_is_clean_with_production_values():
    result = run_check(
        {
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "fleet.example.com",
            "DATABASE_URL": "postgis://fleetroot:pw@db.example.com:5432/fleetroot",
            "REDIS_URL": "redis://cache.example.com:6379/0",
        }
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    result = run_check({"SECRET_KEY": "", "ALLOWED_HOSTS": "fleet.example.com"})
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


@pytest.mark.parametrize("url", ["postgis://u:p@h:5432/d", "postgres://u:p@h:5432/d"])
def test_database_url_selects_postgis(url):
    code = "from django.conf import settings; print(settings.DATABASES['default']['ENGINE'])"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "FLEETROOT_ALLOW_DEV_SECRET": "1",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    out = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.strip() == "django.contrib.gis.db.backends.postgis"
