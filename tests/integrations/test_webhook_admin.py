"""The admin's replay action: replays what it can, says what it cannot, never errors."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from identity.models import Role, User
from integrations.models import WebhookDelivery
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
