"""The admin writes only through services: every other model is view-only, history pages do
not revert, and deletes that would break rules are refused (never a 500)."""

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse

from core.actors import Actor
from dispatch.models import Order
from dispatch.services.orders import create_order
from fleet import services as fleet_services
from fleet.models import Hub, Zone
from identity.models import Organisation
from identity.services import create_client
from tests.conftest import make_active_driver, make_hub, make_zone, order_payload
from tests.dispatch.factories import order_input

# The admins that may add, change or delete, and the services they save (and delete) through.
SAVES_THROUGH_SERVICES = {
    "identity.Organisation": "identity.services.create_organisation / update_organisation",
    "identity.Client": "identity.services.create_client / update_client",
    "identity.User": "identity.services.save_user (User.clean)",
    "identity.ApiKey": "identity.services.create_api_key / update_api_key / revoke_api_key",
    "fleet.Hub": "fleet.services.create_hub / update_hub / delete_hub_or_zone",
    "fleet.Zone": "fleet.services.create_zone / update_zone / delete_hub_or_zone",
    "fleet.Driver": "fleet.services.create_driver / update_driver / force_driver_status",
    "dispatch.Order": "dispatch.services.orders.update_order_details / force_order_status",
    "dispatch.DispatchSettings": "dispatch.services.dispatch_settings.update_dispatch_settings",
    "integrations.WebhookSubscription": "integrations.services.create_ / update_ / delete_webhook_subscription",
    "onboarding.Review": "onboarding.services.resolve_review (its override form; every field read-only)",
    "payouts.EarningRule": "payouts.services.rules.publish_earning_rule (new versions only)",
    "payouts.PriceList": "payouts.services.rules.publish_price_list (new versions only)",
    "discipline.RuleSet": "discipline.services.update_rules (new versions only)",
    "discipline.DisciplineReview": "discipline.services.resolve_review (its override form; every field read-only)",
}
# Django's groups and django-axes' lockout records are not the project's domain.
PROJECT_APPS = {
    "core",
    "identity",
    "fleet",
    "dispatch",
    "scorecards",
    "onboarding",
    "payouts",
    "discipline",
    "integrations",
}


@pytest.fixture
def superuser_request(staff_user):
    request = RequestFactory().get("/admin/")
    request.user = staff_user
    return request


def test_only_admins_that_save_through_services_can_write(superuser_request):
    writable = {}
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label not in PROJECT_APPS:
            continue
        can = {
            "add": model_admin.has_add_permission(superuser_request),
            "change": model_admin.has_change_permission(superuser_request),
            "delete": model_admin.has_delete_permission(superuser_request),
        }
        inlines_can = [
            inline.__name__
            for inline in model_admin.inlines
            if inline(model, admin.site).has_add_permission(superuser_request, None)
            or inline(model, admin.site).has_change_permission(superuser_request)
            or inline(model, admin.site).has_delete_permission(superuser_request)
        ]
        if any(can.values()) or inlines_can:
            writable[model._meta.label] = ([name for name, allowed in can.items() if allowed], inlines_can)
    assert set(writable) == set(SAVES_THROUGH_SERVICES), writable
    assert all(not inlines for _, inlines in writable.values()), writable


@pytest.mark.parametrize(
    "label", ["fleet.Driver", "dispatch.Order", "identity.Client", "identity.Organisation"]
)
def test_rows_with_a_past_are_never_deleted_in_the_admin(superuser_request, label):
    model_admin = next(a for m, a in admin.site._registry.items() if m._meta.label == label)
    assert not model_admin.has_delete_permission(superuser_request)


def test_the_history_page_shows_an_old_version_but_does_not_revert_it(staff_client, org):
    hub = make_hub(org, name="Old name")
    fleet_services.update_hub(hub=hub, name="New name")
    old = hub.history.earliest()
    url = reverse("admin:fleet_hub_simple_history", args=[hub.pk, old.history_id])
    page = staff_client.get(url)
    assert page.status_code == 200 and page.context["revert_disabled"]
    assert 'name="_save"' not in page.content.decode()
    refused = staff_client.post(
        url, {"name": "Old name", "address": hub.address, "location": "SRID=4326;POINT(24.94 60.17)"}
    )
    assert refused.status_code == 405
    hub.refresh_from_db()
    assert hub.name == "New name" and hub.history.count() == 2


def test_a_hub_used_by_drivers_or_orders_shows_the_cannot_delete_page(staff_client, org):
    hub = make_hub(org)
    driver = make_active_driver(org)
    fleet_services.update_driver(
        driver_id=driver.pk, organisation=org, changes={"hub": hub}, actor=Actor.system("test")
    )
    order = create_order(organisation=org, actor=Actor.system("test"), data=order_input(order_payload()))
    Order.objects.filter(pk=order.pk).update(hub=hub)
    url = reverse("admin:fleet_hub_delete", args=[hub.pk])
    page = staff_client.get(url)
    assert page.status_code == 200 and "used by 1 drivers, 1 orders" in page.content.decode()
    assert staff_client.post(url, {"post": "yes"}).status_code == 200
    bulk = staff_client.post(
        reverse("admin:fleet_hub_changelist"),
        {"action": "delete_selected", "_selected_action": [hub.pk], "post": "yes"},
    )
    assert bulk.status_code == 200 and "used by" in bulk.content.decode()
    assert Hub.objects.filter(pk=hub.pk).exists()
    driver.refresh_from_db()
    assert driver.hub == hub


def test_an_unused_hub_or_zone_is_deleted(staff_client, org):
    hub, zone = make_hub(org), make_zone(org)
    assert (
        staff_client.post(reverse("admin:fleet_hub_delete", args=[hub.pk]), {"post": "yes"}).status_code
        == 302
    )
    assert (
        staff_client.post(reverse("admin:fleet_zone_delete", args=[zone.pk]), {"post": "yes"}).status_code
        == 302
    )
    assert not Hub.objects.exists() and not Zone.objects.exists()


def test_a_zone_drivers_prefer_is_not_deleted(staff_client, org):
    zone = make_zone(org)
    driver = make_active_driver(org)
    fleet_services.update_driver(
        driver_id=driver.pk, organisation=org, changes={"preferred_zones": [zone]}, actor=Actor.system("test")
    )
    url = reverse("admin:fleet_zone_delete", args=[zone.pk])
    assert staff_client.post(url, {"post": "yes"}).status_code == 200
    assert Zone.objects.filter(pk=zone.pk).exists()


def test_deleting_a_driver_client_or_organisation_is_forbidden_not_a_500(staff_client, org):
    driver = make_active_driver(org)
    client = create_client(organisation=org, slug="c", name="C")
    for name, pk in (
        ("fleet_driver", driver.pk),
        ("identity_client", client.pk),
        ("identity_organisation", org.pk),
    ):
        assert (
            staff_client.post(reverse(f"admin:{name}_delete", args=[pk]), {"post": "yes"}).status_code == 403
        )
    assert Organisation.objects.filter(pk=org.pk).exists()
