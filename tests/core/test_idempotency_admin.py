"""The admin shows idempotency records without the answers they store (a secret shown once)."""

import pytest
from django.urls import reverse

from core.models import IdempotencyRecord
from integrations.models import WebhookSubscription
from tests.conftest import post

pytestmark = pytest.mark.django_db


def test_the_admin_never_shows_a_stored_answer_such_as_a_signing_secret(api, staff_client, settings):
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    created = post(
        api, "/api/v1/webhook-subscriptions", {"url": "https://example.com/hooks", "event_types": ["order.*"]}
    )
    assert created.status_code == 201, created.content
    secret = WebhookSubscription.objects.get().secret
    assert secret and secret in str(IdempotencyRecord.objects.get().response_body)
    record = IdempotencyRecord.objects.get()
    pages = [
        staff_client.get(reverse("admin:core_idempotencyrecord_changelist")),
        staff_client.get(reverse("admin:core_idempotencyrecord_change", args=[record.pk])),
    ]
    for page in pages:
        assert page.status_code == 200
        text = page.content.decode()
        assert secret not in text
        assert "bytes" in text and "201" in text
