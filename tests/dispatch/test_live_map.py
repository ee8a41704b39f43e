"""The live map: who may open it, what it shows (only the caller's organisation), its
streets layer and its websocket."""

import json
import re

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from config.asgi import application
from core.actors import Actor
from dispatch import consumers
from dispatch.live import live_snapshot
from dispatch.services.orders import create_order, transition_order
from fleet import services as fleet_services
from identity.models import Role, User
from tests.conftest import make_active_driver, make_hub, make_user, make_zone, order_payload
from tests.dispatch.factories import order_input


def login(user):
    client = Client()
    client.force_login(user)
    return client


def place(driver, lat=60.1699, lon=24.9384):
    from django.utils import timezone

    fleet_services.set_driver_online(
        driver_id=driver.id, organisation=driver.organisation, online=True, actor=Actor.system("t")
    )
    fleet_services.record_ping(
        driver=driver, ping=fleet_services.PingInput(lat=lat, lon=lon, recorded_at=timezone.now())
    )


@pytest.fixture
def driver_user(org):
    return make_user(org, Role.DRIVER, "courier")


@pytest.fixture
def staff(db):
    return User.objects.create_user(username="staffer", password="pw-123456-x", role=Role.PLATFORM_STAFF)


# --- the page ---------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_sign_in(client):
    for url in ("/live/", "/demo/streets.geojson"):
        response = client.get(url)
        assert response.status_code == 302
        assert response.url.startswith("/accounts/login/?next=")


def test_drivers_and_platform_staff_may_not_open_it(driver_user, staff):
    for user in (driver_user, staff):
        for url in ("/live/", "/demo/streets.geojson"):
            assert login(user).get(url).status_code == 403


def test_dispatcher_sees_their_own_organisation_only(org, other_org, dispatcher):
    make_hub(org, "Our hub")
    make_hub(other_org, "Their hub")
    make_zone(org, "Our zone")
    response = login(dispatcher).get("/live/")
    assert response.status_code == 200
    html = response.content.decode()
    assert org.name in html and other_org.name not in html
    config = json.loads(
        re.search(r'<script id="live-config" type="application/json">(.*?)</script>', html).group(1)
    )
    assert [h["name"] for h in config["hubs"]] == ["Our hub"]
    assert [z["name"] for z in config["zones"]] == ["Our zone"]
    assert config["bounds"] == [[60.164, 24.935], [60.179, 24.953]]
    assert config["wsPath"] == "/ws/live/"


def test_page_has_no_inline_script_and_loads_leaflet_from_our_static_files(org, dispatcher):
    html = login(dispatcher).get("/live/").content.decode()
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, flags=re.S)
    for attributes, body in scripts:
        assert "src=" in attributes or 'type="application/json"' in attributes, attributes
        if "src=" in attributes:
            assert body.strip() == ""
            assert re.search(r'src="/static/', attributes)
    assert '/static/vendor/leaflet/leaflet.js"' in html
    assert '/static/dispatch/live.js"' in html
    assert "http://" not in html and "https://" not in html  # nothing from a CDN


def test_login_page_signs_in_to_the_live_map(org, dispatcher):
    client = Client()
    page = client.get("/accounts/login/?next=/live/")
    assert page.status_code == 200
    assert b'name="username"' in page.content and b"csrfmiddlewaretoken" in page.content
    response = client.post(
        "/accounts/login/", {"username": "dispatcher", "password": "pw-123456-x", "next": "/live/"}
    )
    assert response.status_code == 302 and response.url == "/live/"
    assert client.get("/live/").status_code == 200
    wrong = Client().post("/accounts/login/", {"username": "dispatcher", "password": "nope"})
    assert wrong.status_code == 200 and b'role="alert"' in wrong.content


# --- the snapshot -------------------------------------------------------------------------


def test_snapshot_holds_only_the_organisations_drivers_and_orders(org, other_org):
    ours = make_active_driver(org, name="Our Driver", phone="+358401000001")
    busy = make_active_driver(org, name="Busy Driver", phone="+358401000002", vehicle="bicycle")
    theirs = make_active_driver(other_org, name="Their Driver", phone="+358401000003")
    offline = make_active_driver(org, name="Offline Driver", phone="+358401000004", plate="XYZ-9")
    for driver in (ours, busy, theirs):
        place(driver)
    fleet_services.record_ping(
        driver=offline,
        ping=fleet_services.PingInput(lat=60.17, lon=24.94, recorded_at=ours.last_seen_at),
    )
    order = create_order(organisation=org, actor=Actor.system("t"), data=order_input(order_payload("A-1")))
    create_order(organisation=org, actor=Actor.system("t"), data=order_input(order_payload("A-2")))
    create_order(organisation=other_org, actor=Actor.system("t"), data=order_input(order_payload("B-1")))
    transition_order(
        order_id=order.id, organisation=org, action="assign", actor=Actor.system("t"), driver=busy
    )

    snapshot = live_snapshot(org.id)
    drivers = {d["name"]: d for d in snapshot["drivers"]}
    assert set(drivers) == {"Our Driver", "Busy Driver", "Offline Driver"}
    assert (drivers["Our Driver"]["online"], drivers["Our Driver"]["busy"]) == (True, False)
    assert (drivers["Busy Driver"]["busy"], drivers["Busy Driver"]["vehicle"]) == (True, "bicycle")
    assert drivers["Offline Driver"]["online"] is False
    assert drivers["Our Driver"]["position"] == {"lat": 60.1699, "lon": 24.9384}
    assert {o["ref"] for o in snapshot["orders"]} == {"A-1", "A-2"}
    assert snapshot["order_counts"] == {"CREATED": 1, "ASSIGNED": 1}


# --- the websocket ------------------------------------------------------------------------


SOCKET_HEADERS = [(b"origin", b"http://localhost"), (b"host", b"localhost")]


def session_cookie(user) -> list[tuple[bytes, bytes]]:
    """A real signed-in session for the user, as the browser's cookie header."""
    if user is None or not user.is_authenticated:
        return []
    browser = Client()
    browser.force_login(user)
    return [(b"cookie", f"sessionid={browser.cookies['sessionid'].value}".encode())]


def socket_for(cookie) -> WebsocketCommunicator:
    """The live map's socket through the project's ASGI stack (origin check, session, user)."""
    return WebsocketCommunicator(application, "/ws/live/", headers=SOCKET_HEADERS + cookie)


def connect_as(user):
    cookie = session_cookie(user)

    async def run():
        communicator = socket_for(cookie)
        connected, code = await communicator.connect(timeout=5)
        message = await communicator.receive_json_from(timeout=5) if connected else None
        await communicator.disconnect()
        return connected, code, message

    return async_to_sync(run)()


@pytest.mark.django_db(transaction=True)
def test_websocket_sends_the_organisations_snapshot(org, other_org, dispatcher):
    place(make_active_driver(org, name="Our Driver", phone="+358401000001"))
    place(make_active_driver(other_org, name="Their Driver", phone="+358401000002"))
    connected, _, message = connect_as(dispatcher)
    assert connected
    assert message["type"] == "snapshot"
    assert [d["name"] for d in message["drivers"]] == ["Our Driver"]
    assert "order_counts" in message and "at" in message


@pytest.mark.django_db(transaction=True)
def test_websocket_refuses_anonymous_drivers_and_staff(org, driver_user, staff):
    from django.contrib.auth.models import AnonymousUser

    for user in (None, AnonymousUser(), driver_user, staff):
        connected, code, _ = connect_as(user)
        assert not connected
        assert code == 4403


@pytest.fixture
def fast_pushes(monkeypatch):
    monkeypatch.setattr(consumers, "REFRESH_SECONDS", 0.05)


def watch_until_closed(user, change) -> int:
    """Open the socket as the user, take one snapshot, apply `change`, return the close code."""
    cookie = session_cookie(user)

    async def run():
        communicator = socket_for(cookie)
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        assert (await communicator.receive_json_from(timeout=5))["type"] == "snapshot"
        await database_sync_to_async(change)()
        for _ in range(20):  # pushes already under way may still arrive; then the socket closes
            message = await communicator.receive_output(timeout=5)
            if message["type"] == "websocket.close":
                return message["code"]
        await communicator.disconnect()
        return None  # it kept streaming

    return async_to_sync(run)()


@pytest.mark.django_db(transaction=True)
def test_the_socket_closes_when_its_session_ends(org, dispatcher, fast_pushes):
    from django.contrib.sessions.models import Session

    assert watch_until_closed(dispatcher, lambda: Session.objects.all().delete()) == consumers.SESSION_ENDED


@pytest.mark.django_db(transaction=True)
def test_the_socket_closes_when_the_password_changes(org, dispatcher, fast_pushes):
    def change_password():
        dispatcher.set_password("a-new-pw-98765")
        dispatcher.save()

    assert watch_until_closed(dispatcher, change_password) == consumers.SESSION_ENDED


@pytest.mark.django_db(transaction=True)
def test_the_socket_closes_when_the_user_is_deactivated_or_loses_the_role(org, dispatcher, fast_pushes):
    def deactivate():
        User.objects.filter(pk=dispatcher.pk).update(is_active=False)

    assert watch_until_closed(dispatcher, deactivate) == consumers.NOT_ALLOWED
    User.objects.filter(pk=dispatcher.pk).update(is_active=True)

    def demote():
        User.objects.filter(pk=dispatcher.pk).update(role=Role.DRIVER)

    assert watch_until_closed(dispatcher, demote) == consumers.NOT_ALLOWED


def live_pushers() -> list:
    import asyncio

    return [
        task
        for task in asyncio.all_tasks()
        if "push_forever" in getattr(task.get_coro(), "__qualname__", "") and not task.done()
    ]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "frame", [{"text_data": "not json"}, {"text_data": '{"type": "hi"}'}, {"bytes_data": b"\0"}]
)
def test_any_client_frame_closes_the_socket_with_1003_and_stops_the_pushes(
    org, dispatcher, fast_pushes, frame
):
    cookie = session_cookie(dispatcher)

    async def run():
        communicator = socket_for(cookie)
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        assert (await communicator.receive_json_from(timeout=5))["type"] == "snapshot"
        await communicator.send_to(**frame)
        for _ in range(20):  # pushes already under way may still arrive
            message = await communicator.receive_output(timeout=5)
            if message["type"] == "websocket.close":
                break
        await communicator.disconnect()
        return message, live_pushers()

    message, pushers = async_to_sync(run)()
    assert message == {"type": "websocket.close", "code": consumers.UNSUPPORTED_DATA}
    assert pushers == []


@pytest.mark.django_db(transaction=True)
def test_a_failing_push_closes_the_socket_with_1011(org, dispatcher, fast_pushes, monkeypatch):
    def broken(organisation_id):
        raise RuntimeError("database gone")

    monkeypatch.setattr(consumers, "live_snapshot", broken)
    cookie = session_cookie(dispatcher)

    async def run():
        communicator = socket_for(cookie)
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        message = await communicator.receive_output(timeout=5)
        await communicator.disconnect()
        return message, live_pushers()

    message, pushers = async_to_sync(run)()
    assert message == {"type": "websocket.close", "code": consumers.PUSH_FAILED}
    assert pushers == []


# --- offers, routes and orders at risk ------------------------------------------------------


def two_drivers(org):
    """A driver who will carry an order and one who will be offered another, both placed."""
    carrier = make_active_driver(org, name="Carrier", phone="+358401000011")
    offered = make_active_driver(org, name="Offered", phone="+358401000012", plate="OFF-1")
    for driver in (carrier, offered):
        place(driver)
    return carrier, offered


def route_offer_and_alert(org, carrier, offered, routed, waiting):
    """Assign `routed` to the carrier (a route), make its drop-off late and run the SLA watch
    (an alert), offer `waiting` to the other driver (a pending offer)."""
    from datetime import timedelta

    from django.utils import timezone

    from dispatch.models import Stop
    from dispatch.services import sla
    from tests.dispatch.test_offers import offer

    transition_order(
        order_id=routed.id, organisation=org, action="assign", actor=Actor.system("t"), driver=carrier
    )
    now = timezone.now()
    Stop.objects.filter(order=routed, kind="dropoff").update(
        window_start=now - timedelta(hours=2), window_end=now - timedelta(hours=1)
    )
    sla.watch_slas()
    return offer(org, offered, waiting)


def two_orders(org):
    system = Actor.system("t")
    return [
        create_order(organisation=org, actor=system, data=order_input(order_payload(ref)))
        for ref in ("ROUTED", "WAITING")
    ]


def test_snapshot_shows_pending_offers_routes_with_etas_and_orders_at_risk(org, other_org):
    carrier, offered = two_drivers(org)
    offer = route_offer_and_alert(org, carrier, offered, *two_orders(org))
    snapshot = live_snapshot(org.id)
    assert snapshot["offers"] == [
        {
            "id": str(offer.id),
            "driver_id": str(offered.id),
            "refs": ["WAITING"],
            "pickup": {"lat": 60.169, "lon": 24.941},  # order_payload's pickup
            "expires_at": offer.expires_at.isoformat(),
        }
    ]
    (route,) = snapshot["routes"]
    assert route["driver_id"] == str(carrier.id)
    assert [(s["ref"], s["kind"]) for s in route["stops"]] == [("ROUTED", "pickup"), ("ROUTED", "dropoff")]
    dropoff = route["stops"][1]
    assert dropoff["eta"] and dropoff["at_risk"] is True and dropoff["predicted_late_s"] > 3600
    risky = {o["ref"]: o["at_risk"] for o in snapshot["orders"]}
    assert risky == {"ROUTED": True, "WAITING": False}
    # Another organisation sees none of it.
    theirs = live_snapshot(other_org.id)
    assert theirs["offers"] == [] and theirs["routes"] == []


@pytest.mark.django_db(transaction=True)
def test_changes_are_pushed_on_commit_without_waiting_for_the_next_snapshot(
    org, other_org, dispatcher, monkeypatch
):
    """With the snapshot loop slowed right down, what arrives after the first snapshot is the
    pushed changes: a route when an order is assigned, an offer when one is made, an at-risk
    flag when the SLA watch raises one; another organisation's map hears none of it."""
    monkeypatch.setattr(consumers, "REFRESH_SECONDS", 3600)
    theirs = make_user(other_org, Role.DISPATCHER, "their-dispatcher")
    carrier, offered = two_drivers(org)
    routed, waiting = two_orders(org)
    ours_cookie, theirs_cookie = session_cookie(dispatcher), session_cookie(theirs)

    def changes():
        route_offer_and_alert(org, carrier, offered, routed, waiting)

    async def run():
        ours, others = socket_for(ours_cookie), socket_for(theirs_cookie)
        for communicator in (ours, others):
            assert (await communicator.connect(timeout=5))[0]
            assert (await communicator.receive_json_from(timeout=5))["type"] == "snapshot"
        await database_sync_to_async(changes)()
        seen = []
        while not await ours.receive_nothing(timeout=2):
            seen.append(await ours.receive_json_from(timeout=5))
        others_quiet = await others.receive_nothing(timeout=0.5)
        for communicator in (ours, others):
            await communicator.disconnect()
        return seen, others_quiet

    seen, others_quiet = async_to_sync(run)()
    kinds = [m["type"] for m in seen]
    assert "snapshot" not in kinds
    routes = [m for m in seen if m["type"] == "route"]
    assert routes and routes[-1]["driver_id"] == str(carrier.id)
    assert [s["ref"] for s in routes[-1]["stops"]] == ["ROUTED", "ROUTED"]
    offers = [m for m in seen if m["type"] == "offer"]
    assert offers and offers[0]["offer"]["refs"] == ["WAITING"]
    assert {"type": "order_risk", "order_id": str(routed.id), "at_risk": True} in seen
    assert others_quiet
