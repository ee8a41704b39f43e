"""Every model has a working admin; a manual override demands a reason and is audited."""

import pytest
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from core.actors import Actor
from dispatch.models import Order, OrderTransition
from dispatch.services.orders import create_order
from fleet.models import Driver, DriverStatusChange
from tests.conftest import make_active_driver, make_hub, make_zone, order_payload
from tests.dispatch.factories import order_input


@pytest.fixture
def populated(org, api_key):
    make_hub(org)
    make_zone(org)
    driver = make_active_driver(org)
    order = create_order(organisation=org, actor=Actor.system("test"), data=order_input(order_payload()))
    return {"driver": driver, "order": order}


def test_every_registered_model_has_list_add_and_change_pages(staff_client, populated):
    missing = []
    for model, model_admin in admin.site._registry.items():
        info = model._meta.app_label, model._meta.model_name
        response = staff_client.get(reverse("admin:{}_{}_changelist".format(*info)), {"q": "a"})
        assert response.status_code == 200, info
        if model_admin.has_add_permission(response.wsgi_request):
            assert staff_client.get(reverse("admin:{}_{}_add".format(*info))).status_code == 200, info
        obj = model._default_manager.first()
        if obj is not None:
            page = staff_client.get(reverse("admin:{}_{}_change".format(*info), args=[obj.pk]))
            assert page.status_code == 200, info
            if hasattr(model, "history"):
                history = staff_client.get(reverse("admin:{}_{}_history".format(*info), args=[obj.pk]))
                assert history.status_code == 200, info
    from django.apps import apps

    for model in apps.get_models():
        if (
            model._meta.app_label
            in {
                "core",
                "identity",
                "fleet",
                "dispatch",
                "integrations",
            }
            and not model.__name__.startswith("Historical")
            and model not in admin.site._registry
        ):
            missing.append(model.__name__)
    assert missing == []


def test_order_override_needs_a_reason_and_is_audited(staff_client, populated):
    order = populated["order"]
    url = reverse("admin:dispatch_order_override_status", args=[order.pk])
    assert staff_client.get(url).status_code == 200
    refused = staff_client.post(url, {"to_status": "CANCELLED", "reason": ""})
    assert refused.status_code == 200 and "This field is required" in refused.content.decode()
    assert Order.objects.get(pk=order.pk).status == "CREATED"
    done = staff_client.post(url, {"to_status": "CANCELLED", "reason": "Duplicate sent by the OMS"})
    assert done.status_code == 302
    row = OrderTransition.objects.get(order=order)
    assert (
        row.is_override and row.reason == "Duplicate sent by the OMS" and row.actor_user.username == "staff"
    )
    assert LogEntry.objects.filter(object_id=str(order.pk), change_message__contains="Duplicate").exists()


def test_driver_override(staff_client, populated):
    driver = populated["driver"]
    url = reverse("admin:fleet_driver_override_status", args=[driver.pk])
    response = staff_client.post(url, {"to_status": "SUSPENDED", "reason": "Reported unsafe riding"})
    assert response.status_code == 302
    assert Driver.objects.get(pk=driver.pk).status == "SUSPENDED"
    assert DriverStatusChange.objects.filter(driver=driver, is_override=True).exists()


def test_org_users_cannot_use_admin(client, dispatcher):
    client.force_login(dispatcher)
    response = client.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_forcing_delivered_on_an_order_without_a_driver_is_refused_on_the_form(staff_client, populated):
    order = populated["order"]
    url = reverse("admin:dispatch_order_override_status", args=[order.pk])
    response = staff_client.post(url, {"to_status": "DELIVERED", "reason": "Courier says it was left"})
    assert response.status_code == 200
    assert "DELIVERED needs an assigned driver" in response.content.decode()
    assert Order.objects.get(pk=order.pk).status == "CREATED"
    assert not OrderTransition.objects.filter(order=order).exists()
