"""The domain event log: one row for everything that happened, with who did it and why.

It is the audit trail, the source of outgoing webhooks (integrations fans events out to
subscriptions in the same transaction) and what the live map listens to.
"""

import uuid

from django.conf import settings
from django.db import models

from core.actors import ActorType


class ActorFields(models.Model):
    """Who made a change; filled from core.actors.Actor.as_fields()."""

    actor_type = models.CharField(max_length=16, choices=ActorType.choices)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_api_key = models.ForeignKey(
        "integrations.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
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
    organisation = models.ForeignKey("fleet.Organisation", on_delete=models.CASCADE, related_name="events")
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

    def __str__(self) -> str:
        return f"{self.event_type} {self.subject_type}:{self.subject_id}"
