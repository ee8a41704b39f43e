"""OpenAPI 3 at /api/schema/, valid and warning-free; Swagger UI from our own static files."""

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
import yaml
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.urls import reverse
from rest_framework.test import APIClient

from config.urls import router

RESOURCES = ["orders", "drivers", "hubs", "zones", "webhook-subscriptions", "webhook-deliveries"]


@pytest.fixture(scope="module")
def schema() -> dict:
    response = APIClient().get("/api/schema/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi")
    return yaml.safe_load(response.content)


def operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield path, method, operation


def test_the_schema_is_openapi_3_with_every_resource(schema):
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "Fleetroot API"
    for resource in RESOURCES:
        assert f"/api/v1/{resource}" in schema["paths"], resource
        assert f"/api/v1/{resource}/{{id}}" in schema["paths"], resource
    assert "post" in schema["paths"]["/api/v1/orders/{id}/cancel"]
    assert "post" in schema["paths"]["/api/v1/webhook-deliveries/{id}/replay"]


def test_the_schema_documents_every_route_of_the_router(schema):
    documented = {re.sub(r"\{[^}]+\}", "{}", path) for path in schema["paths"]}
    for prefix, viewset, _basename in router.registry:
        for route in router.get_routes(viewset):
            if not router.get_method_map(viewset, route.mapping):
                continue
            url = route.url.format(prefix=prefix, lookup="{}", trailing_slash="")
            assert "/api/v1/" + url.strip("^$") in documented, url


def test_every_post_declares_the_idempotency_key_header(schema):
    posts = [(path, op) for path, method, op in operations(schema) if method == "post"]
    assert len(posts) >= 4
    for path, operation in posts:
        if path in ("/api/v1/driver/devices", "/api/v1/onboarding/signup/{token}"):
            continue  # signing in (up) answers with a new credential once: never stored for a replay
        if path == "/api/v1/onboarding/screening/checkr/webhook":
            continue  # the provider's events are made idempotent by their event id
        headers = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "header"}
        assert "Idempotency-Key" in headers, path
        assert headers["Idempotency-Key"]["required"] is True, path


# The driver app's routes, and the applicant's own application (the same driver account).
DRIVER_APP_PATHS = ("/api/v1/driver/", "/api/v1/onboarding/application/")
# Sign-up by an organisation's link, and the screening provider's signed webhook.
UNAUTHENTICATED_PATHS = {"/api/v1/onboarding/signup/{token}", "/api/v1/onboarding/screening/checkr/webhook"}


def driver_app(path: str) -> bool:
    return path.startswith(DRIVER_APP_PATHS) or path == "/api/v1/onboarding/application"


def test_the_api_key_is_the_documented_way_in(schema):
    scheme = schema["components"]["securitySchemes"]["ApiKey"]
    assert scheme == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "frk_<prefix>_<secret>",
        "description": scheme["description"],
    }
    for path, _method, operation in operations(schema):
        if driver_app(path):
            continue  # the driver app's: below
        if path in UNAUTHENTICATED_PATHS:
            assert operation.get("security") in (None, [{}]), path
            continue
        assert {"ApiKey": []} in operation["security"], path


def test_the_driver_app_signs_in_with_a_device_token(schema):
    assert schema["components"]["securitySchemes"]["DeviceToken"]["name"] == "Authorization"
    for path, method, operation in operations(schema):
        if not driver_app(path):
            continue
        if (path, method) == ("/api/v1/driver/devices", "post"):
            assert not operation.get("security"), "signing in takes a password"
        else:
            assert operation["security"] == [{"DeviceToken": []}, {"cookieAuth": []}], path


def test_ids_are_uuids_and_statuses_named_enums(schema):
    order = schema["paths"]["/api/v1/orders/{id}"]["get"]
    (parameter,) = [p for p in order["parameters"] if p["name"] == "id"]
    assert parameter["schema"] == {"type": "string", "format": "uuid"}
    components = schema["components"]["schemas"]
    assert components["OrderStatus"]["enum"][0] == "CREATED"
    assert "DriverStatusEnum" in components and "WebhookDeliveryStatusEnum" in components


def test_the_schema_generates_without_warnings(tmp_path):
    target = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    assert yaml.safe_load(target.read_text())["paths"]


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        attrs = dict(attrs)
        if tag == "script" and attrs.get("src"):
            self.urls.append(attrs["src"])
        if tag == "link" and attrs.get("href"):
            self.urls.append(attrs["href"])


def test_swagger_ui_is_served_from_our_own_static_files():
    response = APIClient().get(reverse("swagger-ui"))
    assert response.status_code == 200
    html = response.content.decode()
    parser = _Assets()
    parser.feed(html)
    assert len(parser.urls) >= 3, parser.urls
    # The page starts Swagger UI from a script of its own (no inline script: the CSP allows none).
    init = [url for url in parser.urls if url.startswith(reverse("swagger-ui"))]
    assert init == [f"{reverse('swagger-ui')}?script="], parser.urls
    for url in set(parser.urls) - set(init):
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, url
        assert parts.path.startswith("/static/drf_spectacular_sidecar/"), url
        assert finders.find(parts.path.removeprefix("/static/")), f"{url} is not a file we ship"
    assert "<script>" not in html.replace(" ", "")
    assert not re.search(r"https?://", html.replace("http://www.w3.org", "")), "an external URL in the page"
    script = APIClient().get(init[0])
    assert script["Content-Type"].startswith("application/javascript")
    assert '"/api/schema/"' in script.content.decode()
