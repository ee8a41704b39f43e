from django.contrib import admin

from core.models import DomainEvent, EventCounter, IdempotencyRecord


class ReadOnlyAdmin(admin.ModelAdmin):
    """Logs and history rows: inspected, never edited in admin."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(DomainEvent)
class DomainEventAdmin(admin.ModelAdmin):
    """The audit log: read-only, searchable, filterable."""

    list_display = [
        "occurred_at",
        "organisation",
        "sequence",
        "event_type",
        "subject_type",
        "subject_id",
        "actor_type",
        "actor_label",
    ]
    list_filter = ["event_type", "actor_type", "organisation"]
    search_fields = ["subject_id", "actor_label", "reason", "event_type"]
    date_hierarchy = "occurred_at"
    list_select_related = ["organisation"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "organisation", "caller", "key", "state", "response_status"]
    list_filter = ["state", "organisation"]
    search_fields = ["key", "caller"]


@admin.register(EventCounter)
class EventCounterAdmin(ReadOnlyAdmin):
    """The last event number of each organisation: consumers compare it with what they saw."""

    list_display = ["organisation", "last_sequence"]
