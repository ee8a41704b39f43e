"""JSON nested 1,000 deep (2 KB) is a 400 naming `body` on every write endpoint, never a 500."""

import logging
import uuid

import pytest

from core.api.parsers import MAX_JSON_DEPTH, json_depth
from tests.api.conftest import client_for, error_of
from tests.api.test_tenancy import WRITE_METHODS, router_endpoints

DEEP = ("[" * 1000 + "]" * 1000).encode()
# Actions that read no body (they ignore whatever is sent).
BODYLESS = {("webhook-delivery", "replay")}


def test_depth_is_counted_outside_strings():
    assert json_depth(b'{"a": [1, {"b": "[[[[{{{{"}]}') == 3
    assert json_depth(b'"\\"[[["') == 0
    assert json_depth(DEEP) == 1000


def test_every_write_endpoint_refuses_deep_json_naming_body(org_b, caplog):
    client = client_for(org_b.api_key)
    problems = []
    calls = 0
    for endpoint in router_endpoints():
        object_id = org_b.ids()[endpoint.basename] if endpoint.detail else None
        for method in endpoint.methods:
            if method not in WRITE_METHODS or (endpoint.basename, endpoint.actions[method]) in BODYLESS:
                continue
            with caplog.at_level(logging.WARNING):
                caplog.clear()
                response = client.generic(
                    method,
                    endpoint.url(object_id),
                    DEEP,
                    content_type="application/json",
                    HTTP_IDEMPOTENCY_KEY=f"deep-{uuid.uuid4()}",
                )
            calls += 1
            if response.status_code != 400:
                problems.append(f"{method} {endpoint}: {response.status_code}")
                continue
            error = error_of(response)
            if list(error.get("fields", {})) != ["body"] or str(MAX_JSON_DEPTH) not in error["message"]:
                problems.append(f"{method} {endpoint}: {error}")
            tracebacks = [r for r in caplog.records if r.exc_info]
            if tracebacks or len(caplog.records) > 1:
                problems.append(f"{method} {endpoint}: logged {[r.getMessage() for r in caplog.records]}")
    assert not problems, "\n".join(problems)
    assert calls >= 8


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1])
def test_the_limit_is_exact(api, depth):
    body = ('{"external_ref": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}").encode()
    response = api.generic(
        "POST", "/api/v1/orders", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY=f"d-{depth}"
    )
    assert response.status_code == 400
    fields = error_of(response)["fields"]
    assert ("body" in fields) == (depth > MAX_JSON_DEPTH)
