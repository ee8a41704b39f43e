"""A client's webhook subscriptions: only patterns matching events a client hears (its orders'),
and at most WEBHOOK_MAX_SUBSCRIPTIONS_PER_CLIENT active ones, checked next to the organisation's cap."""

import pytest

from core import events
from identity.services import create_api_key, create_client
from integrations.models import WebhookSubscription
from tests.api.conftest import client_for, error_of
from tests.conftest import post

pytestmark = pytest.mark.django_db
URL = "/api/v1/webhook-subscriptions"


@pytest.fixture
def client_key(org):
    client = create_client(organisation=org, slug="x-retail", name="X Retail")
    return client_for(create_api_key(organisation=org, name="x-oms", client=client))


def subscribe_as(api, event_types, n=0):
    return post(api, URL, {"url": f"https://oms{n}.example/hooks", "event_types": event_types})


@pytest.mark.parametrize("patterns", [["driver.*"], ["order.*", "driver.*"], ["driver.went_online"]])
def test_a_client_key_cannot_subscribe_to_events_it_would_never_hear(client_key, patterns):
    known_driver_type = next(name for name in events.event_types() if name.startswith("driver."))
    patterns = [known_driver_type if p == "driver.went_online" else p for p in patterns]
    response = subscribe_as(client_key, patterns)
    assert response.status_code == 400
    error = error_of(response)
    assert list(error["fields"]) == ["event_types"] and "never hears" in error["fields"]["event_types"][0]
    assert not WebhookSubscription.objects.exists()


@pytest.mark.parametrize("patterns", [["*"], ["order.*"], ["order.delivered"]])
def test_a_client_key_may_subscribe_to_its_orders_events(client_key, patterns):
    assert subscribe_as(client_key, patterns).status_code == 201


def test_an_organisation_key_may_still_subscribe_to_driver_events(api):
    assert subscribe_as(api, ["driver.*"]).status_code == 201


def test_only_order_events_are_client_scoped():
    scoped = events.event_types(client_scoped_only=True)
    assert scoped and all(name.startswith("order.") for name in scoped)
    assert not events.is_known_pattern("driver.*", client_scoped_only=True)
    assert events.is_known_pattern("driver.*")


def test_one_client_takes_at_most_its_share_of_the_organisations_slots(client_key, api, settings):
    settings.WEBHOOK_MAX_SUBSCRIPTIONS_PER_CLIENT = 3
    for n in range(3):
        assert subscribe_as(client_key, ["order.*"], n).status_code == 201
    fourth = subscribe_as(client_key, ["order.*"], 3)
    assert fourth.status_code == 400 and list(error_of(fourth)["fields"]) == ["is_active"]
    assert "client" in error_of(fourth)["fields"]["is_active"][0]
    # The organisation's own slots are still there, and a paused one can be reactivated only with room.
    assert subscribe_as(api, ["order.*"], 4).status_code == 201
    first = WebhookSubscription.objects.filter(client__isnull=False).order_by("created_at").first()
    assert client_key.patch(f"{URL}/{first.id}", {"is_active": False}, format="json").status_code == 200
    assert subscribe_as(client_key, ["order.*"], 5).status_code == 201
    again = client_key.patch(f"{URL}/{first.id}", {"is_active": True}, format="json")
    assert again.status_code == 400 and list(error_of(again)["fields"]) == ["is_active"]


def test_a_client_subscription_cannot_be_changed_to_driver_events(client_key):
    created = subscribe_as(client_key, ["order.*"])
    response = client_key.patch(f"{URL}/{created.json()['id']}", {"event_types": ["driver.*"]}, format="json")
    assert response.status_code == 400 and list(error_of(response)["fields"]) == ["event_types"]
    assert WebhookSubscription.objects.get().event_types == ["order.*"]
