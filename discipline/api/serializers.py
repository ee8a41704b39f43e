"""The discipline API's shapes: the rules (with each rule in words), a decision as its driver
and as a reviewer see it, and the review queue."""

from rest_framework import serializers

from core.api.fields import StrictSerializer
from discipline import engine
from discipline.models import DecisionStatus, DisciplineDecision, DisciplineReview, RuleSet
from discipline.services import APPEAL_MAX_CHARS, REASON_MAX_CHARS
from fleet.api.serializers import DriverDecisionSerializer


class RuleSetSerializer(serializers.ModelSerializer):
    """The rules in force: their version, each rule with its defaults written out, and what
    each does in plain language."""

    descriptions = serializers.SerializerMethodField(help_text="What each rule does, in plain language.")
    updated_by = serializers.CharField(source="actor_display", read_only=True)
    updated_at = serializers.DateTimeField(source="created_at", read_only=True)

    class Meta:
        model = RuleSet
        fields = ["version", "rules", "descriptions", "updated_at", "updated_by"]

    def get_descriptions(self, row) -> dict[str, str]:
        return {name: engine.describe(rule) for name, rule in engine.parse_rules(row.rules).items()}


class RulesInSerializer(StrictSerializer):
    """PUT: `rules` replaces the rules. PATCH: `rules` is a JSON merge patch (RFC 7396) onto
    the rules in force, so `{"rules": {"late_streak": {"threshold": 4}}}` changes one value and
    `{"rules": {"low_rating": null}}` removes a rule."""

    rules = serializers.DictField(
        help_text="The rules by name (PUT), or a JSON merge patch onto them (PATCH)."
    )


class DisciplineReviewBriefSerializer(serializers.ModelSerializer):
    """A review as the driver sees it: what was asked, what a person decided and why."""

    class Meta:
        model = DisciplineReview
        fields = [
            "id",
            "kind",
            "status",
            "appeal_text",
            "note",
            "outcome",
            "reason",
            "created_at",
            "resolved_at",
        ]


class DisciplineDecisionSerializer(serializers.ModelSerializer):
    rule = serializers.CharField(source="rule_name")
    rule_version = serializers.IntegerField(source="rule_set.version")
    can_appeal = serializers.SerializerMethodField()
    reviews = DisciplineReviewBriefSerializer(many=True, read_only=True)

    class Meta:
        model = DisciplineDecision
        fields = [
            "id",
            "rule",
            "rule_version",
            "action",
            "status",
            "explanation",
            "inputs",
            "suspended_until",
            "ended_at",
            "created_at",
            "can_appeal",
            "reviews",
        ]

    def get_can_appeal(self, decision) -> bool:
        return decision.status in (DecisionStatus.IN_FORCE, DecisionStatus.ENDED)


class DriverDisciplineDecisionSerializer(DisciplineDecisionSerializer):
    """A discipline decision as its driver sees it, with the row of their decision record it
    was written to (fleet's decision, as /api/v1/drivers/{id} lists it)."""

    record = DriverDecisionSerializer(source="status_change", read_only=True)

    class Meta(DisciplineDecisionSerializer.Meta):
        fields = [*DisciplineDecisionSerializer.Meta.fields, "record"]


class DisciplineAppealSerializer(StrictSerializer):
    text = serializers.CharField(max_length=APPEAL_MAX_CHARS, help_text="Why the decision is wrong.")


class DisciplineResolveSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=REASON_MAX_CHARS, help_text="Shown to the driver.")


class ReviewedDecisionSerializer(DisciplineDecisionSerializer):
    driver = serializers.SerializerMethodField()

    class Meta(DisciplineDecisionSerializer.Meta):
        fields = [
            f for f in DisciplineDecisionSerializer.Meta.fields if f not in ("reviews", "can_appeal")
        ] + ["driver"]

    def get_driver(self, decision) -> dict:
        driver = decision.driver
        return {"id": str(driver.id), "name": driver.name, "status": driver.status}


class DisciplineReviewSerializer(serializers.ModelSerializer):
    """A review in the queue: the appeal (or the rule that asked), the decision and its driver,
    and, once resolved, the outcome, the reason and who decided."""

    decision = ReviewedDecisionSerializer(read_only=True)
    resolved_by = serializers.CharField(source="resolved_by.username", default=None, read_only=True)

    class Meta:
        model = DisciplineReview
        fields = [
            "id",
            "kind",
            "status",
            "appeal_text",
            "note",
            "outcome",
            "reason",
            "resolved_by",
            "created_at",
            "resolved_at",
            "decision",
        ]
