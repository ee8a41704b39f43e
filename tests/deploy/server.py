"""Start the project as a deployment does: production settings, collectstatic, migrate, and
the ASGI server (uvicorn) as its own process on a free loopback port."""

import os
import secrets
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def production_env(tmp_path: Path, **overrides) -> dict[str, str]:
    """DEBUG off, a secret, its own static root, media root and (unless given) SpatiaLite file.

    Plain HTTP on loopback, so the HTTPS redirect is off; everything else as in production.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in ("DEBUG", "FLEETROOT_ALLOW_DEV_SECRET", "DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="false",
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
        STATIC_ROOT=str(tmp_path / "static"),
        MEDIA_ROOT=str(tmp_path / "media"),
        DATABASE_URL=f"spatialite:///{tmp_path / 'db.sqlite3'}",
    )
    env.update(overrides)
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"manage.py {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


@contextmanager
def running_server(env: dict[str, str], *, workers: int = 1):
    """uvicorn serving config.asgi:application; yields its base URL, stops it afterwards."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "config.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--lifespan",
        "off",
        "--workers",
        str(workers),
    ]
    log = open(env.get("SERVER_LOG", os.devnull), "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, "the server exited while starting"
            assert time.monotonic() < deadline, "the server did not answer /healthz within 30 s"
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
