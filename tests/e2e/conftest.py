"""One production start for every browser test (collectstatic, migrate and the ASGI server take
half a minute): each module seeds its own rows through `manage.py shell` against it."""

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deploy.server import manage, production_env, running_server


@dataclass(frozen=True)
class Production:
    base: str  # the server's URL
    env: dict[str, str]  # for manage(): the same database, private root and settings
    tmp_path: Path


@pytest.fixture(scope="session")
def production(tmp_path_factory) -> Production:
    tmp_path = tmp_path_factory.mktemp("e2e")
    env = production_env(tmp_path, ONBOARDING_PRIVATE_ROOT=str(tmp_path / "private"))
    manage(env, "collectstatic", "--noinput", "-v0")
    manage(env, "migrate", "--noinput", "-v0")
    with running_server(env) as base:
        yield Production(base, env, tmp_path)
