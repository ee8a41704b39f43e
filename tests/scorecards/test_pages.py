"""The dispatchers' scorecards page and the driver's own, with their charts (static script,
data in json_script), for the right people only; the admin excuses through the service."""

from datetime import timedelta

import pytest
from django.urls import reverse

from identity.models import Role
from scorecards.models import DeliveryOutcome, ExcuseCause
from scorecards.services import snapshot_scorecards
from tests.conftest import make_active_driver, make_user
from tests.scorecards.conftest import PROMISED_BY, carry, new_order


@pytest.fixture
def late(org, driver):
    carry(new_order(org), org, driver, delivered_at=PROMISED_BY + timedelta(minutes=3))
    return DeliveryOutcome.objects.get()


def test_dispatchers_see_every_driver_with_a_chart_and_nothing_inline(
    client, org, dispatcher, driver, late, other_org
):
    make_active_driver(org, name="<script>alert(1)</script>", phone="+358401000444", plate="X-1")
    make_active_driver(other_org, name="Elsewhere Courier", phone="+358402000444", plate="X-2")
    snapshot_scorecards(now=PROMISED_BY)
    client.force_login(dispatcher)
    page = client.get(reverse("scorecards-page"))
    assert page.status_code == 200
    text = page.content.decode()
    assert driver.name in text and "Elsewhere Courier" not in text
    assert "<script>alert(1)</script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert text.count('<canvas class="trend"') == 2
    assert "vendor/chartjs/chart.umd.js" in text and "scorecards/charts.js" in text
    scripts = [chunk.split(">", 1)[0] for chunk in text.split("<script")[1:]]
    assert all("src=" in tag or 'type="application/json"' in tag for tag in scripts), scripts
    assert "script-src 'self'" in page["Content-Security-Policy"]


@pytest.mark.parametrize("role", [Role.CLIENT_USER, Role.DRIVER])
def test_the_dispatchers_page_is_not_for_clients_or_drivers(client, org, role):
    from identity.models import Client

    shop = (
        Client.objects.create(organisation=org, slug="shop", name="Shop")
        if role == Role.CLIENT_USER
        else None
    )
    client.force_login(make_user(org, role, "someone", client=shop))
    assert client.get(reverse("scorecards-page")).status_code == 403
    client.logout()
    assert client.get(reverse("scorecards-page")).status_code == 302  # to the login page


def test_a_driver_sees_their_own_scorecard_page(client, org, driver, late):
    user = make_user(org, Role.DRIVER, "driver-one")
    driver.user = user
    driver.save(update_fields=["user"])
    client.force_login(user)
    page = client.get(reverse("my-scorecard-page"))
    assert page.status_code == 200
    text = page.content.decode()
    assert "My scorecard" in text and driver.name in text and 'id="scorecard-charts"' in text


def test_the_admin_excuses_through_the_service_with_a_reason(staff_client, late):
    url = reverse("admin:scorecards_deliveryoutcome_excuse", args=[late.pk])
    assert staff_client.get(url).status_code == 200
    refused = staff_client.post(url, {"reason": ""})
    assert refused.status_code == 200 and refused.context["form"].errors
    done = staff_client.post(url, {"reason": "Road closed by police."})
    assert done.status_code == 302
    late.refresh_from_db()
    assert late.excused_cause == ExcuseCause.DISPATCHER_EXCUSED
    assert late.driver.scorecard.sums["30d"]["deliveries_late_excused"] == 1
    assert staff_client.get(reverse("admin:scorecards_scorecard_changelist")).status_code == 200
