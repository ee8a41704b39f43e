"""Settlement in the admin: the ledger and payouts are view-only (rows are append-only or
moved by services); tariffs are published through payouts.services.rules; disputes waiting
for a person are decided through payouts.services.disputes."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.forms.models import model_to_dict
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from core.actors import Actor
from core.admin import ReadOnlyAdmin, ReadOnlyMixin
from core.admin_forms import JSON_FORMFIELD_OVERRIDES, ServiceModelForm, add_service_errors
from payouts.models import (
    Account,
    Dispute,
    DisputeStatus,
    Earning,
    EarningRule,
    LedgerEntry,
    LedgerTransaction,
    Payout,
    PayoutCycle,
    PriceList,
)
from payouts.services import disputes, rules


class LedgerEntryInline(ReadOnlyMixin, admin.TabularInline):
    model = LedgerEntry
    fields = ["account", "amount_minor", "currency"]
    readonly_fields = fields
    extra = 0


@admin.register(LedgerTransaction)
class LedgerTransactionAdmin(ReadOnlyAdmin):
    list_display = ["posted_at", "organisation", "kind", "currency", "description"]
    list_filter = ["kind", "currency", "organisation"]
    search_fields = ["key", "description"]
    inlines = [LedgerEntryInline]


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ["kind", "organisation", "driver", "client", "currency"]
    list_filter = ["kind", "currency", "organisation"]


@admin.register(Earning)
class EarningAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "driver",
        "order",
        "total_minor",
        "currency",
        "distance_m",
        "distance_source",
    ]
    list_filter = ["organisation", "distance_source"]


@admin.register(Payout)
class PayoutAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "driver",
        "kind",
        "net_minor",
        "fee_minor",
        "currency",
        "provider",
        "status",
    ]
    list_filter = ["status", "kind", "provider", "organisation"]


@admin.register(PayoutCycle)
class PayoutCycleAdmin(ReadOnlyAdmin):
    list_display = ["organisation", "period_start", "period_end", "closed_at"]


class EarningRuleForm(ServiceModelForm):
    class Meta:
        model = EarningRule
        exclude = ["effective_to"]

    def check_with_service(self, instance) -> None:
        rules.check_earning_rule(instance)


class PublishOnlyAdmin(admin.ModelAdmin):
    """New versions only: a version in use is never edited (publish a new one instead)."""

    def has_change_permission(self, request, obj=None):
        return obj is None

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(EarningRule)
class EarningRuleAdmin(PublishOnlyAdmin):
    form = EarningRuleForm
    formfield_overrides = JSON_FORMFIELD_OVERRIDES
    list_display = [
        "organisation",
        "zone",
        "vehicle_type",
        "base_minor",
        "per_km_minor",
        "effective_from",
        "effective_to",
    ]
    list_filter = ["organisation", "vehicle_type"]

    def save_model(self, request, obj, form, change):
        fields = model_to_dict(obj, exclude=["id", "organisation", "effective_from", "effective_to", "zone"])
        rule = rules.publish_earning_rule(
            organisation=obj.organisation, effective_from=obj.effective_from, zone=obj.zone, **fields
        )
        obj.pk = rule.pk
        obj.refresh_from_db()


@admin.register(PriceList)
class PriceListAdmin(PublishOnlyAdmin):
    list_display = ["organisation", "client", "base_minor", "per_km_minor", "effective_from", "effective_to"]
    exclude = ["effective_to"]

    def save_model(self, request, obj, form, change):
        published = rules.publish_price_list(
            organisation=obj.organisation,
            client=obj.client,
            effective_from=obj.effective_from,
            base_minor=obj.base_minor,
            per_km_minor=obj.per_km_minor,
            currency=obj.currency,
        )
        obj.pk = published.pk
        obj.refresh_from_db()


class DecisionForm(forms.Form):
    amount_minor = forms.IntegerField(min_value=0, help_text="0 rejects the claim.")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text="Shown to the driver.")


@admin.register(Dispute)
class DisputeAdmin(ReadOnlyAdmin):
    """The human queue: disputes the automatic check could not settle (filter: waiting);
    decided on their own page through payouts.services.disputes."""

    list_display = ["created_at", "driver", "kind", "status", "decide_link", "check_reason"]
    list_filter = ["status", "kind", "organisation"]

    def get_urls(self):
        return [
            path(
                "<uuid:object_id>/decide/",
                self.admin_site.admin_view(self.decide_view),
                name="payouts_dispute_decide",
            ),
            *super().get_urls(),
        ]

    @admin.display(description="Decision")
    def decide_link(self, dispute):
        if dispute.status != DisputeStatus.NEEDS_REVIEW:
            return dispute.get_status_display()
        return format_html(
            '<a class="button" href="{}">Decide…</a>',
            reverse("admin:payouts_dispute_decide", args=[dispute.pk]),
        )

    def decide_view(self, request, object_id):
        dispute = self.get_object(request, str(object_id))
        if dispute is None or not request.user.has_perm("payouts.change_dispute"):
            raise Http404
        form = DecisionForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                disputes.decide_dispute(
                    dispute_id=dispute.id,
                    organisation_id=dispute.organisation_id,
                    amount_minor=form.cleaned_data["amount_minor"],
                    reason=form.cleaned_data["reason"],
                    actor=Actor.for_user(request.user),
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                self.message_user(request, "Decided; the driver sees your reason.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:payouts_dispute_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Decide: {dispute}",
            "dispute": dispute,
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/payouts/decide_dispute.html", context)
