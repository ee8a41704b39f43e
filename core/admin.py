from django.contrib import admin

from core.models import DomainEvent


@admin.register(DomainEvent)
class DomainEventAdmin(admin.ModelAdmin):
    """The audit log: read-only, searchable, filterable."""

    list_display = [
        "occurred_at",
        "organisation",
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
