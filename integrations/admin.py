from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from simple_history.admin import SimpleHistoryAdmin

from core.admin import ReadOnlyAdmin
from core.exceptions import ConcurrentChange
from integrations import services
from integrations.models import WebhookAttempt, WebhookDelivery, WebhookSubscription


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
