"""The driver app's socket: signs in by its first message (a device token) or a driver's
session, hears each new offer for its driver only, and closes once the token is revoked."""

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from config.asgi import application
from core.actors import Actor
from dispatch import consumers
from fleet.services import set_driver_online
from identity.models import Role
from identity.services import issue_device_token, revoke_device_token
from tests.api.conftest import offer_to
from tests.conftest import make_active_driver, make_user, order_payload
from tests.dispatch.factories import order_input
from tests.dispatch.test_live_map import SOCKET_HEADERS, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


def courier(org, n: int):
    user = make_user(org, Role.DRIVER, f"courier-{n}")
    driver = make_active_driver(
        org, name=f"Courier {n}", phone=f"+35840100080{n}", plate=f"WS-{n}", user=user
    )
    set_driver_online(driver_id=driver.id, organisation=org, online=True, actor=Actor.system("t"))
    driver.refresh_from_db()
    return user, driver


def new_order(org, ref):
    from dispatch.services.orders import create_order

    return create_order(organisation=org, actor=Actor.system("t"), data=order_input(order_payload(ref=ref)))


def socket(cookie=()) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, "/ws/driver/", headers=[*SOCKET_HEADERS, *cookie])


def run(coroutine_function):
    return async_to_sync(coroutine_function)()


def test_a_device_hears_its_own_offers_only(org):
    user, driver = courier(org, 1)
    _other_user, other = courier(org, 2)
    token = issue_device_token(user=user, name="Phone").plaintext

    async def scenario():
        app = socket()
        connected, _ = await app.connect(timeout=5)
        assert connected
        await app.send_json_to({"type": "auth", "token": token})
        ready = await app.receive_json_from(timeout=5)
        assert ready == {"type": "ready", "driver_id": str(driver.id)}
        await database_sync_to_async(offer_to)(other, await database_sync_to_async(new_order)(org, "THEIRS"))
        mine = await database_sync_to_async(offer_to)(
            driver, await database_sync_to_async(new_order)(org, "MINE")
        )
        pushed = await app.receive_json_from(timeout=5)
        assert pushed["type"] == "offer"
        assert pushed["offer"]["id"] == str(mine.id)
        assert pushed["offer"]["orders"][0]["external_ref"] == "MINE"
        assert await app.receive_nothing(timeout=0.2)
        await app.disconnect()

    run(scenario)


def test_a_revoked_token_closes_the_socket_at_the_next_push(org):
    user, driver = courier(org, 1)
    issued = issue_device_token(user=user, name="Phone")

    async def scenario():
        app = socket()
        await app.connect(timeout=5)
        await app.send_json_to({"type": "auth", "token": issued.plaintext})
        await app.receive_json_from(timeout=5)
        await database_sync_to_async(revoke_device_token)(
            device_token=issued.device_token, actor=Actor.for_user(user)
        )
        await database_sync_to_async(offer_to)(driver, await database_sync_to_async(new_order)(org, "AFTER"))
        closed = await app.receive_output(timeout=5)
        assert closed == {"type": "websocket.close", "code": consumers.SESSION_ENDED}

    run(scenario)


def test_a_wrong_token_or_none_in_time_is_refused(org, monkeypatch):
    courier(org, 1)
    monkeypatch.setattr(consumers, "AUTH_TIMEOUT_SECONDS", 0.1)

    async def scenario():
        wrong = socket()
        await wrong.connect(timeout=5)
        await wrong.send_json_to({"type": "auth", "token": "frd_nope_nope"})
        assert await wrong.receive_output(timeout=5) == {
            "type": "websocket.close",
            "code": consumers.SESSION_ENDED,
        }
        silent = socket()
        await silent.connect(timeout=5)
        assert await silent.receive_output(timeout=5) == {
            "type": "websocket.close",
            "code": consumers.SESSION_ENDED,
        }

    run(scenario)


def test_a_drivers_session_signs_in_and_a_dispatchers_does_not(org, dispatcher):
    user, driver = courier(org, 1)
    driver_cookie, dispatcher_cookie = session_cookie(user), session_cookie(dispatcher)

    async def scenario():
        app = socket(driver_cookie)
        await app.connect(timeout=5)
        assert (await app.receive_json_from(timeout=5))["driver_id"] == str(driver.id)
        await app.disconnect()
        refused = socket(dispatcher_cookie)
        await refused.connect(timeout=5)
        assert await refused.receive_output(timeout=5) == {
            "type": "websocket.close",
            "code": consumers.NOT_ALLOWED,
        }

    run(scenario)


@pytest.mark.parametrize(
    "frame", [{"text_data": "not json"}, {"bytes_data": b"\x00\x01"}], ids=["text", "binary"]
)
def test_a_frame_that_is_not_json_closes_with_1003(org, frame):
    async def scenario():
        client = socket()
        await client.connect(timeout=5)
        await client.send_to(**frame)
        assert await client.receive_output(timeout=5) == {
            "type": "websocket.close",
            "code": consumers.UNSUPPORTED_DATA,
        }
        await client.disconnect()

    run(scenario)


def test_a_driver_hears_their_route_change_as_the_api_shows_it(org):
    from dispatch.services.orders import transition_order

    user, driver = courier(org, 1)
    _other_user, other = courier(org, 2)
    token = issue_device_token(user=user, name="Phone").plaintext

    def assign(who, ref):
        order = new_order(org, ref)
        transition_order(
            order_id=order.id, organisation=org, action="assign", actor=Actor.system("t"), driver=who
        )

    async def scenario():
        app = socket()
        assert (await app.connect(timeout=5))[0]
        await app.send_json_to({"type": "auth", "token": token})
        assert (await app.receive_json_from(timeout=5))["type"] == "ready"
        await database_sync_to_async(assign)(other, "THEIRS")
        await database_sync_to_async(assign)(driver, "MINE")
        pushed = await app.receive_json_from(timeout=5)
        assert await app.receive_nothing(timeout=0.2)
        await app.disconnect()
        return pushed

    pushed = run(scenario)
    assert pushed["type"] == "route"
    assert [(s["external_ref"], s["kind"]) for s in pushed["route"]["stops"]] == [
        ("MINE", "pickup"),
        ("MINE", "dropoff"),
    ]
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_login(user)
    assert client.get("/api/v1/driver/route").json() == pushed["route"]


def test_pings_sent_on_the_socket_are_stored_and_checked_like_the_api(org):
    from datetime import timedelta

    from django.utils import timezone

    from dispatch.models import Order
    from dispatch.services.offers import accept_offer
    from fleet.models import LocationPing

    user, driver = courier(org, 1)
    token = issue_device_token(user=user, name="Phone").plaintext
    order = new_order(org, "WS-PINGS")
    accept_offer(offer_id=offer_to(driver, order).id, driver=driver, actor=Actor.for_user(user))
    now = timezone.now()

    def at(seconds, **extra):
        # order_payload's pickup, 3 m accuracy
        return {
            "lat": 60.169,
            "lon": 24.941,
            "accuracy_m": 3,
            "recorded_at": (now - timedelta(seconds=seconds)).isoformat(),
            **extra,
        }

    async def scenario():
        app = socket()
        await app.connect(timeout=5)
        await app.send_json_to({"type": "pings", "pings": [at(5)]})  # before signing in: ignored
        await app.send_json_to({"type": "auth", "token": token})
        assert (await app.receive_json_from(timeout=5))["type"] == "ready"
        await app.send_json_to({"type": "pings", "id": "b1", "pings": [at(30), at(10, lat=95)]})
        refused = await app.receive_json_from(timeout=5)
        assert refused["type"] == "error" and refused["id"] == "b1"
        assert list(refused["error"]["fields"]) == ["pings.1.lat"]
        await app.send_json_to({"type": "pings", "id": "b2", "pings": [at(30), at(10)]})
        answer = await app.receive_json_from(timeout=5)
        assert answer["type"] == "pings_received" and answer["id"] == "b2" and answer["stored"] == 2
        assert [(c["stop"], c["event"]) for c in answer["geofence"]] == [("pickup", "arrived")]
        await app.disconnect()

    run(scenario)
    assert LocationPing.objects.filter(driver=driver).count() == 2
    assert Order.objects.get(id=order.id).status == "ARRIVED_PICKUP"
