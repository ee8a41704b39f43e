"""Scorecards in the admin: everything read-only; a late delivery is excused on its own page
through scorecards.services.excuse_late_delivery (reason required, audited)."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from core.actors import Actor
from core.admin import ReadOnlyAdmin
from core.admin_forms import add_service_errors
from scorecards import services
from scorecards.models import (
    DailyStats,
    DeliveryOutcome,
    OfferAnswer,
    Outcome,
    Rating,
    Scorecard,
    ScorecardSettings,
    ScorecardSnapshot,
)


class ExcuseForm(forms.Form):
    reason = forms.CharField(
        max_length=services.EXCUSE_REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Why the lateness was not the driver's doing; the driver reads it.",
    )


@admin.register(DeliveryOutcome)
class DeliveryOutcomeAdmin(ReadOnlyAdmin):
    list_display = [
        "finished_at",
        "driver",
        "order",
        "outcome",
        "late_seconds",
        "excused_cause",
        "excuse_link",
    ]
    list_filter = ["outcome", "excused_cause", "organisation"]
    search_fields = ["order__external_ref", "driver__name"]
    list_select_related = ["driver", "order"]

    def get_urls(self):
        return [
            path(
                "<int:object_id>/excuse/",
                self.admin_site.admin_view(self.excuse_view),
                name="scorecards_deliveryoutcome_excuse",
            ),
            *super().get_urls(),
        ]

    @admin.display(description="Excuse")
    def excuse_link(self, outcome):
        if outcome.outcome != Outcome.LATE or outcome.excused_cause:
            return outcome.get_excused_cause_display() if outcome.excused_cause else "-"
        return format_html(
            '<a class="button" href="{}">Excuse…</a>',
            reverse("admin:scorecards_deliveryoutcome_excuse", args=[outcome.pk]),
        )

    def excuse_view(self, request, object_id):
        outcome = self.get_object(request, str(object_id))
        if outcome is None or not request.user.has_perm("scorecards.change_deliveryoutcome"):
            raise Http404
        form = ExcuseForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                services.excuse_late_delivery(
                    outcome_id=outcome.id,
                    organisation=outcome.organisation,
                    actor=Actor.for_user(request.user),
                    reason=form.cleaned_data["reason"],
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                self.message_user(
                    request, "Excused; the driver's scorecard no longer counts it.", messages.SUCCESS
                )
                return HttpResponseRedirect(reverse("admin:scorecards_deliveryoutcome_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Excuse the late delivery of {outcome.order}",
            "outcome": outcome,
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/scorecards/excuse_outcome.html", context)


@admin.register(Scorecard)
class ScorecardAdmin(ReadOnlyAdmin):
    list_display = ["driver", "organisation", "performance_score", "updated_at"]
    list_filter = ["organisation"]
    search_fields = ["driver__name"]
    list_select_related = ["driver", "organisation"]


@admin.register(ScorecardSnapshot)
class ScorecardSnapshotAdmin(ReadOnlyAdmin):
    list_display = ["day", "driver", "performance_score"]
    list_filter = ["organisation"]


@admin.register(DailyStats)
class DailyStatsAdmin(ReadOnlyAdmin):
    list_display = ["day", "driver", "deliveries_on_time", "deliveries_late", "deliveries_late_excused"]
    list_filter = ["organisation"]


@admin.register(OfferAnswer)
class OfferAnswerAdmin(ReadOnlyAdmin):
    list_display = ["answered_at", "driver", "answer"]
    list_filter = ["answer", "organisation"]


@admin.register(Rating)
class RatingAdmin(ReadOnlyAdmin):
    list_display = ["rated_at", "driver", "order", "stars"]
    list_filter = ["stars", "organisation"]


@admin.register(ScorecardSettings)
class ScorecardSettingsAdmin(ReadOnlyAdmin):
    """Changed through the API (`/api/v1/scorecard-settings`), which validates and audits."""

    list_display = ["organisation", "prior_strength", "last_n_orders", "updated_at"]
