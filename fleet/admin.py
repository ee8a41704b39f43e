from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from core.actors import Actor
from core.admin import FixedOrganisationMixin, ReadOnlyAdmin, ReadOnlyMixin
from core.admin_forms import ServiceModelForm, changed_values
from core.admin_history import HistoryAdmin, ReadOnlyHistoryAdmin
from core.admin_overrides import StatusOverrideAdminMixin
from core.admin_widgets import OfflineMapAdminMixin
from fleet import services
from fleet.models import Driver, DriverStatus, DriverStatusChange, Hub, LocationPing, Vehicle, Zone


class HubForm(ServiceModelForm):
    def check_with_service(self, instance) -> None:
        services.check_hub(instance)


class ZoneForm(ServiceModelForm):
    def check_with_service(self, instance) -> None:
        services.check_zone(instance)


class DeleteUnusedMixin:
    """Deleted through fleet.services, only when nothing uses it: the service's refusal shows
    on Django's own "cannot delete" page, for one row and for the bulk action."""

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        for place in objs:
            try:
                services.check_unused(place)
            except ValidationError as exc:
                protected.extend(f"{place}: {message}" for message in exc.messages)
        return deleted, counts, perms_needed, protected

    def delete_model(self, request, obj):
        services.delete_hub_or_zone(obj)

    def delete_queryset(self, request, queryset):
        for place in queryset:
            services.delete_hub_or_zone(place)


@admin.register(Hub)
class HubAdmin(DeleteUnusedMixin, FixedOrganisationMixin, OfflineMapAdminMixin, HistoryAdmin):
    """Saved through fleet.services, which checks the name is free in the organisation."""

    form = HubForm
    list_display = ["name", "organisation", "address", "is_active"]
    list_filter = ["organisation", "is_active"]
    search_fields = ["name", "address"]

    def save_model(self, request, obj, form, change):
        if change:
            services.update_hub(hub=obj, **changed_values(form))
            return
        hub = services.create_hub(
            organisation=obj.organisation,
            name=obj.name,
            address=obj.address,
            location=obj.location,
            is_active=obj.is_active,
        )
        obj.pk = hub.pk
        obj.refresh_from_db()


@admin.register(Zone)
class ZoneAdmin(DeleteUnusedMixin, FixedOrganisationMixin, OfflineMapAdminMixin, HistoryAdmin):
    """Saved through fleet.services, so a zone's H3 cells always follow its area."""

    form = ZoneForm
    list_display = ["name", "organisation", "h3_resolution", "cell_count"]
    list_filter = ["organisation"]
    search_fields = ["name"]
    readonly_fields = ["h3_cells"]

    def save_model(self, request, obj, form, change):
        if change:
            services.update_zone(zone=obj, **changed_values(form))
            return
        zone = services.create_zone(
            organisation=obj.organisation, name=obj.name, area=obj.area, h3_resolution=obj.h3_resolution
        )
        obj.pk = zone.pk
        obj.refresh_from_db()

    @admin.display(description="H3 cells")
    def cell_count(self, zone):
        return len(zone.h3_cells)


class VehicleInline(ReadOnlyMixin, admin.TabularInline):
    """Shown only: no service changes a vehicle yet (a new driver's first one comes with them)."""

    model = Vehicle
    extra = 0
    fields = ["type", "capacity_kg", "capacity_litres", "plate", "vin", "is_active"]
    readonly_fields = fields


class DriverStatusChangeInline(ReadOnlyMixin, admin.TabularInline):
    model = DriverStatusChange
    extra = 0
    fields = ["occurred_at", "from_status", "to_status", "actor_type", "actor_label", "reason", "is_override"]
    readonly_fields = fields


class DriverForm(ServiceModelForm):
    def check_with_service(self, driver) -> None:
        services.check_driver(driver)
        if "preferred_zones" in self.cleaned_data:
            services.check_preferred_zones(driver.organisation, self.cleaned_data["preferred_zones"])


class DriverAddForm(DriverForm):
    """A new driver comes with their first vehicle (fleet.services.create_driver)."""

    vehicle_type = forms.ChoiceField(choices=Vehicle.Type.choices)
    plate = forms.CharField(max_length=16, required=False)
    vin = forms.CharField(max_length=17, required=False)


@admin.register(Driver)
class DriverAdmin(FixedOrganisationMixin, StatusOverrideAdminMixin, OfflineMapAdminMixin, HistoryAdmin):
    """Added and edited through fleet.services (each recorded as an event with who did it);
    the status moves only through the audited override."""

    form = DriverForm
    add_form = DriverAddForm
    list_display = ["name", "organisation", "fleet_type", "status", "is_online", "last_seen_at"]
    list_filter = ["organisation", "status", "fleet_type", "is_online"]
    search_fields = ["name", "phone", "email"]
    readonly_fields = ["status", "override_link", "is_online", "last_location", "last_seen_at", "created_at"]
    autocomplete_fields = ["user"]
    filter_horizontal = ["preferred_zones"]
    inlines = [VehicleInline, DriverStatusChangeInline]
    status_choices = DriverStatus.choices

    def get_fields(self, request, obj=None):
        if obj is None:  # the editable details (preferred zones come later), and a first vehicle
            details = [name for name in services.DRIVER_EDITABLE_FIELDS if name != "preferred_zones"]
            return ["organisation", *details, "vehicle_type", "plate", "vin"]
        return ["organisation", *services.DRIVER_EDITABLE_FIELDS, *self.readonly_fields]

    def has_delete_permission(self, request, obj=None):
        # A driver with a past is offboarded (status), never deleted.
        return False

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = self.add_form
        return super().get_form(request, obj, **kwargs)

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def save_model(self, request, obj, form, change):
        actor = Actor.for_user(request.user)
        if change:
            services.update_driver(
                driver_id=obj.pk, organisation=obj.organisation, changes=changed_values(form), actor=actor
            )
            return
        driver = services.create_driver(
            organisation=obj.organisation,
            name=obj.name,
            phone=obj.phone,
            email=obj.email,
            fleet_type=obj.fleet_type,
            hub=obj.hub,
            home_zone=obj.home_zone,
            user=obj.user,
            vehicle_type=form.cleaned_data["vehicle_type"],
            plate=form.cleaned_data["plate"],
            vin=form.cleaned_data["vin"],
            actor=actor,
        )
        obj.pk = driver.pk
        obj.refresh_from_db()

    def save_related(self, request, form, formsets, change):
        # The service saved the preferred zones; the (read-only) inlines save nothing but
        # must run for the admin's change message.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def apply_override(self, driver, *, to_status, actor, reason):
        services.force_driver_status(
            driver_id=driver.id,
            organisation=driver.organisation,
            to_status=to_status,
            actor=actor,
            reason=reason,
        )


@admin.register(DriverStatusChange)
class DriverStatusChangeAdmin(ReadOnlyAdmin):
    list_display = ["occurred_at", "driver", "from_status", "to_status", "actor_type", "is_override"]
    list_filter = ["to_status", "actor_type", "is_override"]
    search_fields = ["driver__name", "reason", "actor_label"]
    date_hierarchy = "occurred_at"


@admin.register(Vehicle)
class VehicleAdmin(ReadOnlyHistoryAdmin):
    list_display = [
        "__str__",
        "driver",
        "organisation",
        "type",
        "capacity_kg",
        "capacity_litres",
        "is_active",
    ]
    list_filter = ["organisation", "type", "is_active"]
    search_fields = ["plate", "vin", "driver__name"]


@admin.register(LocationPing)
class LocationPingAdmin(OfflineMapAdminMixin, ReadOnlyAdmin):
    list_display = ["driver", "recorded_at", "accuracy_m", "speed_mps", "heading_deg", "received_at"]
    list_filter = ["driver__organisation"]
    search_fields = ["driver__name"]
    date_hierarchy = "recorded_at"
    list_select_related = ["driver"]
