from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from simple_history.admin import SimpleHistoryAdmin

from core.exceptions import ConcurrentChange
from fleet.admin import ReadOnlyAdmin
from integrations import services
from integrations.models import (
    ApiKey,
    IdempotencyRecord,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from integrations.webhooks.delivery import replay


@admin.register(ApiKey)
class ApiKeyAdmin(SimpleHistoryAdmin):
    """Keys are created here or with `manage.py create_api_key`; the key is shown once."""

    list_display = [
        "name",
        "organisation",
        "prefix",
        "scopes",
        "rate_limit_per_minute",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["organisation", "revoked_at"]
    search_fields = ["name", "prefix"]
    fields = [
        "organisation",
        "name",
        "scopes",
        "rate_limit_per_minute",
        "prefix",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        issued = services.create_api_key(
            organisation=obj.organisation,
            name=obj.name,
            scopes=obj.scopes or None,
            rate_limit_per_minute=obj.rate_limit_per_minute,
            created_by=request.user,
        )
        obj.pk = issued.api_key.pk
        obj.refresh_from_db()
        messages.warning(request, f"Copy the key now, it is not shown again: {issued.plaintext}")

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request, queryset):
        for api_key in queryset:
            services.revoke_api_key(api_key=api_key)
        self.message_user(request, f"Revoked {queryset.count()} key(s).")


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "organisation", "caller", "key", "state", "response_status"]
    list_filter = ["state", "organisation"]
    search_fields = ["key", "caller"]


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(SimpleHistoryAdmin):
    list_display = ["url", "organisation", "event_types", "is_active", "created_at"]
    list_filter = ["organisation", "is_active"]
    search_fields = ["url", "description"]
    exclude = ["secret"]


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = ["number", "attempted_at", "response_status", "error", "duration_ms", "response_body"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


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
    list_filter = ["status", "subscription__organisation"]
    search_fields = ["event__event_type", "subscription__url"]
    list_select_related = ["subscription", "event"]
    inlines = [WebhookAttemptInline]
    actions = ["replay_deliveries"]

    @admin.action(description="Replay the selected deliveries")
    def replay_deliveries(self, request, queryset):
        queued, refused = 0, []
        for delivery in queryset.select_related("subscription"):
            try:
                replay(delivery=delivery)
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
