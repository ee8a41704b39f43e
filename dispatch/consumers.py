"""The live map's websocket: a snapshot of the organisation's drivers and open orders.

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
import logging
from importlib import import_module

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.utils.crypto import constant_time_compare

from dispatch.live import live_snapshot

REFRESH_SECONDS = 2.0
SESSION_ENDED = 4401
NOT_ALLOWED = 4403
UNSUPPORTED_DATA = 1003
PUSH_FAILED = 1011

logger = logging.getLogger(__name__)


def may_watch(user, organisation_id) -> bool:
    return bool(user and user.is_active and user.runs_dispatch and user.organisation_id == organisation_id)


def watcher_state(session_key: str | None, user_id, organisation_id) -> int | None:
    """None while the session still signs in this user and they may watch; else the close code."""
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key=session_key)
    if not session_key or not session.exists(session_key) or session.get(SESSION_KEY) != str(user_id):
        return SESSION_ENDED
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None or not constant_time_compare(
        session.get(HASH_SESSION_KEY, ""), user.get_session_auth_hash()
    ):
        return SESSION_ENDED
    return None if may_watch(user, organisation_id) else NOT_ALLOWED


class LiveMapConsumer(AsyncJsonWebsocketConsumer):
    """Sends the snapshot on connect and every REFRESH_SECONDS while the page is open and its
    viewer may still see it."""

    async def connect(self):
        user = self.scope.get("user")
        if not user or not user.is_authenticated or not may_watch(user, user.organisation_id):
            await self.close(code=NOT_ALLOWED)
            return
        self.user_id = user.pk
        self.organisation_id = user.organisation_id
        self.session_key = self.scope["session"].session_key
        await self.accept()
        self.pusher = asyncio.create_task(self.push_forever())

    async def receive(self, text_data=None, bytes_data=None):
        """Clients send nothing: refuse any frame before it is decoded."""
        await self.close(code=UNSUPPORTED_DATA)

    async def disconnect(self, code):
        self.stop_pushing()

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
