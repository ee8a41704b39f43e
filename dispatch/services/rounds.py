"""The dispatch loop: a round reads an organisation's pool and its available drivers, asks the
engine (solve_round) who should take what under the organisation's rules, and offers each unit
of work to its driver through make_offer, with the engine's reasons on the offer.

One round at a time per organisation: a round locks the organisation's DispatchSettings row
for its whole transaction (on SQLite the single writer serialises them), so two rounds never
offer one order twice or give a driver two offers. A driver who declined an order or let its
offer lapse is left out for that order; a driver with an offer to answer gets no new one.

Rounds run every DISPATCH_ROUND_SECONDS for every organisation with work and drivers
(dispatch.tasks), and soon after an event that may change the answer (`request_round`).
"""

import gc
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import OperationalError, transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone

from core.actors import Actor
from core.api.errors import is_busy
from core.db import lock
from dispatch.engine.assignment import eligible_pairs, solve_round
from dispatch.engine.auction import incentive_minor
from dispatch.engine.rules import Auction
from dispatch.engine.travel import RoadProvider
from dispatch.models import DispatchSettings, Offer, OfferStatus, Order, OrderStatus
from dispatch.services.dispatch_settings import ensure_dispatch_settings, rules_for
from dispatch.services.offers import OfferDraft, make_offers
from dispatch.services.round_inputs import OrderRow, load_round_inputs
from dispatch.travel import travel_times
from fleet.models import Driver, DriverStatus
from identity.models import Organisation

logger = logging.getLogger(__name__)


@dataclass
class OfferMade:
    offer_id: str
    driver: str
    orders: list[str]  # external refs
    lines: list[str]  # why this driver: the engine's cost terms in words


@dataclass
class RoundReport:
    organisation: str
    ran_at: datetime
    skipped: str = ""  # why the round did not run (another round held the lock)
    drivers: int = 0
    orders: int = 0
    offers: list[OfferMade] = field(default_factory=list)
    left_open: dict[str, str] = field(default_factory=dict)  # order ref -> why
    left_out_drivers: dict[str, str] = field(default_factory=dict)  # driver name -> why
    travel_note: str = ""  # how many travel times were road times and how many estimates
    seconds: dict[str, float] = field(default_factory=dict)  # phase (load, solve, write) -> time
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # phase -> this process's CPU time

    def lines(self) -> list[str]:
        """The report as text for a dispatcher (the management command prints it)."""
        head = f"Round for {self.organisation} at {self.ran_at.isoformat(timespec='seconds')}"
        if self.skipped:
            return [f"{head}: skipped ({self.skipped})"]
        out = [
            f"{head}: {self.orders} open orders, {self.drivers} available drivers, {len(self.offers)} offers"
        ]
        if self.travel_note:
            out.append(f"  travel times: {self.travel_note}")
        for made in self.offers:
            out.append(f"  offer {made.offer_id}: {', '.join(made.orders)} -> {made.driver}")
            out.extend(f"    - {line}" for line in made.lines)
        for ref, why in sorted(self.left_open.items()):
            out.append(f"  left open {ref}: {why}")
        for name, why in sorted(self.left_out_drivers.items()):
            out.append(f"  driver left out {name}: {why}")
        return out


def run_round(
    *, organisation: Organisation, now: datetime | None = None, actor: Actor | None = None
) -> RoundReport:
    """Run one dispatch round for the organisation and report what it offered and what it left
    open, and why. A round another one holds the lock against is skipped, not queued."""
    actor = actor or Actor.system("dispatch-round")
    ensure_dispatch_settings(organisation)
    try:
        with _collector_paused(), transaction.atomic():
            settings_row = lock(DispatchSettings.objects).get(organisation=organisation)
            return _run_locked(organisation, settings_row, now or timezone.now(), actor)
    except OperationalError as exc:
        if not is_busy(exc):
            raise
        logger.info("dispatch round for %s skipped: %s", organisation.slug, exc)
        return RoundReport(
            organisation=organisation.slug,
            ran_at=now or timezone.now(),
            skipped="another round holds the organisation's lock",
        )


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for a round. A round makes tens of thousands of
    objects that all live until it ends; that many survivors make CPython run a full
    collection over the whole heap (Django, the road graph: about 200,000 objects, 120-170 ms
    of CPU here) in nearly every round, while the round's own objects are freed by reference
    counting as soon as it ends. Cycles it leaves are collected after it. Process-wide, so
    only a pause this call made is lifted."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def _run_locked(
    organisation: Organisation, settings_row: DispatchSettings, now: datetime, actor: Actor
) -> RoundReport:
    started, started_cpu = time.perf_counter(), time.process_time()
    inputs = load_round_inputs(organisation, now=now, rules=rules_for(settings_row))
    loaded, loaded_cpu = time.perf_counter(), time.process_time()
    report = RoundReport(
        organisation=organisation.slug,
        ran_at=now,
        drivers=len(inputs.drivers),
        orders=len(inputs.orders),
        left_out_drivers=inputs.left_out_drivers,
    )
    if not inputs.orders:
        return report
    # Road or straight-line times by the settings, under the organisation's traffic, per vehicle.
    travel = travel_times(organisation_id=organisation.id)
    # Broadcast: each order to every eligible driver, the first to accept wins (accept_offer
    # withdraws the rest); optimal: the engine's best one driver per unit of work.
    solve = eligible_pairs if inputs.rules.mode == "broadcast" else solve_round
    result = solve(inputs.drivers, inputs.orders, now_s=now.timestamp(), travel=travel, rules=inputs.rules)
    if isinstance(travel, RoadProvider) and travel.estimated:
        report.travel_note = (
            f"{travel.routed} on the roads, {travel.estimated} straight-line estimates "
            "(places off the road network)"
        )
        logger.info("round for %s: %s", organisation.slug, report.travel_note)
    solved, solved_cpu = time.perf_counter(), time.process_time()
    ttl = timedelta(seconds=settings_row.offer_ttl_seconds)
    misses = _misses([order.id for order in inputs.order_rows.values()])
    drafts = []
    for assignment in result.assignments:
        orders = [inputs.order_rows[order_id] for order_id in assignment.order_ids]
        incentive, attempt, incentive_lines = _incentive(
            orders, inputs.rules.auction, misses, now, organisation
        )
        lines = assignment.terms.lines() + incentive_lines
        drafts.append(OfferDraft(inputs.driver_rows[assignment.driver_id], orders, lines, incentive, attempt))
    # Rows another transaction holds (a driver answering an offer) are skipped, not waited
    # for: their drafts fail as busy and the next round tries again.
    made = make_offers(
        organisation=organisation,
        drafts=drafts,
        expires_at=timezone.now() + ttl,
        actor=actor,
        skip_locked=True,
    )
    failed: dict[str, str] = {}
    offered: set[str] = set()
    for draft, offer in zip(drafts, made, strict=True):
        refs = [o.external_ref for o in draft.orders]
        if isinstance(offer, ValidationError):
            # The driver went offline or an order was taken since the round read them.
            why = "; ".join(offer.messages)
            failed.update((ref, f"the offer to {draft.driver.name} failed: {why}") for ref in refs)
            continue
        offered.update(refs)
        report.offers.append(OfferMade(str(offer.id), draft.driver.name, refs, draft.explanation))
    # In broadcast an order one offer failed for may still be offered to others.
    report.left_open.update({ref: why for ref, why in failed.items() if ref not in offered})
    for order_id, reason in result.unassigned.items():
        order = inputs.order_rows[order_id]
        excluded = len(inputs.excluded.get(order_id, ()))
        note = f" ({excluded} driver(s) left out: declined or let an offer lapse)" if excluded else ""
        report.left_open[order.external_ref] = f"{reason}{note}"
    report.seconds = {
        "load": loaded - started,
        "solve": solved - loaded,
        "write": time.perf_counter() - solved,
    }
    report.cpu_seconds = {
        "load": loaded_cpu - started_cpu,
        "solve": solved_cpu - loaded_cpu,
        "write": time.process_time() - solved_cpu,
    }
    return report


def _misses(order_ids) -> dict:
    """Order id -> (declined, expired): how often its offers were turned down or let lapse."""
    rows = (
        Offer.orders.through.objects.filter(
            order_id__any=order_ids, offer__status__in=[OfferStatus.DECLINED, OfferStatus.EXPIRED]
        )
        .values("order_id")
        .annotate(
            declined=Count("id", filter=Q(offer__status=OfferStatus.DECLINED)),
            expired=Count("id", filter=Q(offer__status=OfferStatus.EXPIRED)),
        )
    )
    return {row["order_id"]: (row["declined"], row["expired"]) for row in rows}


def _incentive(
    orders: list[OrderRow], auction: Auction | None, misses: dict, now: datetime, organisation: Organisation
) -> tuple[int, int, list[str]]:
    """The offer's incentive (each order's, summed), its attempt (1 + the most misses of its
    orders) and a plain line per order that earns one, for the explanation."""
    total, attempt, lines = 0, 1, []
    for order in orders:
        declined, expired = misses.get(order.id, (0, 0))
        attempt = max(attempt, 1 + declined + expired)
        amount, why = incentive_minor(
            auction,
            declined=declined,
            expired=expired,
            seconds_to_pickup_end=(order.pickup_window_end - now).total_seconds(),
        )
        if amount:
            total += amount
            which = f" ({order.external_ref})" if len(orders) > 1 else ""
            lines.append(
                f"Incentive {amount // 100}.{amount % 100:02d} {organisation.currency}{which}: {why}"
            )
    return total, attempt, lines


def organisations_with_work() -> list[Organisation]:
    """Organisations with an order in the pool and an online ACTIVE driver: the ones a round
    could change anything for."""
    now = timezone.now()
    pool = Order.objects.filter(
        organisation=OuterRef("pk"), status=OrderStatus.CREATED, pickup_window_end__gt=now
    )
    online = Driver.objects.filter(organisation=OuterRef("pk"), status=DriverStatus.ACTIVE, is_online=True)
    return list(Organisation.objects.filter(Exists(pool), Exists(online)).order_by("slug"))


def run_rounds(organisations) -> list[RoundReport]:
    """A round for each organisation; one that fails is logged and the others still run."""
    reports = []
    for organisation in organisations:
        try:
            reports.append(run_round(organisation=organisation))
        except Exception:
            logger.exception("dispatch round for %s failed", organisation.slug)
    return reports


# --- Rounds on events -------------------------------------------------------------------------

_requested: set[str] = set()
_requested_lock = threading.Lock()


def queued_key(organisation_id) -> str:
    return f"dispatch:round-queued:{organisation_id}"


def request_round(organisation_id) -> None:
    """Ask for a round for the organisation soon (call after commit). At most one is queued per
    organisation: with Celery a cache key marks it until the task starts; in-process a set
    holds it until the scheduler's next pass (dispatch.run_requested_dispatch_rounds)."""
    organisation_id = str(organisation_id)
    # Eager Celery (tests) runs no worker: a queued round would run inside the caller instead.
    if settings.BACKGROUND_JOBS != "celery" or settings.CELERY_TASK_ALWAYS_EAGER:
        with _requested_lock:
            _requested.add(organisation_id)
        return
    key = queued_key(organisation_id)
    if not cache.add(key, 1, timeout=max(30, settings.DISPATCH_ROUND_SECONDS * 6)):
        return  # one is queued already
    try:
        from celery import current_app

        current_app.send_task("dispatch.run_dispatch_round", args=[organisation_id])
    except Exception:
        cache.delete(key)
        logger.warning(
            "Could not queue a dispatch round for %s; the periodic round will run it.", organisation_id
        )


def take_requested() -> list[str]:
    """The organisations a round was asked for in-process, forgetting them."""
    with _requested_lock:
        taken = sorted(_requested)
        _requested.clear()
    return taken
