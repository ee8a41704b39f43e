"""Webhook subscriptions and their delivery log."""

import uuid

from django.db import models

from core.events import pattern_matches
from core.history import History
from core.models import DomainEvent
from identity.models import Client, Organisation


class WebhookSubscription(models.Model):
    """Where an organisation wants events POSTed, and the secret their signatures use."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="webhook_subscriptions"
    )
    # Set when a client-limited caller subscribes: it then hears only that client's events.
    client = models.ForeignKey(
        Client, null=True, blank=True, on_delete=models.CASCADE, related_name="webhook_subscriptions"
    )
    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    # Event types, or ["*"] for all. Matching is exact or by prefix ("order.*").
    event_types = models.JSONField(default=list)
    # Kept in clear: it must sign every delivery. Shown in full only at creation.
    secret = models.CharField(max_length=64)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # The secret never goes into the history table.
    history = History(excluded_fields=["secret"])

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.url

    def wants(self, event: DomainEvent) -> bool:
        """Its event types name the event, and a client's subscription hears only that client's."""
        if self.client_id is not None and event.client_id != self.client_id:
            return False
        return any(pattern_matches(pattern, event.event_type) for pattern in self.event_types)


class WebhookDelivery(models.Model):
    """One event to one subscription: retried with back-off until it succeeds or gives up.

    The log outlives its subscription: deleting a subscription stops its deliveries and
    keeps what was sent, with the organisation, client and URL it was sent to.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed (gave up)"
        # Its subscription was deleted before it succeeded: never sent (again).
        CANCELLED = "cancelled", "Cancelled (subscription deleted)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    client = models.ForeignKey(Client, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    subscription = models.ForeignKey(
        WebhookSubscription, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    url = models.URLField(max_length=500)
    event = models.ForeignKey(DomainEvent, on_delete=models.CASCADE, related_name="webhook_deliveries")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["organisation", "-created_at"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "event"], name="one_delivery_per_event_per_subscription"
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_id} -> {self.subscription_id} ({self.status})"


class WebhookAttempt(models.Model):
    """The log of one HTTP try: what we sent, what came back, how long it took."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveSmallIntegerField()
    request_headers = models.JSONField(default=dict)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    attempted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="attempt_number_unique_per_delivery")
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}"
