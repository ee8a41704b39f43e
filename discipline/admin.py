"""Discipline in Django admin, a client of discipline.services: the rules (a new version only,
checked by the rules' parser, errors named by path), the decisions (read-only, with what each
counted and its explanation) and the review queue (lifted or confirmed through its form, with
a reason the driver reads; audited)."""

from django.contrib import admin

from core.actors import Actor
from core.admin import ReadOnlyAdmin
from core.admin_forms import JSON_FORMFIELD_OVERRIDES, ServiceModelForm
from core.admin_overrides import StatusOverrideAdminMixin
from discipline import services
from discipline.models import DisciplineDecision, DisciplineReview, RuleSet


class RuleSetForm(ServiceModelForm):
    class Meta:
        model = RuleSet
        fields = ["organisation", "rules"]

    def check_with_service(self, row) -> None:
        services.check_rules(row.rules)


@admin.register(RuleSet)
class RuleSetAdmin(admin.ModelAdmin):
    """Each version of an organisation's rules. "Add" publishes a new version through
    discipline.services.update_rules; a version is never edited or deleted."""

    form = RuleSetForm
    formfield_overrides = JSON_FORMFIELD_OVERRIDES
    list_display = ["organisation", "version", "created_at", "actor_label"]
    list_filter = ["organisation"]

    def has_change_permission(self, request, obj=None):
        return obj is None

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        row = services.update_rules(
            organisation=obj.organisation,
            rules=form.cleaned_data["rules"],
            actor=Actor.for_user(request.user),
        )
        obj.pk = row.pk
        obj.refresh_from_db()


@admin.register(DisciplineDecision)
class DisciplineDecisionAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "driver", "rule_name", "action", "status", "suspended_until", "ended_at"]
    list_filter = ["organisation", "action", "status"]
    search_fields = ["driver__name", "rule_name"]
    list_select_related = ["driver"]


@admin.register(DisciplineReview)
class DisciplineReviewAdmin(StatusOverrideAdminMixin, admin.ModelAdmin):
    """The human review queue. "Force a status…" decides: lift (a suspended driver is
    reinstated) or confirm, with a reason the driver reads."""

    list_display = ["created_at", "decision", "kind", "status", "outcome", "resolved_by"]
    list_filter = ["status", "kind", "organisation"]
    fields = ["decision", "explanation", "kind", "status", "appeal_text", "note", "outcome", "reason"]
    fields += ["resolved_by", "resolved_at", "override_link"]
    readonly_fields = fields
    status_choices = [("lift", "Lift the decision"), ("confirm", "Confirm the decision")]

    @admin.display(description="The decision's explanation")
    def explanation(self, review):
        return review.decision.explanation

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        """Every field is read-only: a review is decided only through its override form."""

    def apply_override(self, review, *, to_status, actor, reason):
        services.resolve_review(
            review_id=review.id,
            organisation=review.organisation,
            outcome=to_status,
            reason=reason,
            user=actor.user,
        )
