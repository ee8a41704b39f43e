"""Rate limits per API key: its own rate, counted per key, answered with 429 and Retry-After."""

from core.models import IdempotencyRecord
from dispatch.models import Order
from identity.services import create_api_key
from tests.api.conftest import client_for, error_of
from tests.conftest import order_payload, post


def test_a_key_over_its_rate_gets_429_with_retry_after(org):
    limited = client_for(create_api_key(organisation=org, name="slow", rate_limit_per_minute=3))
    assert [limited.get("/api/v1/orders").status_code for _ in range(3)] == [200, 200, 200]
    response = limited.get("/api/v1/orders")
    assert response.status_code == 429
    assert error_of(response)["code"] == "throttled"
    assert 1 <= int(response["Retry-After"]) <= 60
    # Every method counts, and a refused POST writes nothing.
    refused = post(limited, "/api/v1/orders", order_payload(ref="THROTTLED"))
    assert refused.status_code == 429
    assert not Order.objects.exists() and not IdempotencyRecord.objects.exists()


def test_another_key_is_unaffected(org, other_org):
    limited = client_for(create_api_key(organisation=org, name="slow", rate_limit_per_minute=3))
    same_org = client_for(create_api_key(organisation=org, name="fast", rate_limit_per_minute=3))
    for _ in range(3):
        limited.get("/api/v1/orders")
    assert limited.get("/api/v1/orders").status_code == 429
    assert same_org.get("/api/v1/orders").status_code == 200
    other = client_for(create_api_key(organisation=other_org, name="other", rate_limit_per_minute=3))
    assert other.get("/api/v1/orders").status_code == 200


def test_the_rate_is_the_keys_own(org):
    generous = client_for(create_api_key(organisation=org, name="generous", rate_limit_per_minute=10))
    assert {generous.get("/api/v1/hubs").status_code for _ in range(10)} == {200}
    assert generous.get("/api/v1/hubs").status_code == 429
