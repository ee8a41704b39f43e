"""Automated discipline: an organisation's versioned rules, the decisions they made about drivers
(each with its inputs and explanation, in the driver's decision record) and the human reviews
of those decisions (the driver's appeals, and the rules that ask for a person)."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from core.models import ActorFields
from fleet.models import Driver, DriverStatusChange
from identity.models import Organisation


class RuleSet(ActorFields):
    """One version of an organisation's discipline rules. Every change is a new version; a
    decision keeps the version it was made under. The newest version is in force."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="discipline_rules")
    version = models.PositiveIntegerField()
    # The rules by name, with their defaults written out (discipline.engine.normalised).
    rules = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "version"], name="discipline_rules_version_unique"
            ),
            models.CheckConstraint(name="discipline_rules_version_positive", condition=Q(version__gte=1)),
        ]

    def __str__(self) -> str:
        return f"Discipline rules of {self.organisation} v{self.version}"


class DecisionAction(models.TextChoices):
    WARN = "WARN", "Warning"
    SUSPEND = "SUSPEND", "Suspension"
    HUMAN_REVIEW = "HUMAN_REVIEW", "Sent to a person for review"


class DecisionStatus(models.TextChoices):
    IN_FORCE = "IN_FORCE", "In force"
    IN_REVIEW = "IN_REVIEW", "Being reviewed by a person"
    CONFIRMED = "CONFIRMED", "Confirmed by a person"
    LIFTED = "LIFTED", "Lifted by a person"
    ENDED = "ENDED", "Suspension ended"


class DisciplineDecision(models.Model):
    """A rule's decision about a driver: the rule and the version it was made under, exactly
    what it counted and left out (`inputs`), the explanation the driver reads, and the row of
    their decision record (`status_change`) it was written to."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    driver = models.ForeignKey(Driver, on_delete=models.CASCADE, related_name="discipline_decisions")
    rule_set = models.ForeignKey(RuleSet, on_delete=models.PROTECT, related_name="decisions")
    rule_name = models.CharField(max_length=40)
    action = models.CharField(max_length=16, choices=DecisionAction.choices)
    inputs = models.JSONField()
    explanation = models.TextField()
    status = models.CharField(max_length=16, choices=DecisionStatus.choices, default=DecisionStatus.IN_FORCE)
    status_change = models.OneToOneField(
        DriverStatusChange, on_delete=models.PROTECT, related_name="discipline_decision"
    )
    # The newest item the decision counted: it names the streak or window, so the same one
    # never decides twice, and the rule's next decision counts only what came after it.
    trigger_key = models.CharField(max_length=80)
    counted_through = models.DateTimeField()
    suspended_until = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)  # a suspension that no longer holds
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["driver", "rule_name", "trigger_key"], name="discipline_decision_once_per_trigger"
            ),
            models.CheckConstraint(
                name="discipline_only_suspensions_end",
                condition=Q(action="SUSPEND") | (Q(suspended_until__isnull=True) & Q(ended_at__isnull=True)),
            ),
        ]
        indexes = [
            models.Index(fields=["driver", "rule_name", "-counted_through"]),
            models.Index(fields=["action", "ended_at", "suspended_until"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} of {self.driver} ({self.rule_name})"

    @property
    def rule_version(self) -> int:
        return self.rule_set.version


class DisciplineReview(models.Model):
    """A person's look at a decision: the driver's appeal, a rule that asks for a person, or a
    lateness the decision counted that a dispatcher excused afterwards.
    Resolved by lifting the decision (a suspended driver is reinstated) or confirming it, with
    a reason the driver reads."""

    class Kind(models.TextChoices):
        APPEAL = "APPEAL", "Appeal by the driver"
        RULE = "RULE", "Asked for by a rule"
        EXCUSE = "EXCUSE", "A lateness it counted was excused afterwards"

    class Status(models.TextChoices):
        OPEN = "OPEN", "Open"
        RESOLVED = "RESOLVED", "Resolved"

    class Outcome(models.TextChoices):
        LIFTED = "LIFTED", "Lifted"
        CONFIRMED = "CONFIRMED", "Confirmed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    decision = models.ForeignKey(DisciplineDecision, on_delete=models.CASCADE, related_name="reviews")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    appeal_text = models.TextField(blank=True)
    # Why the system opened it (an excuse given after the decision), for the reviewer and driver.
    note = models.TextField(blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)
    reason = models.TextField(blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["decision"],
                condition=Q(status="OPEN"),
                name="discipline_one_open_review_per_decision",
            ),
            models.CheckConstraint(
                name="discipline_resolved_review_has_outcome",
                condition=(Q(status="OPEN") & Q(outcome="")) | (Q(status="RESOLVED") & ~Q(outcome="")),
            ),
        ]
        indexes = [models.Index(fields=["organisation", "status", "created_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.decision}: {self.status}"
