"""Admin for identity and access: every write goes through identity.services, whose checks
run in the forms so their errors show on the field."""

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import ValidationError

from core.actors import Actor
from core.admin import FixedOrganisationMixin
from core.admin_forms import ServiceModelForm, changed_values
from core.admin_history import HistoryAdmin
from identity import services
from identity.models import ApiKey, Client, DeviceToken, Organisation, User


class FixedSlugMixin:
    """A slug is chosen when the row is added and never changes (others refer to it by it)."""

    def get_readonly_fields(self, request, obj=None):
        fixed = ["slug"] if obj is not None else []
        return [*super().get_readonly_fields(request, obj), *fixed]

    def get_prepopulated_fields(self, request, obj=None):
        return super().get_prepopulated_fields(request, obj) if obj is None else {}


class OrganisationForm(ServiceModelForm):
    def check_with_service(self, instance) -> None:
        services.check_organisation(instance)


class ClientForm(ServiceModelForm):
    def _get_validation_exclusions(self):
        """The service checks the slug (free in the organisation) and names the field; the
        model's constraint check would put it at the top of the form and skip the service."""
        return {*super()._get_validation_exclusions(), "slug"}

    def check_with_service(self, instance) -> None:
        services.check_client(instance)


@admin.register(Organisation)
class OrganisationAdmin(FixedSlugMixin, HistoryAdmin):
    """Saved through identity.services; never deleted here (its orders, drivers and events
    would go with it)."""

    form = OrganisationForm
    list_display = ["name", "slug", "kind", "currency", "created_at"]
    list_filter = ["kind", "currency"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        if change:
            services.update_organisation(organisation=obj, **changed_values(form))
            return
        organisation = services.create_organisation(
            slug=obj.slug, name=obj.name, kind=obj.kind, currency=obj.currency, timezone=obj.timezone
        )
        obj.pk = organisation.pk
        obj.refresh_from_db()


@admin.register(User)
class FleetUserAdmin(UserAdmin):
    """Saved through identity.services.save_user: role, organisation and client agree (the
    forms show User.clean's errors on the field). People leave by being deactivated."""

    list_display = ["username", "email", "organisation", "client", "role", "is_staff", "is_active"]
    list_filter = ["role", "organisation", "is_staff", "is_active"]
    search_fields = ["username", "email", "first_name", "last_name"]
    fieldsets = [*UserAdmin.fieldsets, ("Organisation", {"fields": ["organisation", "role", "client"]})]
    add_fieldsets = [
        *UserAdmin.add_fieldsets,
        ("Organisation", {"fields": ["organisation", "role", "client"]}),
    ]

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        services.save_user(user=obj)


@admin.register(Client)
class ClientAdmin(FixedSlugMixin, FixedOrganisationMixin, HistoryAdmin):
    """Saved through identity.services; paused (is_active), never deleted here."""

    form = ClientForm
    list_display = ["name", "slug", "organisation", "is_active", "created_at"]
    list_filter = ["organisation", "is_active"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        if change:
            services.update_client(client=obj, **changed_values(form))
            return
        client = services.create_client(
            organisation=obj.organisation, slug=obj.slug, name=obj.name, is_active=obj.is_active
        )
        obj.pk = client.pk
        obj.refresh_from_db()


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

    def has_delete_permission(self, request, obj=None):
        # Revoked, never deleted: the events it caused keep naming it.
        return False

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


@admin.register(DeviceToken)
class DeviceTokenAdmin(HistoryAdmin):
    """Drivers sign their devices in from the app; here they are only seen and revoked (an
    organisation admin or staff, through identity.services)."""

    list_display = ["name", "user", "prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at", "user__organisation"]
    search_fields = ["name", "prefix", "user__username"]
    fields = ["user", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = fields
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Revoke the selected device tokens", permissions=["view"])
    def revoke(self, request, queryset):
        revoked = 0
        for device_token in queryset.select_related("user"):
            try:
                services.revoke_device_token(device_token=device_token, actor=Actor.for_user(request.user))
            except ValidationError as exc:
                self.message_user(request, f"{device_token}: {exc.messages[0]}", messages.ERROR)
            else:
                revoked += 1
        self.message_user(request, f"Revoked {revoked} device token(s).")
