"""The domain event log (one row for everything that happened, with who did it and why) and
the idempotency records of the API.

The event log is the audit trail, the source of outgoing webhooks (integrations fans events
out to subscriptions in the same transaction) and what the live map listens to. Each event
carries a sequence number per organisation, without gaps, so a consumer can tell a gap or a
replay.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from core.actors import ActorType


class ActorFields(models.Model):
    """Who made a change; filled from core.actors.Actor.as_fields()."""

    actor_type = models.CharField(max_length=16, choices=ActorType.choices)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_api_key = models.ForeignKey(
        "identity.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=120, blank=True)

    class Meta:
        abstract = True

    @property
    def actor_display(self) -> str:
        return (
            f"{self.get_actor_type_display()}: {self.actor_label}"
            if self.actor_label
            else (self.get_actor_type_display())
        )


class DomainEvent(ActorFields):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey("identity.Organisation", on_delete=models.CASCADE, related_name="events")
    # 1, 2, 3... per organisation, in commit order of the events' transactions.
    sequence = models.PositiveBigIntegerField()
    # The client whose order the event is about; client-limited callers hear only theirs.
    client = models.ForeignKey(
        "identity.Client", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    event_type = models.CharField(max_length=64, db_index=True)
    subject_type = models.CharField(max_length=32)
    subject_id = models.CharField(max_length=64)
    reason = models.TextField(blank=True)
    payload = models.JSONField(default=dict)
    occurred_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-occurred_at"]
        indexes = [
            models.Index(fields=["organisation", "-occurred_at"]),
            models.Index(fields=["subject_type", "subject_id"]),
        ]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "sequence"], name="event_sequence_unique_per_org")
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.subject_type}:{self.subject_id}"


class EventCounter(models.Model):
    """The last event sequence number handed out in an organisation.

    Taking the next number updates this row, so it is locked until the event's transaction
    ends: numbers are given in commit order and a rolled-back transaction leaves no gap.
    """

    organisation = models.OneToOneField(
        "identity.Organisation", primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    last_sequence = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.organisation_id}: {self.last_sequence}"


class IdempotencyRecord(models.Model):
    """The first response to a POST with a given Idempotency-Key, replayed to retries.

    While the first request runs the record is IN_PROGRESS with a lease; a request that
    crashed without finishing leaves a lease that runs out, after which a retry may run.
    """

    class State(models.TextChoices):
        IN_PROGRESS = "in_progress", "In progress"
        COMPLETED = "completed", "Completed"

    organisation = models.ForeignKey("identity.Organisation", on_delete=models.CASCADE, related_name="+")
    # The caller: an API key, or a signed-in user; a key is private to its caller.
    caller = models.CharField(max_length=64)
    key = models.CharField(max_length=255)
    request_fingerprint = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=State.choices, default=State.IN_PROGRESS)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["caller", "key"], name="idempotency_key_unique_per_caller"),
            models.CheckConstraint(
                name="idempotency_in_progress_has_lease",
                condition=Q(state="completed") | Q(lease_expires_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.caller} {self.key}"
