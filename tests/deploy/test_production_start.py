"""The production start of the README works: with DEBUG off, a secret, `collectstatic` and
`migrate`, the ASGI server serves the login page, the admin, the API docs and the live map,
with every static file they name."""

import re

import httpx

from tests.deploy.server import manage, production_env, running_server


def static_urls(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="(/static/[^"]+)"', html)


def assert_page_and_its_static_files(client: httpx.Client, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, f"{path}: {page.status_code} {page.text[:300]}"
    urls = static_urls(page.text)
    assert urls, f"{path} names no static file"
    for url in urls:
        # The manifest storage names hashed files; each one is served.
        assert re.search(r"\.[0-9a-f]{12}\.", url), f"{url} is not from the manifest"
        assert client.get(url).status_code == 200, url
    return page.text


def test_a_production_start_serves_its_pages(tmp_path):
    env = production_env(tmp_path)
    manage(env, "collectstatic", "--noinput", "-v0")
    manage(env, "migrate", "--noinput", "-v0")
    manage(
        env,
        "shell",
        "-c",
        "from identity.models import Organisation, User, Role;"
        "org = Organisation.objects.create(slug='p', name='Prod Test');"
        "User.objects.create_user('ops', password='pw-123456-prod', organisation=org, role=Role.DISPATCHER)",
    )
    with running_server(env) as base, httpx.Client(base_url=base, follow_redirects=False) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        login_html = assert_page_and_its_static_files(client, "/accounts/login/")
        assert_page_and_its_static_files(client, "/admin/login/")
        assert_page_and_its_static_files(client, "/api/docs/")
        assert client.get("/api/schema/").status_code == 200
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_html).group(1)
        signed_in = client.post(
            "/accounts/login/",
            data={"username": "ops", "password": "pw-123456-prod", "csrfmiddlewaretoken": token},
            headers={"Referer": f"{base}/accounts/login/"},
        )
        assert signed_in.status_code == 302, signed_in.text[:300]
        live = assert_page_and_its_static_files(client, "/live/")
        assert "Prod Test" in live
        assert client.get("/no-such-page").status_code == 404
