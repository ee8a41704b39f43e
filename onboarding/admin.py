"""Onboarding in Django admin: the review queue (decided through onboarding.services with a
reason, audited, four-eyes when configured), applications with each check's result, links to
the audited identity-document view, the organisations' sign-up links and policies."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from core.admin import ReadOnlyAdmin, ReadOnlyMixin
from core.admin_overrides import StatusOverrideAdminMixin
from onboarding import decisions, services
from onboarding.models import (
    Application,
    CheckResult,
    Consent,
    Document,
    DocumentAccess,
    OnboardingPolicy,
    Review,
)


class CheckResultInline(ReadOnlyMixin, admin.TabularInline):
    model = CheckResult
    extra = 0
    fields = ["step", "outcome", "reason_codes", "inputs", "details", "checked_at"]
    readonly_fields = fields


class ConsentInline(ReadOnlyMixin, admin.TabularInline):
    model = Consent
    extra = 0
    fields = ["kind", "text_version", "text_sha256", "given_at"]
    readonly_fields = fields


class DocumentInline(ReadOnlyMixin, admin.TabularInline):
    model = Document
    extra = 0
    fields = ["kind", "sequence", "view", "sha256", "expires_on", "uploaded_at", "purged_at"]
    readonly_fields = fields

    @admin.display(description="File (each view is audited)")
    def view(self, document):
        if not document.file:
            return "deleted"
        url = reverse("onboarding-document-file", args=[document.id])
        return format_html('<a href="{}" target="_blank" rel="noopener">open</a>', url)


@admin.register(Application)
class ApplicationAdmin(ReadOnlyAdmin):
    list_display = ["driver", "organisation", "status", "decision_codes", "submitted_at", "decided_at"]
    list_filter = ["organisation", "status"]
    search_fields = ["driver__name", "driver__email"]
    inlines = [CheckResultInline, DocumentInline, ConsentInline]


@admin.register(Review)
class ReviewAdmin(StatusOverrideAdminMixin, admin.ModelAdmin):
    """The human review queue. "Force a status…" decides: approve or deny with a reason the
    applicant reads; with ONBOARDING_FOUR_EYES a decision against the checks waits for a
    second reviewer."""

    list_display = [
        "application",
        "organisation",
        "kind",
        "status",
        "proposed_outcome",
        "proposed_by",
        "created_at",
    ]
    list_filter = ["status", "kind", "organisation"]
    fields = ["application", "kind", "status", "codes", "appeal_text", "proposed_outcome", "proposed_reason"]
    fields += [
        "proposed_by",
        "resolved_outcome",
        "resolved_reason",
        "resolved_by",
        "resolved_at",
        "override_link",
    ]
    readonly_fields = fields
    status_choices = [(decisions.APPROVED, "Approve"), (decisions.ACCESS_DENIED, "Deny access")]

    @admin.display(description="Reasons found by the checks")
    def codes(self, review):
        return format_html_join(
            "",
            "<p>{}: {}</p>",
            ((c, decisions.REASON_TEXT.get(c, c)) for c in review.application.decision_codes),
        )

    def has_add_permission(self, request):
        return False

    def save_model(self, request, obj, form, change):
        """Every field is read-only: a review is decided only through its override form."""

    def has_delete_permission(self, request, obj=None):
        return False

    def apply_override(self, review, *, to_status, actor, reason):
        services.resolve_review(
            review_id=review.id,
            organisation=review.organisation,
            outcome=to_status,
            reason=reason,
            user=actor.user,
        )


@admin.register(DocumentAccess)
class DocumentAccessAdmin(ReadOnlyAdmin):
    list_display = ["accessed_at", "document", "actor_label", "remote_addr"]
    search_fields = ["actor_label"]


@admin.register(OnboardingPolicy)
class OnboardingPolicyAdmin(ReadOnlyAdmin):
    list_display = ["organisation", "is_open", "signup_link", "deny_codes"]

    @admin.display(description="Sign-up link")
    def signup_link(self, policy):
        return reverse("onboarding-join", args=[policy.signup_token])
