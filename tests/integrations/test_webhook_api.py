"""The webhook API: subscriptions (secret shown once), the delivery log, replay, tenancy."""

import pytest
from django.utils import timezone

from identity.services import create_api_key
from integrations.models import WebhookDelivery, WebhookSubscription
from integrations.tasks import send_due_webhooks
from tests.conftest import client_for_key, order_payload, post

pytestmark = pytest.mark.django_db
SUBSCRIPTIONS = "/api/v1/webhook-subscriptions"
DELIVERIES = "/api/v1/webhook-deliveries"


def create_subscription(api, url, event_types=("order.*",), **extra):
    response = post(api, SUBSCRIPTIONS, {"url": url, "event_types": list(event_types), **extra})
    assert response.status_code == 201, response.json()
    return response.json()


def error_fields(response) -> dict:
    assert response.status_code == 400, (response.status_code, response.json())
    return response.json()["error"]["fields"]


def test_create_shows_the_secret_once_and_reads_never_show_it(api, receiver):
    created = create_subscription(api, receiver.url, ["order.*", "driver.status_changed"], description="OMS")
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(secret) > 40
    assert created["event_types"] == ["driver.status_changed", "order.*"]
    assert created["is_active"] is True
    assert created["secret_hint"].endswith("…") and created["secret_hint"][:-1] in secret
    assert WebhookSubscription.objects.get().secret == secret

    detail = api.get(f"{SUBSCRIPTIONS}/{created['id']}")
    listing = api.get(SUBSCRIPTIONS)
    for response in (detail, listing):
        assert response.status_code == 200
        assert secret not in response.content.decode()
        assert "secret" not in (response.json() if response is detail else response.json()["results"][0])
    assert detail.json()["secret_hint"] == created["secret_hint"]


def test_create_needs_an_idempotency_key_and_a_retry_creates_nothing_new(api, receiver):
    body = {"url": receiver.url, "event_types": ["*"]}
    missing = api.post(SUBSCRIPTIONS, body, format="json")
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "idempotency_key_missing"
    first = post(api, SUBSCRIPTIONS, body, key="sub-1")
    retry = post(api, SUBSCRIPTIONS, body, key="sub-1")
    assert retry.status_code == 201
    assert retry["Idempotent-Replayed"] == "true"
    assert retry.json()["id"] == first.json()["id"]
    assert WebhookSubscription.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "not a url", "event_types": ["*"]}, "url"),
        ({"url": "ftp://example.com/hook", "event_types": ["*"]}, "url"),
        ({"url": "javascript:alert(1)", "event_types": ["*"]}, "url"),
        ({"url": "https://oms.example:0/hook", "event_types": ["*"]}, "url"),
        ({"url": "https://oms.example:65536/hook", "event_types": ["*"]}, "url"),
        ({"url": "https://user:pw@oms.example/hook", "event_types": ["*"]}, "url"),
        ({"url": "https://[::127.0.0.1]/hook", "event_types": ["*"]}, "url"),
        ({"event_types": ["*"]}, "url"),
        ({"url": "https://example.com/hook", "event_types": []}, "event_types"),
        ({"url": "https://example.com/hook"}, "event_types"),
        ({"url": "https://example.com/hook", "event_types": "order.*"}, "event_types"),
        ({"url": "https://example.com/hook", "event_types": ["order.teleported"]}, "event_types"),
        ({"url": "https://example.com/hook", "event_types": ["ledger.*"]}, "event_types"),
        ({"url": "https://example.com/hook", "event_types": ["order"]}, "event_types"),
        ({"url": "https://example.com/hook", "event_types": ["*"], "secret": "mine"}, "secret"),
        ({"url": "https://example.com/hook", "event_types": ["*"], "is_admin": True}, "is_admin"),
        ({"url": "https://example.com/hook", "event_types": ["*"], "description": "x" * 201}, "description"),
    ],
)
def test_invalid_subscriptions_are_refused_naming_the_field(api, settings, body, field):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    response = post(api, SUBSCRIPTIONS, body)
    assert field in error_fields(response)
    assert not WebhookSubscription.objects.exists()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.5/hook",
        "http://[::1]/hook",
        "http://100.100.100.200/hook",
    ],
)
def test_private_targets_are_refused_at_creation_when_not_allowed(api, settings, url):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    response = post(api, SUBSCRIPTIONS, {"url": url, "event_types": ["*"]})
    assert "url" in error_fields(response)
    assert not WebhookSubscription.objects.exists()


def test_patch_changes_what_it_names_and_validates_like_create(api, receiver):
    created = create_subscription(api, receiver.url)
    url = f"{SUBSCRIPTIONS}/{created['id']}"

    response = api.patch(url, {"event_types": ["driver.*"], "is_active": False}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["event_types"] == ["driver.*"]
    assert response.json()["is_active"] is False
    assert "secret" not in response.json()
    assert response.json()["url"] == receiver.url

    for body, field in [
        ({"event_types": ["nope.*"]}, "event_types"),
        ({"event_types": []}, "event_types"),
        ({"url": "gopher://example.com"}, "url"),
        ({"secret": "whsec_mine"}, "secret"),
    ]:
        assert field in error_fields(api.patch(url, body, format="json"))
    subscription = WebhookSubscription.objects.get()
    assert (subscription.event_types, subscription.is_active) == (["driver.*"], False)
    assert subscription.secret == created["secret"]


def test_delete_removes_the_subscription(api, receiver):
    created = create_subscription(api, receiver.url)
    assert api.delete(f"{SUBSCRIPTIONS}/{created['id']}").status_code == 204
    assert api.get(f"{SUBSCRIPTIONS}/{created['id']}").status_code == 404
    assert not WebhookSubscription.objects.exists()


def test_delete_keeps_the_delivery_log_and_cancels_what_was_not_sent(api, receiver):
    created = create_subscription(api, receiver.url)
    receiver.secrets.append(created["secret"])
    assert post(api, "/api/v1/orders", order_payload("ORD-SENT")).status_code == 201
    assert send_due_webhooks() == 1
    receiver.wait_for(1)
    assert post(api, "/api/v1/orders", order_payload("ORD-WAITING")).status_code == 201
    sent, waiting = WebhookDelivery.objects.order_by("created_at")
    assert (sent.status, waiting.status) == ("succeeded", "pending")

    assert api.delete(f"{SUBSCRIPTIONS}/{created['id']}").status_code == 204

    sent.refresh_from_db()
    waiting.refresh_from_db()
    assert (sent.status, sent.subscription_id, sent.url) == ("succeeded", None, receiver.url)
    assert (waiting.status, waiting.subscription_id, waiting.next_attempt_at) == ("cancelled", None, None)
    assert "subscription was deleted" in waiting.last_error
    assert send_due_webhooks() == 0
    assert len(receiver.requests) == 1  # the cancelled one is never sent
    logged = api.get(f"{DELIVERIES}/{waiting.id}")
    assert logged.status_code == 200 and logged.json()["status"] == "cancelled"
    replay = post(api, f"{DELIVERIES}/{waiting.id}/replay", None)
    assert "subscription" in error_fields(replay)


def test_the_secret_never_goes_into_the_history_table(api, receiver):
    created = create_subscription(api, receiver.url)
    api.patch(f"{SUBSCRIPTIONS}/{created['id']}", {"description": "changed"}, format="json")
    api.delete(f"{SUBSCRIPTIONS}/{created['id']}")
    history = WebhookSubscription.history.model
    assert "secret" not in {field.name for field in history._meta.get_fields()}
    rows = list(history.objects.values())
    assert [row["history_type"] for row in sorted(rows, key=lambda row: row["history_date"])] == [
        "+",
        "~",
        "-",
    ]
    assert all(created["secret"] not in str(row) for row in rows)


@pytest.fixture
def delivered(api, receiver):
    """An order event delivered on the second try: 500, then 200."""
    created = create_subscription(api, receiver.url)
    receiver.secrets.append(created["secret"])
    receiver.answer(500, 200)
    assert post(api, "/api/v1/orders", order_payload("ORD-LOG")).status_code == 201
    delivery = WebhookDelivery.objects.get()
    send_due_webhooks()
    WebhookDelivery.objects.filter(id=delivery.id).update(next_attempt_at=timezone.now())
    send_due_webhooks()
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.SUCCEEDED
    return delivery


def test_the_delivery_log_shows_each_try_with_its_response(api, delivered, receiver):
    listing = api.get(DELIVERIES)
    assert listing.status_code == 200
    [item] = listing.json()["results"]
    assert item["id"] == str(delivered.id)
    assert item["event_type"] == "order.created"
    assert item["event_id"] == str(delivered.event_id)
    assert item["subscription_id"] == str(delivered.subscription_id)
    assert (item["status"], item["attempts"], item["last_response_status"]) == ("succeeded", 2, 200)
    log = [(a["number"], a["response_status"], a["response_body"], a["error"]) for a in item["attempt_log"]]
    assert log == [(1, 500, "reply 500", ""), (2, 200, "reply 200", "")]
    assert all(a["duration_ms"] >= 0 and a["attempted_at"] for a in item["attempt_log"])
    assert all(r.signature_valid for r in receiver.requests)

    assert api.get(f"{DELIVERIES}/{delivered.id}").json() == item
    assert api.get(DELIVERIES, {"status": "succeeded"}).json()["results"] == [item]
    assert api.get(DELIVERIES, {"status": "failed"}).json()["results"] == []
    assert api.get(DELIVERIES, {"event_type": "order.created"}).json()["results"] == [item]
    assert api.get(DELIVERIES, {"event_type": "order.cancelled"}).json()["results"] == []
    assert "status" in error_fields(api.get(DELIVERIES, {"status": "lost"}))
    by_subscription = api.get(DELIVERIES, {"subscription": str(delivered.subscription_id)})
    assert [d["id"] for d in by_subscription.json()["results"]] == [str(delivered.id)]


def test_replay_sends_the_delivery_again(api, delivered, receiver):
    response = post(api, f"{DELIVERIES}/{delivered.id}/replay", {})
    assert response.status_code == 202, response.json()
    assert response.json()["status"] == "pending"
    assert response.json()["attempts"] == 2

    assert send_due_webhooks() == 1
    first, _, third = receiver.wait_for(3)
    assert third.header("Fleetroot-Attempt") == "3"
    assert third.header("Fleetroot-Event-Id") == first.header("Fleetroot-Event-Id")
    assert third.body == first.body
    assert third.signature_valid is True

    detail = api.get(f"{DELIVERIES}/{delivered.id}").json()
    assert (detail["status"], detail["attempts"]) == ("succeeded", 3)
    assert [a["number"] for a in detail["attempt_log"]] == [1, 2, 3]
    assert send_due_webhooks() == 0


def test_replay_of_a_failed_delivery_gives_it_one_more_try(api, delivered, receiver, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    WebhookDelivery.objects.filter(id=delivered.id).update(status="failed", next_attempt_at=None)
    assert post(api, f"{DELIVERIES}/{delivered.id}/replay", {}).status_code == 202
    send_due_webhooks()
    delivered.refresh_from_db()
    assert (delivered.status, delivered.attempts) == ("succeeded", 3)


def test_replay_is_refused_while_a_try_is_in_flight(api, delivered):
    WebhookDelivery.objects.filter(id=delivered.id).update(status="sending", next_attempt_at=timezone.now())
    response = post(api, f"{DELIVERIES}/{delivered.id}/replay", {})
    assert response.status_code == 409
    assert WebhookDelivery.objects.get().status == "sending"


def test_replay_is_refused_for_an_inactive_subscription(api, delivered):
    WebhookSubscription.objects.update(is_active=False)
    response = post(api, f"{DELIVERIES}/{delivered.id}/replay", {})
    assert "subscription" in error_fields(response)
    assert WebhookDelivery.objects.get().status == "succeeded"


def test_replay_needs_an_idempotency_key(api, delivered):
    response = api.post(f"{DELIVERIES}/{delivered.id}/replay", {}, format="json")
    assert response.status_code == 400
    assert WebhookDelivery.objects.get().status == "succeeded"


def test_another_organisation_sees_and_touches_nothing(api, other_api, delivered, receiver):
    subscription = WebhookSubscription.objects.get()
    sub_url, delivery_url = f"{SUBSCRIPTIONS}/{subscription.id}", f"{DELIVERIES}/{delivered.id}"

    assert other_api.get(SUBSCRIPTIONS).json()["results"] == []
    assert other_api.get(DELIVERIES).json()["results"] == []
    # Filtering by a foreign id answers like an unknown id: it does not tell that it exists.
    foreign = other_api.get(DELIVERIES, {"subscription": str(subscription.id)})
    assert (foreign.status_code, foreign.json()["results"]) == (200, [])
    assert other_api.get(sub_url).status_code == 404
    assert other_api.patch(sub_url, {"is_active": False}, format="json").status_code == 404
    assert other_api.delete(sub_url).status_code == 404
    assert other_api.get(delivery_url).status_code == 404
    assert post(other_api, f"{delivery_url}/replay", {}).status_code == 404

    subscription.refresh_from_db()
    assert subscription.is_active is True
    assert WebhookDelivery.objects.get().status == "succeeded"
    assert send_due_webhooks() == 0
    assert len(receiver.requests) == 2


def test_managing_webhooks_needs_the_webhooks_scope(org, receiver):
    reader = client_for_key(create_api_key(organisation=org, name="reader", scopes=["orders:read"]))
    assert reader.get(SUBSCRIPTIONS).status_code == 403
    assert reader.get(DELIVERIES).status_code == 403
    response = post(reader, SUBSCRIPTIONS, {"url": receiver.url, "event_types": ["*"]})
    assert response.status_code == 403
    assert not WebhookSubscription.objects.exists()


def test_an_organisation_has_at_most_the_capped_number_of_active_subscriptions(
    api, other_api, settings, receiver
):
    settings.WEBHOOK_MAX_SUBSCRIPTIONS_PER_ORG = 3
    created = [create_subscription(api, f"{receiver.url}/{n}") for n in range(3)]
    refused = post(api, SUBSCRIPTIONS, {"url": f"{receiver.url}/4", "event_types": ["*"]})
    assert "at most 3 active" in error_fields(refused)["is_active"][0]
    assert WebhookSubscription.objects.count() == 3
    create_subscription(other_api, receiver.url)  # another organisation has its own room

    # An inactive one does not count, and activating it again is checked too.
    assert (
        api.patch(f"{SUBSCRIPTIONS}/{created[0]['id']}", {"is_active": False}, format="json").status_code
        == 200
    )
    fourth = create_subscription(api, f"{receiver.url}/4")
    reactivate = api.patch(f"{SUBSCRIPTIONS}/{created[0]['id']}", {"is_active": True}, format="json")
    assert "is_active" in error_fields(reactivate)
    assert not WebhookSubscription.objects.get(id=created[0]["id"]).is_active
    # Changing an active one is not adding one.
    assert api.patch(f"{SUBSCRIPTIONS}/{fourth['id']}", {"is_active": True}, format="json").status_code == 200
