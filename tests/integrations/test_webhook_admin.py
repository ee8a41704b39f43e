"""The webhook admin: writes through the services (secret shown once), and the replay action."""

import pytest
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.urls import reverse, reverse_lazy
from django.utils import timezone

from identity.models import Role, User
from identity.services import create_client
from integrations import services
from integrations.models import WebhookDelivery, WebhookSubscription
from integrations.tasks import send_due_webhooks
from tests.integrations.conftest import subscribe
from tests.integrations.test_webhook_delivery import emit

pytestmark = pytest.mark.django_db


def test_replay_action_skips_a_delivery_in_flight(client, org, receiver):
    staff = User.objects.create_superuser(
        username="staff", password="pw-123456-x", email="s@example.com", role=Role.PLATFORM_STAFF
    )
    client.force_login(staff)
    subscribe(org, receiver, ["order.*"])
    emit(org)
    emit(org, "order.cancelled")
    send_due_webhooks()
    done, in_flight = WebhookDelivery.objects.order_by("created_at")
    WebhookDelivery.objects.filter(id=in_flight.id).update(status="sending", next_attempt_at=timezone.now())

    response = client.post(
        reverse("admin:integrations_webhookdelivery_changelist"),
        {"action": "replay_deliveries", "_selected_action": [done.id, in_flight.id]},
    )
    assert response.status_code == 302
    notes = [str(m) for m in get_messages(response.wsgi_request)]
    assert "Queued 1 delivery(ies) again." in notes
    assert any(str(in_flight.id) in note and "being sent" in note for note in notes)
    done.refresh_from_db()
    in_flight.refresh_from_db()
    assert (done.status, in_flight.status) == ("pending", "sending")
    assert send_due_webhooks() == 1
    assert len(receiver.wait_for(3)) == 3


@pytest.fixture
def staff_client(client):
    staff = User.objects.create_superuser(
        username="staff", password="pw-123456-x", email="s@example.com", role=Role.PLATFORM_STAFF
    )
    client.force_login(staff)
    return client


ADD = reverse_lazy("admin:integrations_webhooksubscription_add")


def add_form(org, **changes):
    return {
        "organisation": org.pk,
        "client": "",
        "url": "https://oms.example/hooks",
        "description": "OMS",
        "event_types": '["order.*"]',
        "is_active": "on",
        **changes,
    }


def test_adding_in_the_admin_goes_through_the_service_and_shows_the_secret_once(staff_client, org):
    response = staff_client.post(ADD, add_form(org))
    assert response.status_code == 200
    subscription = WebhookSubscription.objects.get()
    assert subscription.secret.startswith("whsec_") and len(subscription.secret) > 40
    assert subscription.event_types == ["order.*"]
    assert subscription.secret in response.content.decode()  # shown once, in the answer to the add

    change = staff_client.get(
        reverse("admin:integrations_webhooksubscription_change", args=[subscription.pk])
    )
    assert change.status_code == 200
    assert subscription.secret not in change.content.decode()
    history = staff_client.get(
        reverse("admin:integrations_webhooksubscription_history", args=[subscription.pk])
    )
    assert subscription.secret not in history.content.decode()
    assert not [m for m in get_messages(response.wsgi_request) if subscription.secret in str(m)]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"url": "https://127.0.0.1/hooks"}, "url"),
        ({"url": "https://user:pw@oms.example/hooks"}, "url"),
        ({"url": "https://oms.example:0/hooks"}, "url"),
        ({"url": "http://oms.example/hooks"}, "url"),
        ({"event_types": '["order.teleported"]'}, "event_types"),
        ({"event_types": "[]"}, "event_types"),
        ({"event_types": '"order.*"'}, "event_types"),
    ],
)
def test_the_admin_add_form_refuses_what_the_service_refuses_beside_the_field(
    staff_client, org, settings, changes, field
):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    settings.WEBHOOK_ALLOW_HTTP = False
    response = staff_client.post(ADD, add_form(org, **changes))
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not WebhookSubscription.objects.exists()


def test_the_admin_refuses_a_client_of_another_organisation_and_one_subscription_too_many(
    staff_client, org, other_org, settings
):
    other_client = create_client(organisation=other_org, slug="elsewhere", name="Elsewhere Oy")
    response = staff_client.post(ADD, add_form(org, client=other_client.pk))
    assert "client" in response.context["adminform"].form.errors

    settings.WEBHOOK_MAX_SUBSCRIPTIONS_PER_ORG = 1
    assert staff_client.post(ADD, add_form(org)).status_code == 200
    response = staff_client.post(ADD, add_form(org, url="https://oms.example/second"))
    assert "is_active" in response.context["adminform"].form.errors
    assert WebhookSubscription.objects.count() == 1


def test_changing_in_the_admin_is_checked_and_deleting_keeps_the_log(staff_client, org, settings, receiver):
    subscription = subscribe(org, receiver, ["order.*"])
    emit(org)
    change = reverse("admin:integrations_webhooksubscription_change", args=[subscription.pk])
    form = {"url": receiver.url, "description": "", "event_types": '["order.*"]', "is_active": "on"}
    refused = staff_client.post(change, {**form, "event_types": '["nope.*"]'})
    assert "event_types" in refused.context["adminform"].form.errors
    assert staff_client.post(change, {**form, "description": "renamed"}).status_code == 302
    subscription.refresh_from_db()
    assert subscription.description == "renamed" and subscription.secret == receiver.secrets[0]

    delete = reverse("admin:integrations_webhooksubscription_delete", args=[subscription.pk])
    assert staff_client.post(delete, {"post": "yes"}).status_code == 302
    assert not WebhookSubscription.objects.exists()
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.subscription_id) == ("cancelled", None)
    assert send_due_webhooks() == 0


def test_a_refusal_at_save_time_is_a_message_and_nothing_is_written(staff_client, org, monkeypatch):
    """Two staff adding at once: the form's check passed for both, the service refuses the
    second at save time (the cap). The admin says so; it does not answer 500."""

    def cap_reached(**kwargs):
        raise ValidationError({"is_active": "At most 10 active subscriptions per organisation."})

    monkeypatch.setattr(services, "create_webhook_subscription", cap_reached)
    response = staff_client.post(ADD, add_form(org))
    assert response.status_code == 302
    assert any("At most 10 active" in str(m) for m in get_messages(response.wsgi_request))
    assert not WebhookSubscription.objects.exists()
