"""Who sees which money: a driver only their own earnings, balance and statement; an invoice
only by its client's callers and its organisation; nobody elsewhere."""

from rest_framework.test import APIClient

from identity.models import Role
from identity.services import create_api_key, create_client
from payouts.models import Earning
from tests.api.conftest import client_for, error_of, session_client
from tests.conftest import make_user
from tests.payouts.conftest import deliver_by_api, make_courier, order_at_the_door


def test_a_driver_sees_only_their_own_money(org, other_org, tariffs, shop):
    me, colleague = make_courier(org, "me", "+358401000901"), make_courier(org, "co", "+358401000902")
    elsewhere = make_courier(other_org, "ex", "+358402000903")
    for courier, ref in ((me, "MINE-1"), (colleague, "THEIRS-1"), (elsewhere, "FAR-1")):
        deliver_by_api(
            courier.app, order_at_the_door(courier.driver.organisation, courier, ref=ref, client=None)
        )
    mine = me.app.get("/api/v1/driver/earnings").json()
    assert [e["external_ref"] for e in mine] == ["MINE-1"]
    balance = me.app.get("/api/v1/driver/balance").json()
    assert balance["balance_minor"] == Earning.objects.get(driver=me.driver).total_minor
    statement = me.app.get("/api/v1/driver/statement?as=csv").content.decode()
    assert "MINE-1" in statement and "THEIRS-1" not in statement and "FAR-1" not in statement
    # Another organisation's cycle is no cycle of theirs.
    from payouts.models import PayoutCycle

    theirs = PayoutCycle.objects.create(
        organisation=other_org, period_start="2026-01-01T00:00:00Z", period_end="2026-01-02T00:00:00Z"
    )
    refused = me.app.get(f"/api/v1/driver/statement?cycle={theirs.id}")
    assert refused.status_code == 400 and "cycle" in error_of(refused)["fields"]


def test_invoices_are_the_clients_own(org, other_org, courier, tariffs, shop):
    other_shop = create_client(organisation=org, slug="other-shop", name="Other Shop Oy")
    deliver_by_api(courier.app, order_at_the_door(org, courier, ref="SHOP-1", client=shop))
    deliver_by_api(courier.app, order_at_the_door(org, courier, ref="OTHER-1", client=other_shop))
    admin = session_client(make_user(org, Role.ORG_ADMIN, "boss"))
    listed = {row["id"]: row for row in admin.get("/api/v1/invoices").json()["results"]}
    assert set(listed) == {str(shop.id), str(other_shop.id)}
    assert listed[str(shop.id)]["deliveries"] == 1 and listed[str(shop.id)]["charged_minor"] > 0
    shop_key = client_for(create_api_key(organisation=org, name="shop-oms", client=shop))
    own = shop_key.get("/api/v1/invoices").json()["results"]
    assert [row["id"] for row in own] == [str(shop.id)]
    detail = shop_key.get(f"/api/v1/invoices/{shop.id}").json()
    assert [line["reference"] for line in detail["lines"]] == ["SHOP-1"]
    assert "SHOP-1" in shop_key.get(f"/api/v1/invoices/{shop.id}?as=csv").content.decode()
    assert shop_key.get(f"/api/v1/invoices/{other_shop.id}").status_code == 404
    elsewhere = client_for(create_api_key(organisation=other_org, name="elsewhere"))
    assert elsewhere.get(f"/api/v1/invoices/{shop.id}").status_code == 404
    assert elsewhere.get("/api/v1/invoices").json()["results"] == []
    driver = session_client(courier.user)
    assert driver.get("/api/v1/invoices").status_code == 403
    assert APIClient().get("/api/v1/invoices").status_code == 401
    bad = admin.get("/api/v1/invoices?from=yesterday")
    assert bad.status_code == 400 and "from" in error_of(bad)["fields"]
