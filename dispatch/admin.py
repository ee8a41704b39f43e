from django import forms
from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from core.actors import Actor
from core.admin import FixedOrganisationMixin, ReadOnlyAdmin, ReadOnlyMixin
from core.admin_forms import ServiceModelForm
from core.admin_history import EMPTY, HistoryAdmin, ReadOnlyHistoryAdmin
from core.admin_overrides import StatusOverrideAdminMixin
from core.admin_widgets import OfflineMapAdminMixin
from dispatch.models import (
    DispatchSettings,
    GeofenceVisit,
    LearnedCellSpeed,
    Offer,
    Order,
    OrderStatus,
    OrderTransition,
    ProofOfDelivery,
    RepositionSuggestion,
    Route,
    Stop,
    TrafficRecord,
)
from dispatch.services.dispatch_settings import check_dispatch_settings, update_dispatch_settings
from dispatch.services.orders import (
    EDITABLE_FIELDS_BY_STATUS,
    check_order_details,
    force_order_status,
    update_order_details,
)


class OrderTransitionInline(ReadOnlyMixin, admin.TabularInline):
    model = OrderTransition
    extra = 0
    fields = [
        "occurred_at",
        "action",
        "from_status",
        "to_status",
        "driver",
        "actor_type",
        "actor_label",
        "reason",
        "is_override",
    ]
    readonly_fields = fields


class OrderChangeForm(ServiceModelForm):
    """The fields the order's status lets change, and the reason, which is required."""

    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Required. Stored with the change in the audit log and the order's history.",
    )

    def check_with_service(self, order) -> None:
        check_order_details(order, set(self.changed_data) - {"reason"})


@admin.register(Order)
class OrderAdmin(StatusOverrideAdminMixin, OfflineMapAdminMixin, HistoryAdmin):
    """Orders enter through the API (create_order); here their details are edited through
    update_order_details, as far as their status allows, and their status overridden."""

    form = OrderChangeForm
    list_display = ["external_ref", "organisation", "status", "driver", "priority", "created_at"]
    list_filter = ["organisation", "status", "priority"]
    search_fields = ["external_ref", "recipient_name", "pickup_address", "dropoff_address"]
    date_hierarchy = "created_at"
    readonly_fields = ["status", "driver", "override_link", "created_at", "updated_at"]
    list_select_related = ["organisation", "driver"]
    inlines = [OrderTransitionInline]
    status_choices = OrderStatus.choices

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        editable = EDITABLE_FIELDS_BY_STATUS[obj.status] if obj is not None else frozenset()
        fixed = [f.name for f in Order._meta.concrete_fields if f.editable and f.name not in editable]
        return [*self.readonly_fields, *(name for name in fixed if name not in self.readonly_fields)]

    def save_model(self, request, obj, form, change):
        update_order_details(
            order_id=obj.pk,
            organisation=obj.organisation,
            changes={name: form.cleaned_data[name] for name in form.changed_data if name != "reason"},
            actor=Actor.for_user(request.user),
            reason=form.cleaned_data["reason"],
        )

    def apply_override(self, order, *, to_status, actor, reason):
        force_order_status(
            order_id=order.id,
            organisation=order.organisation,
            to_status=to_status,
            actor=actor,
            reason=reason,
        )


@admin.register(OrderTransition)
class OrderTransitionAdmin(ReadOnlyAdmin):
    list_display = ["occurred_at", "order", "action", "from_status", "to_status", "actor_type", "is_override"]
    list_filter = ["to_status", "action", "actor_type", "is_override"]
    search_fields = ["order__external_ref", "reason", "actor_label"]
    date_hierarchy = "occurred_at"


@admin.register(Offer)
class OfferAdmin(ReadOnlyHistoryAdmin):
    """Shown only: offers are made and answered by dispatch, not edited here."""

    list_display = ["id", "organisation", "driver", "status", "incentive_minor", "expires_at"]
    list_filter = ["organisation", "status"]
    search_fields = ["driver__name", "orders__external_ref"]


@admin.register(RepositionSuggestion)
class RepositionSuggestionAdmin(OfflineMapAdminMixin, ReadOnlyAdmin):
    """Shown only: predictive dispatch makes suggestions and drivers answer them."""

    list_display = [
        "created_at",
        "organisation",
        "driver",
        "status",
        "expected_orders",
        "distance_m",
        "expires_at",
    ]
    list_filter = ["organisation", "status"]
    search_fields = ["driver__name", "cell", "reason"]
    date_hierarchy = "created_at"


class DispatchSettingsForm(ServiceModelForm):
    def check_with_service(self, row) -> None:
        check_dispatch_settings(rules=row.rules, offer_ttl_seconds=row.offer_ttl_seconds)


@admin.register(DispatchSettings)
class DispatchSettingsAdmin(FixedOrganisationMixin, HistoryAdmin):
    """Saved through update_dispatch_settings, which checks the rules with the engine's parser
    (an error names the path inside them, e.g. `zones.mode`)."""

    form = DispatchSettingsForm
    list_display = ["organisation", "offer_ttl_seconds", "reassign_at_risk", "updated_at"]
    readonly_fields = ["updated_at"]

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        update_dispatch_settings(
            organisation=obj.organisation,
            rules=form.cleaned_data["rules"],
            offer_ttl_seconds=form.cleaned_data["offer_ttl_seconds"],
            reassign_at_risk=form.cleaned_data["reassign_at_risk"],
            actor=Actor.for_user(request.user),
        )
        obj.refresh_from_db()


class StopInline(ReadOnlyMixin, admin.TabularInline):
    model = Stop
    extra = 0
    fields = [
        "sequence",
        "kind",
        "order",
        "window_start",
        "window_end",
        "planned_arrival_at",
        "predicted_late_s",
        "at_risk_since",
        "arrived_at",
        "completed_at",
    ]
    readonly_fields = fields


@admin.register(Route)
class RouteAdmin(ReadOnlyAdmin):
    """Shown only: routes and their stops are planned by dispatch, not edited here."""

    list_display = ["id", "organisation", "driver", "status", "created_at"]
    list_filter = ["organisation", "status"]
    search_fields = ["driver__name"]
    inlines = [StopInline]


def proof_image_link(proof: ProofOfDelivery, kind: str):
    if not getattr(proof, kind):
        return EMPTY
    url = reverse("proof-image", args=[proof.pk, kind])
    return format_html('<a href="{}" target="_blank" rel="noopener">View the {}</a>', url, kind)


@admin.register(ProofOfDelivery)
class ProofOfDeliveryAdmin(OfflineMapAdminMixin, ReadOnlyAdmin):
    """The images open through the proof-image view, which checks who asks (media is not public)."""

    list_display = ["order", "driver", "recipient_name", "captured_at"]
    search_fields = ["order__external_ref", "driver__name", "recipient_name"]
    date_hierarchy = "captured_at"
    fields = [
        "order",
        "driver",
        "photo_link",
        "signature_link",
        "recipient_name",
        "location",
        "accuracy_m",
        "captured_at",
        "created_at",
    ]
    readonly_fields = ["photo_link", "signature_link", "created_at"]

    @admin.display(description="Photo")
    def photo_link(self, proof):
        return proof_image_link(proof, "photo")

    @admin.display(description="Signature")
    def signature_link(self, proof):
        return proof_image_link(proof, "signature")


@admin.register(Stop)
class StopAdmin(OfflineMapAdminMixin, ReadOnlyAdmin):
    list_display = ["route", "sequence", "kind", "order", "planned_arrival_at", "arrived_at"]
    list_filter = ["kind", "route__organisation"]
    search_fields = ["order__external_ref"]


@admin.register(GeofenceVisit)
class GeofenceVisitAdmin(ReadOnlyAdmin):
    """A driver's visits to stops as their pings showed them (dispatch.services.pings)."""

    list_display = ["created_at", "driver", "order", "kind", "phase", "entered_at", "exited_at", "radius_m"]
    list_filter = ["kind", "phase"]
    search_fields = ["order__external_ref", "driver__name"]
    list_select_related = ["driver", "order"]
    date_hierarchy = "created_at"


@admin.register(TrafficRecord)
class TrafficRecordAdmin(ReadOnlyAdmin):
    """Shown only: traffic comes from feeds and callers through the API (ingest_traffic)."""

    list_display = [
        "source",
        "external_id",
        "kind",
        "way_id",
        "h3_cell",
        "factor",
        "valid_from",
        "valid_until",
    ]
    list_filter = ["kind", "source"]
    search_fields = ["external_id", "description", "h3_cell"]


@admin.register(LearnedCellSpeed)
class LearnedCellSpeedAdmin(ReadOnlyAdmin):
    """Shown only: learnt from the drivers' pings (learn_cell_speeds)."""

    list_display = ["h3_cell", "window_end", "samples", "median_speed_mps", "factor"]
    search_fields = ["h3_cell"]
