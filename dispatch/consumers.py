"""The live map's websocket: a snapshot of the organisation's drivers and open orders."""

import asyncio

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from dispatch.live import live_snapshot

REFRESH_SECONDS = 2.0


class LiveMapConsumer(AsyncJsonWebsocketConsumer):
    """Sends the snapshot on connect and every REFRESH_SECONDS while the page is open.

    Polling the database from the consumer works the same on the in-memory and the Redis
    channel layer and across processes; an event-pushed feed comes with the full dashboard.
    """

    async def connect(self):
        user = self.scope.get("user")
        if not user or not user.is_authenticated or not user.organisation_id or user.is_driver:
            await self.close(code=4403)
            return
        self.organisation_id = user.organisation_id
        await self.accept()
        self.pusher = asyncio.create_task(self.push_forever())

    async def disconnect(self, code):
        pusher = getattr(self, "pusher", None)
        if pusher:
            pusher.cancel()

    async def push_forever(self):
        while True:
            snapshot = await database_sync_to_async(live_snapshot)(self.organisation_id)
            await self.send_json({"type": "snapshot", **snapshot})
            await asyncio.sleep(REFRESH_SECONDS)
