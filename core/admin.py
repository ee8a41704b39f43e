import json

from django.contrib import admin

from core.admin_forms import JSON_FORMFIELD_OVERRIDES
from core.models import DomainEvent, EventCounter, IdempotencyRecord


class ReadOnlyMixin:
    """Rows the admin only shows: logs, history, and models no service writes for the admin."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Logs and history rows: inspected, never edited in admin."""

    formfield_overrides = JSON_FORMFIELD_OVERRIDES


class FixedOrganisationMixin:
    """A row's organisation is chosen when it is added and never moves."""

    def get_readonly_fields(self, request, obj=None):
        fixed = ["organisation"] if obj is not None else []
        return [*super().get_readonly_fields(request, obj), *fixed]


@admin.register(DomainEvent)
class DomainEventAdmin(ReadOnlyAdmin):
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


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyAdmin):
    """Keys and their outcome, never the stored answer: it may hold a secret shown once (a new
    webhook subscription's signing secret), so only its status code and size are shown."""

    list_display = [
        "created_at",
        "organisation",
        "caller",
        "key",
        "state",
        "response_status",
        "response_size",
    ]
    list_filter = ["state", "organisation"]
    search_fields = ["key", "caller"]
    fields = [
        "organisation",
        "caller",
        "key",
        "request_fingerprint",
        "state",
        "lease_expires_at",
        "response_status",
        "response_size",
        "created_at",
    ]
    readonly_fields = fields

    @admin.display(description="response size")
    def response_size(self, record) -> str:
        if record.response_body is None:
            return "—"
        return f"{len(json.dumps(record.response_body, separators=(',', ':')))} bytes"


@admin.register(EventCounter)
class EventCounterAdmin(ReadOnlyAdmin):
    """The last event number of each organisation: consumers compare it with what they saw."""

    list_display = ["organisation", "last_sequence"]
