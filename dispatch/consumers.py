"""Websockets: the live map (a snapshot of the organisation's drivers, open orders, offers and
routes, then changes pushed on commit) and the driver app's socket (offers and route changes
pushed as they happen).

Who may watch is checked on connect and again before every push, so a socket does not outlive
the right to see: it closes with
- 4401 when the session ended (signed out, expired, or the password changed), and
- 4403 when the person may no longer watch (deactivated, or no longer a dispatcher or
  organisation admin of that organisation).
The page tells the person to sign in again and does not reconnect on these codes.

The map only listens: any frame the client sends (text, JSON or not, or binary) closes the
socket with 1003 (unsupported data) rather than being parsed, so a stray or hostile frame
cannot crash the connection. The push task ends with the connection however it ends.
"""

import asyncio
import json
import logging
from importlib import import_module

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.crypto import constant_time_compare
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import JSONRenderer

from core.api.errors import flatten_errors
from dispatch import push
from dispatch.api.serializers import (
    DriverOfferSerializer,
    DriverSuggestionSerializer,
    PingBatchSerializer,
    PingsReceivedSerializer,
)
from dispatch.live import driver_routes, live_snapshot, pending_offers
from dispatch.models import Offer, RepositionSuggestion
from dispatch.push import driver_group, live_group
from dispatch.services.pings import receive_pings
from fleet.models import Driver
from identity.authentication import device_token_user
from identity.models import Organisation, Role

REFRESH_SECONDS = 2.0
SESSION_ENDED = 4401
NOT_ALLOWED = 4403
UNSUPPORTED_DATA = 1003
PUSH_FAILED = 1011

logger = logging.getLogger(__name__)


def may_watch(user, organisation_id) -> bool:
    return bool(user and user.is_active and user.runs_dispatch and user.organisation_id == organisation_id)


def watcher_state(session_key: str | None, user_id, organisation_id, may=may_watch) -> int | None:
    """None while the session still signs in this user and `may` still lets them; else the
    close code."""
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key=session_key)
    if not session_key or not session.exists(session_key) or session.get(SESSION_KEY) != str(user_id):
        return SESSION_ENDED
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None or not constant_time_compare(
        session.get(HASH_SESSION_KEY, ""), user.get_session_auth_hash()
    ):
        return SESSION_ENDED
    return None if may(user, organisation_id) else NOT_ALLOWED


def live_change(organisation_id, event: dict) -> dict | None:
    """What the map is sent for a pushed change, read now and within the organisation: a
    driver's route, an offer (or that it closed), an order's at-risk flag."""
    kind = event.get("kind")
    if kind == "route":
        routes = driver_routes(organisation_id, driver_id=event["driver_id"])
        return {"type": "route", **routes[0]}
    if kind == "offer":
        offers = pending_offers(organisation_id, offer_id=event["offer_id"])
        return (
            {"type": "offer", "offer": offers[0]}
            if offers
            else {"type": "offer_closed", "id": event["offer_id"]}
        )
    if kind == "at_risk":
        return {"type": "order_risk", "order_id": event["order_id"], "at_risk": bool(event["at_risk"])}
    return None


class LiveMapConsumer(AsyncJsonWebsocketConsumer):
    """Sends the snapshot on connect and every REFRESH_SECONDS while the page is open and its
    viewer may still see it; routes, offers and at-risk alerts also as they change (pushed on
    commit to the organisation's group)."""

    async def connect(self):
        user = self.scope.get("user")
        if not user or not user.is_authenticated or not may_watch(user, user.organisation_id):
            await self.close(code=NOT_ALLOWED)
            return
        self.user_id = user.pk
        self.organisation_id = user.organisation_id
        self.session_key = self.scope["session"].session_key
        await self.accept()
        await self.channel_layer.group_add(live_group(self.organisation_id), self.channel_name)
        self.pusher = asyncio.create_task(self.push_forever())

    async def receive(self, text_data=None, bytes_data=None):
        """Clients send nothing: refuse any frame before it is decoded."""
        await self.close(code=UNSUPPORTED_DATA)

    async def disconnect(self, code):
        self.stop_pushing()
        if getattr(self, "organisation_id", None) is not None:
            await self.channel_layer.group_discard(live_group(self.organisation_id), self.channel_name)

    async def live_event(self, message):
        """A change pushed on commit: re-check the viewer, then send what changed."""
        closing = await database_sync_to_async(watcher_state)(
            self.session_key, self.user_id, self.organisation_id
        )
        if closing is not None:
            await self.close(code=closing)
            return
        change = await database_sync_to_async(live_change)(self.organisation_id, message["event"])
        if change is not None:
            await self.send_json(change)

    async def __call__(self, scope, receive, send):
        # disconnect() is skipped when the consumer ends by an error: stop the pushes anyway.
        try:
            return await super().__call__(scope, receive, send)
        finally:
            self.stop_pushing()

    def stop_pushing(self) -> None:
        pusher = getattr(self, "pusher", None)
        if pusher:
            pusher.cancel()

    async def push_forever(self):
        try:
            await self.push_until_closed()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("Live map pushes failed; closing the socket")
            await self.close(code=PUSH_FAILED)

    async def push_until_closed(self):
        while True:
            closing = await database_sync_to_async(watcher_state)(
                self.session_key, self.user_id, self.organisation_id
            )
            if closing is not None:
                await self.close(code=closing)
                return
            snapshot = await database_sync_to_async(live_snapshot)(self.organisation_id)
            await self.send_json({"type": "snapshot", **snapshot})
            await asyncio.sleep(REFRESH_SECONDS)


# --- the driver app's socket ---------------------------------------------------------------

AUTH_TIMEOUT_SECONDS = 10.0


def may_drive(user, organisation_id) -> bool:
    return bool(
        user and user.is_active and user.role == Role.DRIVER and user.organisation_id == organisation_id
    )


def driver_of(user):
    return Driver.objects.filter(user=user, organisation_id=user.organisation_id).first()


def token_state(token: str, user_id) -> int | None:
    """None while the device token still signs in this driver; else the close code."""
    device, _problem = device_token_user(token)
    if device is None or device.user_id != user_id:
        return SESSION_ENDED
    return None


def offer_for_driver(offer_id, driver_id) -> dict | None:
    """The offer as GET /api/v1/driver/offers/{id} shows it (rendered as the API renders it)."""
    offer = Offer.objects.filter(id=offer_id, driver_id=driver_id).prefetch_related("orders").first()
    return None if offer is None else json.loads(JSONRenderer().render(DriverOfferSerializer(offer).data))


def route_for_driver(driver_id) -> dict:
    """The driver's route as GET /api/v1/driver/route shows it (rendered as the API renders it)."""
    from dispatch.api.serializers import driver_route_data

    return json.loads(JSONRenderer().render(driver_route_data(driver_id)))


def suggestion_for_driver(suggestion_id, driver_id) -> dict | None:
    """The suggestion as GET /api/v1/driver/reposition-suggestions/{id} shows it."""
    suggestion = RepositionSuggestion.objects.filter(id=suggestion_id, driver_id=driver_id).first()
    if suggestion is None:
        return None
    return json.loads(JSONRenderer().render(DriverSuggestionSerializer(suggestion).data))


def pings_answer(driver_id, organisation_id, body: dict) -> dict:
    """Pings sent on the socket, checked and stored as the HTTP endpoint does; the answer
    frame, or the API's error shape naming the field."""
    incoming = PingBatchSerializer(data=body)
    try:
        incoming.is_valid(raise_exception=True)
        received = receive_pings(
            driver_id=driver_id,
            organisation=Organisation.objects.get(id=organisation_id),
            pings=incoming.validated_data["pings"],
        )
    except (ValidationError, DjangoValidationError) as exc:
        detail = exc.detail if isinstance(exc, ValidationError) else exc.message_dict
        fields = flatten_errors(detail)
        message = f"Invalid input: {', '.join(sorted(fields))}."
        return {"type": "error", "error": {"code": "invalid", "message": message, "fields": fields}}
    data = json.loads(JSONRenderer().render(PingsReceivedSerializer(received).data))
    return {"type": "pings_received", **data}


class DriverConsumer(AsyncJsonWebsocketConsumer):
    """`/ws/driver/`: offers and reposition suggestions pushed to one driver's app as they are
    made; GPS pings sent up
    (`{"type": "pings", "pings": [...]}`, as POST /api/v1/driver/pings takes them).

    A driver's browser session signs it in on connect. The app sends its device token as the
    first message, `{"type": "auth", "token": "frd_..."}` (not in the URL, which lands in
    logs), within AUTH_TIMEOUT_SECONDS. Before every push the session or token is checked
    again; the socket closes with 4401 when it no longer signs in (revoked, signed out) and
    4403 when the account may not use the driver app.
    """

    async def connect(self):
        self.user_id = self.driver_id = self.token = None
        await self.accept()
        user = self.scope.get("user")
        if user is not None and user.is_authenticated:
            self.session_key = self.scope["session"].session_key
            await self.sign_in(user)
        else:
            self.waiter = asyncio.create_task(self.close_unless_signed_in())

    async def close_unless_signed_in(self):
        await asyncio.sleep(AUTH_TIMEOUT_SECONDS)
        if self.driver_id is None:
            await self.close(code=SESSION_ENDED)

    async def receive(self, text_data=None, bytes_data=None):
        """Only a JSON text frame is read (the sign-in, then pings); anything else closes with 1003."""
        try:
            content = json.loads(text_data) if text_data is not None else None
        except ValueError:
            content = None
        if content is None:
            await self.close(code=UNSUPPORTED_DATA)
            return
        await self.receive_json(content)

    async def receive_json(self, content, **kwargs):
        if not isinstance(content, dict):
            return
        if self.driver_id is not None and content.get("type") == "pings":
            await self.receive_pings(content)
            return
        if self.driver_id is not None or content.get("type") != "auth":
            return  # before the sign-in the socket listens for nothing else
        device, _problem = await database_sync_to_async(device_token_user)(str(content.get("token", "")))
        if device is None:
            await self.close(code=SESSION_ENDED)
            return
        self.token = str(content["token"])
        await self.sign_in(device.user)

    async def sign_in(self, user):
        driver = (
            await database_sync_to_async(driver_of)(user) if may_drive(user, user.organisation_id) else None
        )
        if driver is None:
            await self.close(code=NOT_ALLOWED)
            return
        self.user_id, self.organisation_id, self.driver_id = user.pk, user.organisation_id, driver.id
        await self.channel_layer.group_add(driver_group(driver.id), self.channel_name)
        await self.send_json({"type": "ready", "driver_id": str(driver.id)})

    async def receive_pings(self, content):
        """`{"type": "pings", "pings": [...], "id": "..."}`: the same checks and service as
        POST /api/v1/driver/pings; answered `pings_received` or `error` (with the same `id`)."""
        closing = await database_sync_to_async(self.signed_in_state)()
        if closing is not None:
            await self.close(code=closing)
            return
        body = {key: value for key, value in content.items() if key not in ("type", "id")}
        answer = await database_sync_to_async(pings_answer)(self.driver_id, self.organisation_id, body)
        if "id" in content:
            answer["id"] = str(content["id"])[:100]
        await self.send_json(answer)

    async def disconnect(self, code):
        waiter = getattr(self, "waiter", None)
        if waiter:
            waiter.cancel()
        if self.driver_id is not None:
            await self.channel_layer.group_discard(driver_group(self.driver_id), self.channel_name)

    async def offer_created(self, message):
        await self.push(offer_for_driver, message["offer_id"], "offer")

    async def reposition_suggested(self, message):
        await self.push(suggestion_for_driver, message["suggestion_id"], "reposition")

    async def driver_object(self, message):
        """One of the driver's objects of a kind another app registered (dispatch.push)."""
        load = push.DRIVER_OBJECT_LOADERS.get(message["kind"])
        if load is not None:
            await self.push(load, message["object_id"], message["kind"])

    async def push(self, load, object_id, kind: str):
        """Re-check the sign-in, then send the driver's own object as the API shows it."""
        closing = await database_sync_to_async(self.signed_in_state)()
        if closing is not None:
            await self.close(code=closing)
            return
        shown = await database_sync_to_async(load)(object_id, self.driver_id)
        if shown is not None:
            await self.send_json({"type": kind, kind: shown})

    async def route_updated(self, message):
        """The driver's route changed: send it as GET /api/v1/driver/route shows it."""
        closing = await database_sync_to_async(self.signed_in_state)()
        if closing is not None:
            await self.close(code=closing)
            return
        route = await database_sync_to_async(route_for_driver)(self.driver_id)
        await self.send_json({"type": "route", "route": route})

    def signed_in_state(self) -> int | None:
        if self.token is not None:
            state = token_state(self.token, self.user_id)
            if state is not None:
                return state
            user = get_user_model().objects.get(pk=self.user_id)
            return None if may_drive(user, self.organisation_id) else NOT_ALLOWED
        return watcher_state(self.session_key, self.user_id, self.organisation_id, may=may_drive)
