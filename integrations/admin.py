"""The admin of webhooks: every write through integrations.services."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.template.response import TemplateResponse
from django.urls import reverse

from core.admin import ReadOnlyAdmin, ReadOnlyMixin
from core.admin_history import HistoryAdmin
from core.exceptions import ConcurrentChange
from integrations import services
from integrations.models import WebhookAttempt, WebhookDelivery, WebhookSubscription


class WebhookSubscriptionForm(forms.ModelForm):
    """The service's checks, run at clean so a refusal shows on the form beside its field."""

    class Meta:
        model = WebhookSubscription
        fields = ["organisation", "client", "url", "description", "event_types", "is_active"]

    def clean(self):
        data = super().clean()
        # The instance still holds the saved values here: the form writes into it after clean.
        subscription = None if self.instance._state.adding else self.instance
        organisation = subscription.organisation if subscription else data.get("organisation")
        client_id = subscription.client_id if subscription else getattr(data.get("client"), "pk", None)
        try:
            if "url" in data:
                services.validate_target_url(data["url"])
            if "event_types" in data:
                data["event_types"] = services.validate_event_types(
                    data["event_types"] or [], for_client=client_id is not None
                )
            if organisation is not None:
                if subscription is None:
                    services.validate_client(organisation, client_id)
                if data.get("is_active") and not (subscription and subscription.is_active):
                    services.validate_room_for_an_active_subscription(
                        organisation, client_id=client_id, other_than=subscription
                    )
        except ValidationError as exc:
            self.add_error(None, exc)
        return data


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(HistoryAdmin):
    """Adds, changes and deletes go through integrations.services, as the API's do.

    The signing secret is made by the service and shown once, on the page answering the add;
    it is never part of a form.
    """

    form = WebhookSubscriptionForm
    list_display = ["url", "organisation", "event_types", "is_active", "created_at"]
    list_filter = ["organisation", "is_active"]
    search_fields = ["url", "description"]

    def get_readonly_fields(self, request, obj=None):
        return ["organisation", "client"] if obj else []

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            changes = {
                name: data[name] for name in form.changed_data if name not in ("organisation", "client")
            }
            services.update_webhook_subscription(subscription=obj, **changes)
            return
        created = services.create_webhook_subscription(
            organisation=data["organisation"],
            client_id=data["client"].pk if data.get("client") else None,
            url=data["url"],
            event_types=data["event_types"],
            description=data["description"],
            is_active=data["is_active"],
        )
        # The admin goes on with form.instance (history, log entry, redirect): make it the new row.
        obj.pk, obj.secret, obj.created_at = created.pk, created.secret, created.created_at
        obj.event_types = created.event_types
        obj._state.adding = False

    def response_add(self, request, obj, post_url_continue=None):
        """The one page that shows the secret: the answer to the add, not stored anywhere."""
        context = {
            **self.admin_site.each_context(request),
            "title": "Webhook subscription created",
            "opts": self.model._meta,
            "subscription": obj,
            "change_url": reverse("admin:integrations_webhooksubscription_change", args=[obj.pk]),
        }
        return TemplateResponse(request, "admin/integrations/webhook_secret_once.html", context)

    def delete_model(self, request, obj):
        services.delete_webhook_subscription(subscription=obj)

    def delete_queryset(self, request, queryset):
        for subscription in queryset:
            services.delete_webhook_subscription(subscription=subscription)


class WebhookAttemptInline(ReadOnlyMixin, admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    fields = ["number", "attempted_at", "response_status", "error", "duration_ms", "response_body"]
    readonly_fields = fields


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "subscription",
        "event",
        "status",
        "attempts",
        "last_response_status",
        "next_attempt_at",
    ]
    list_filter = ["status", "organisation"]
    search_fields = ["event__event_type", "url"]
    list_select_related = ["subscription", "event"]
    inlines = [WebhookAttemptInline]
    actions = ["replay_deliveries"]

    @admin.action(description="Replay the selected deliveries")
    def replay_deliveries(self, request, queryset):
        queued, refused = 0, []
        for delivery in queryset.select_related("subscription"):
            try:
                services.replay_delivery(delivery=delivery)
                queued += 1
            except (ValidationError, ConcurrentChange) as exc:  # in flight, or subscription off
                reason = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
                refused.append(f"{delivery.id}: {reason}")
        self.message_user(request, f"Queued {queued} delivery(ies) again.")
        if refused:
            self.message_user(request, "Not replayed: " + " ".join(refused), level=messages.WARNING)


@admin.register(WebhookAttempt)
class WebhookAttemptAdmin(ReadOnlyAdmin):
    list_display = ["attempted_at", "delivery", "number", "response_status", "duration_ms"]
    list_filter = ["response_status"]
