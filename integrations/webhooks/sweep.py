"""The sweep: which due deliveries to send now, fairly between organisations.

One organisation's receivers that never answer must not hold back another's webhooks. So a
sweep takes at most WEBHOOK_SWEEP_PER_ORG due deliveries of each organisation, interleaved
(every organisation's oldest first, then every organisation's second...), and in-process
it sends them on WEBHOOK_SWEEP_WORKERS threads, at most PER_ORGANISATION_CONCURRENCY of
one organisation at a time. With the try's deadline, a sweep lasts at most
ceil(WEBHOOK_SWEEP_PER_ORG / PER_ORGANISATION_CONCURRENCY) deadlines, whoever is slow.
"""

import logging
from collections import Counter, deque
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from django.conf import settings
from django.db import connections
from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from integrations.models import WebhookDelivery
from integrations.webhooks.delivery import attempt, due_filter

logger = logging.getLogger(__name__)

PER_ORGANISATION_CONCURRENCY = 2


def due_deliveries(limit: int = 100) -> list[tuple]:
    """(delivery id, organisation id) of what to send now, in a fair order."""
    turn = Window(
        RowNumber(),
        partition_by=[F("organisation_id")],
        order_by=[F("next_attempt_at").asc(), F("id").asc()],
    )
    return list(
        WebhookDelivery.objects.filter(due_filter(timezone.now()), subscription__is_active=True)
        .annotate(turn=turn)
        .filter(turn__lte=settings.WEBHOOK_SWEEP_PER_ORG)
        .order_by("turn", "next_attempt_at", "id")
        .values_list("id", "organisation_id")[:limit]
    )


def send_fairly(due: list[tuple]) -> None:
    """Send in this process (no Celery): organisations take turns for the worker threads."""
    workers = settings.WEBHOOK_SWEEP_WORKERS
    if workers <= 1:  # one thread: the fair order is all there is
        for delivery_id, _ in due:
            _attempt(delivery_id)
        return
    waiting: dict = {}
    for delivery_id, organisation_id in due:
        waiting.setdefault(organisation_id, deque()).append(delivery_id)
    busy: Counter = Counter()
    running: dict = {}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="webhook-sweep") as pool:
        while waiting or running:
            _start_turns(pool, waiting, busy, running, workers)
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                busy[running.pop(future)] -= 1


def _start_turns(pool, waiting: dict, busy: Counter, running: dict, workers: int) -> None:
    """Give free threads out one organisation at a time, in turn, each within its cap."""
    started = True
    while started and len(running) < workers:
        started = False
        for organisation_id in list(waiting):
            if len(running) >= workers:
                return
            if busy[organisation_id] >= PER_ORGANISATION_CONCURRENCY:
                continue
            queue = waiting.pop(organisation_id)
            running[pool.submit(_attempt_on_thread, queue.popleft())] = organisation_id
            busy[organisation_id] += 1
            started = True
            if queue:
                waiting[organisation_id] = queue  # to the back of the line


def _attempt(delivery_id) -> None:
    """One try; a failure to log it is logged here, so the other deliveries go on."""
    try:
        attempt(delivery_id)
    except Exception:
        logger.exception("Webhook delivery %s: the try could not be made or logged", delivery_id)


def _attempt_on_thread(delivery_id) -> None:
    try:
        _attempt(delivery_id)
    finally:
        connections.close_all()  # this worker thread's own connections
