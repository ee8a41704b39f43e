"""Admin for identity and access. Writes that have rules go through identity.services."""

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin

from core.admin_history import HistoryAdmin
from identity import services
from identity.models import ApiKey, Client, Organisation, User


@admin.register(Organisation)
class OrganisationAdmin(HistoryAdmin):
    list_display = ["name", "slug", "kind", "currency", "created_at"]
    list_filter = ["kind", "currency"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(User)
class FleetUserAdmin(UserAdmin):
    list_display = ["username", "email", "organisation", "client", "role", "is_staff", "is_active"]
    list_filter = ["role", "organisation", "is_staff", "is_active"]
    search_fields = ["username", "email", "first_name", "last_name"]
    fieldsets = [*UserAdmin.fieldsets, ("Organisation", {"fields": ["organisation", "role", "client"]})]
    add_fieldsets = [
        *UserAdmin.add_fieldsets,
        ("Organisation", {"fields": ["organisation", "role", "client"]}),
    ]


@admin.register(Client)
class ClientAdmin(HistoryAdmin):
    list_display = ["name", "slug", "organisation", "is_active", "created_at"]
    list_filter = ["organisation", "is_active"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(ApiKey)
class ApiKeyAdmin(HistoryAdmin):
    """Keys are created here or with `manage.py create_api_key`; the key is shown once."""

    list_display = [
        "name",
        "organisation",
        "client",
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
        "client",
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

    def get_readonly_fields(self, request, obj=None):
        # Who a key belongs to is fixed at creation: a new key is issued instead.
        return [*self.readonly_fields, "organisation", "client"] if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            services.update_api_key(
                api_key=obj, name=obj.name, scopes=obj.scopes, rate_limit_per_minute=obj.rate_limit_per_minute
            )
            return
        issued = services.create_api_key(
            organisation=obj.organisation,
            client=obj.client,
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
