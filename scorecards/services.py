"""Writes for scorecards: each fact (a delivery's outcome, an answered offer, a stop's service
time, a driver's cancellation, a rating, a dispatcher's excuse) is stored once and added to the
driver's daily bucket and to their scorecard's running window sums, in one transaction under
the scorecard's row lock. Work per fact is bounded (one bucket, the buckets that left a window
since the last update, the last N outcomes), never a scan of the driver's history.
"""

from datetime import date, datetime

import h3
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, OuterRef, Subquery
from django.utils import timezone

from core.actors import Actor
from core.db import lock
from core.events import record_event
from core.history import attribute_change
from dispatch.engine.roads import TRAFFIC_H3_RES
from dispatch.models import (
    GeofenceVisit,
    Offer,
    Order,
    OrderStatus,
    OrderTransition,
    TrafficKind,
    TrafficRecord,
)
from dispatch.rating_links import delivered_at, link_expires_at
from dispatch.services.orders import lock_holder
from fleet.models import Driver, LocationPing, Vehicle
from fleet.services import set_performance_score
from identity.models import Organisation
from scorecards import excuses, scoring
from scorecards.models import (
    COUNTERS,
    DailyStats,
    DeliveryOutcome,
    DriverCancellation,
    ExcuseCause,
    OfferAnswer,
    Outcome,
    Rating,
    Scorecard,
    ScorecardSettings,
    ScorecardSnapshot,
    StopResequence,
    StopService,
)
from scorecards.selectors import (
    SCORE_WINDOW,
    WINDOWS,
    advanced_windows,
    settings_of,
    utc_day,
)
from scorecards.signals import delivery_outcome_excused, delivery_outcome_recorded

EXCUSE_REASON_MAX = 500


# --- the scorecard itself ---------------------------------------------------------------------


def _locked_scorecard(driver_id, organisation_id, now: datetime) -> Scorecard:
    """The driver's scorecard under its row lock, its windows moved on to today (the buckets
    that left each window since its last update taken out of its sums). The driver's row is
    locked first, as every service locks (the driver, then their orders, then what hangs on
    them): a rating or an excuse then queues behind a delivery instead of deadlocking with it
    (the score is written on the driver, and discipline locks the driver, after this)."""
    list(lock(Driver.objects).filter(id=driver_id).values_list("id", flat=True))
    # lock() set this transaction's lock timeout: the card's lock needs no second set_config.
    # The organisation's score settings come with the card (_finish reads them).
    cards = (
        Scorecard.objects.select_for_update(of=("self",))
        .select_related("organisation__scorecard_settings")
        .filter(driver_id=driver_id)
    )
    card = cards.first()
    if card is None:  # the driver's first fact
        Scorecard.objects.bulk_create(
            [Scorecard(driver_id=driver_id, organisation_id=organisation_id, updated_at=now)],
            ignore_conflicts=True,
        )
        card = cards.get()
    card.sums, card.window_starts = advanced_windows(card, utc_day(now))
    return card


def _add(card: Scorecard, *, day: date, deltas: dict) -> None:
    """Add a fact's counts to its day's bucket and to each window it falls in. Every bucket
    write of a driver holds their scorecard's lock, so update-or-create does not race."""
    bumped = DailyStats.objects.filter(driver_id=card.driver_id, day=day).update(
        **{name: F(name) + value for name, value in deltas.items()}
    )
    if not bumped:
        DailyStats.objects.create(
            driver_id=card.driver_id, organisation_id=card.organisation_id, day=day, **deltas
        )
    for window in WINDOWS:
        if day >= date.fromisoformat(card.window_starts[window]):
            sums = card.sums[window]
            for name, value in deltas.items():
                sums[name] = sums.get(name, 0) + value


def last_n_figures(driver_id, n: int) -> dict:
    """The last n delivery outcomes' figures, with the ratings of those orders (one per order),
    read in one query."""
    rating = Rating.objects.filter(order_id=OuterRef("order_id")).values("stars")
    outcomes = list(
        DeliveryOutcome.objects.filter(driver_id=driver_id)
        .order_by("-finished_at", "-id")
        .values_list("outcome", "excused_cause", Subquery(rating))[:n]
    )
    sums = dict.fromkeys(COUNTERS, 0)
    for outcome, cause, stars in outcomes:
        for name, value in scoring.outcome_deltas(outcome, bool(cause)).items():
            sums[name] += value
        if stars is not None:
            sums["rating_sum"] += stars
            sums["rating_count"] += 1
    shown = scoring.figures(sums)
    return {"n": n, "orders": len(outcomes), **{name: shown[name] for name in LAST_N_FIGURES}}


LAST_N_FIGURES = (
    "deliveries",
    "on_time",
    "late",
    "late_excused",
    "on_time_rate",
    "failed",
    "rating_mean",
    "rating_count",
)


def _finish(card: Scorecard, *, now: datetime, refresh_last_n: bool) -> Scorecard:
    """Recompute what follows from the sums (last N, the score), save, and put the score on
    the driver for matching."""
    options = settings_of(card.organisation)
    if refresh_last_n or not card.last_n:
        card.last_n = last_n_figures(card.driver_id, options.last_n_orders)
    score = scoring.performance_score(
        card.sums[SCORE_WINDOW], weights=options.weights, prior_strength=options.prior_strength
    )
    changed = score.value != card.performance_score
    card.performance_score = score.value
    card.score_inputs = {"window": SCORE_WINDOW, "prior_strength": options.prior_strength, **score.as_dict()}
    card.updated_at = now
    card.save()
    if changed:
        set_performance_score(driver_id=card.driver_id, score=score.value)
    return card


def _count_once(row, *, at: datetime, deltas: dict, now: datetime | None, last_n: bool = False):
    """Store a fact's row and add it to its driver's scorecard; None, with nothing counted,
    when its unique constraint refuses it (a replay, or recorded meanwhile by another
    transaction)."""
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError:
        return None
    now = now or timezone.now()
    card = _locked_scorecard(row.driver_id, row.organisation_id, now)
    _add(card, day=utc_day(at), deltas=deltas)
    _finish(card, now=now, refresh_last_n=last_n)
    return row


@transaction.atomic
def refresh_scorecard(*, driver_id, now: datetime | None = None) -> Scorecard:
    """Move a driver's windows on to today (buckets that left them taken out) and recompute
    the score: the daily roll, or after the organisation's settings changed."""
    now = now or timezone.now()
    organisation_id = Driver.objects.values_list("organisation_id", flat=True).get(id=driver_id)
    card = _locked_scorecard(driver_id, organisation_id, now)
    return _finish(card, now=now, refresh_last_n=True)


# --- delivery outcomes --------------------------------------------------------------------------


@transaction.atomic
def record_delivery_outcome(
    *, order: Order, finished_at: datetime, failed: bool = False, now: datetime | None = None
) -> DeliveryOutcome:
    """Store how the order's delivery went for its driver (on time, late, failed) and update
    their scorecard; a late one is checked for a cause the driver did not make
    (scorecards.excuses). Once per order: a second call returns the first outcome (the table
    refuses a second row; replays are rare, so none is looked for first). Sends
    `delivery_outcome_recorded` in this transaction."""
    if order.driver_id is None:
        raise ValidationError({"order": "The order has no driver to score."})
    late_s = max(0, int((finished_at - order.dropoff_window_end).total_seconds()))
    kind = Outcome.FAILED if failed else (Outcome.LATE if late_s > 0 else Outcome.ON_TIME)
    cause, inputs = "", {}
    if kind == Outcome.LATE:
        cause, inputs = excuses.find_excuse(late_facts(order, finished_at=finished_at))
    outcome = DeliveryOutcome(
        organisation_id=order.organisation_id,
        driver_id=order.driver_id,
        order=order,
        client_id=order.client_id,
        outcome=kind,
        finished_at=finished_at,
        promised_by=order.dropoff_window_end,
        late_seconds=late_s if kind == Outcome.LATE else 0,
        excused_cause=cause,
        excuse_inputs=inputs,
        excused_at=(now or timezone.now()) if cause else None,
    )
    deltas = scoring.outcome_deltas(kind, bool(cause))
    if _count_once(outcome, at=finished_at, deltas=deltas, now=now, last_n=True) is None:
        return DeliveryOutcome.objects.get(order=order)
    delivery_outcome_recorded.send(sender=DeliveryOutcome, outcome=outcome)
    return outcome


def late_facts(order: Order, *, finished_at: datetime) -> excuses.LateFacts:
    """What the system recorded about a late order, for scorecards.excuses."""
    latest = {}  # action -> when the driver last did it, in one query
    for action, occurred_at in OrderTransition.objects.filter(
        order=order, driver_id=order.driver_id, action__in=["assign", "pick_up"]
    ).values_list("action", "occurred_at"):
        latest[action] = max(occurred_at, latest.get(action, occurred_at))
    assigned_at, picked_up_at = latest.get("assign"), latest.get("pick_up")
    visit = (
        GeofenceVisit.objects.filter(
            order=order, driver_id=order.driver_id, kind=GeofenceVisit.Kind.PICKUP, entered_at__isnull=False
        )
        .order_by("-entered_at")
        .first()
    )
    on_board_from = picked_up_at or assigned_at or order.pickup_window_start
    return excuses.LateFacts(
        promised_by=order.dropoff_window_end,
        finished_at=finished_at,
        pickup_window_start=order.pickup_window_start,
        pickup_window_end=order.pickup_window_end,
        assigned_at=assigned_at,
        travel_s=_travel_s(order, depart_at=max(filter(None, [assigned_at, order.pickup_window_start]))),
        pickup_arrived_at=visit.entered_at if visit else None,
        pickup_departed_at=(visit.exited_at if visit and visit.exited_at else picked_up_at)
        if visit
        else None,
        incidents=_incidents_on_the_way(order, since=on_board_from, until=finished_at),
        resequences=_resequences_after(order, since=assigned_at),
    )


def _travel_s(order: Order, *, depart_at: datetime) -> float | None:
    """Pickup to drop-off at the organisation's travel times (traffic applied), for the driver's vehicle."""
    from dispatch.travel import travel_times

    vehicle_type = (
        Vehicle.objects.filter(driver_id=order.driver_id, is_active=True)
        .values_list("type", flat=True)
        .first()
    )
    kwargs = {"vehicle_type": vehicle_type} if vehicle_type else {}
    try:
        seconds = (
            travel_times(organisation_id=order.organisation_id)
            .matrix(
                [(order.pickup_location.y, order.pickup_location.x)],
                [(order.dropoff_location.y, order.dropoff_location.x)],
                depart_at.timestamp(),
                **kwargs,
            )
            .seconds
        )
    except (ValueError, LookupError):
        return None
    return float(seconds[0][0])


def route_cells(order: Order, *, since: datetime, until: datetime) -> set[str]:
    """The traffic cells the order went through: the driver's pings while it was on board, and
    the cells on the straight line from the pickup to the drop-off."""
    start = h3.latlng_to_cell(order.pickup_location.y, order.pickup_location.x, TRAFFIC_H3_RES)
    end = h3.latlng_to_cell(order.dropoff_location.y, order.dropoff_location.x, TRAFFIC_H3_RES)
    try:
        cells = set(h3.grid_path_cells(start, end))
    except h3.H3BaseException:  # too far apart or across a pentagon: the two ends only
        cells = {start, end}
    pings = LocationPing.objects.filter(
        driver_id=order.driver_id, recorded_at__gte=since, recorded_at__lte=until
    ).values_list("location", flat=True)
    cells.update(h3.latlng_to_cell(point.y, point.x, TRAFFIC_H3_RES) for point in pings[:2000])
    return cells


def _incidents_on_the_way(order: Order, *, since: datetime, until: datetime) -> list[dict]:
    cells = route_cells(order, since=since, until=until)
    incidents = TrafficRecord.objects.filter(
        organisation_id=order.organisation_id,
        kind=TrafficKind.INCIDENT,
        way_id__isnull=True,
        h3_cell__in=cells,
        valid_from__lt=until,
        valid_until__gt=since,
    ).order_by("valid_from")[:20]
    return [
        {
            "source": record.source,
            "external_id": record.external_id,
            "h3_cell": record.h3_cell,
            "factor": record.factor,
            "valid_from": record.valid_from.isoformat(),
            "valid_until": record.valid_until.isoformat(),
            "description": record.description,
        }
        for record in incidents
    ]


def _resequences_after(order: Order, *, since: datetime | None) -> list[dict]:
    if since is None:
        return []
    moved = StopResequence.objects.filter(order=order, driver_id=order.driver_id, resequenced_at__gte=since)
    return [
        {
            "stop": row.kind,
            "at": row.resequenced_at.isoformat(),
            "from_position": row.from_position,
            "to_position": row.to_position,
            "eta_before": row.eta_before.isoformat() if row.eta_before else None,
            "eta_after": row.eta_after.isoformat() if row.eta_after else None,
            "reason": row.reason,
        }
        for row in moved.order_by("resequenced_at")[:20]
        if row.eta_before is None or row.eta_after is None or row.eta_after > row.eta_before
    ]


@transaction.atomic
def excuse_late_delivery(
    *, outcome_id, organisation: Organisation, actor: Actor, reason: str, now: datetime | None = None
) -> DeliveryOutcome:
    """A dispatcher excuses a late delivery the checks did not: it stops counting against the
    driver's on-time rate (scorecard updated at once), with who and why kept and audited
    (`delivery.excused`). Sends `delivery_outcome_excused`."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the lateness is excused."})
    if len(reason) > EXCUSE_REASON_MAX:
        raise ValidationError({"reason": f"At most {EXCUSE_REASON_MAX} characters."})
    now = now or timezone.now()
    found = DeliveryOutcome.objects.filter(id=outcome_id, organisation=organisation).first()
    if found is None:
        raise DeliveryOutcome.DoesNotExist("No such delivery outcome in your organisation.")
    card = _locked_scorecard(found.driver_id, found.organisation_id, now)
    outcome = lock(DeliveryOutcome.objects).get(id=found.id)
    if outcome.outcome != Outcome.LATE:
        raise ValidationError(
            {"outcome_id": f"This delivery was {outcome.get_outcome_display().lower()}, not late."}
        )
    if outcome.excused_cause:
        raise ValidationError(
            {"outcome_id": f"Already excused: {outcome.get_excused_cause_display().lower()}."}
        )
    outcome.excused_cause = ExcuseCause.DISPATCHER_EXCUSED
    outcome.excused_at = now
    outcome.excuse_inputs = {
        **outcome.excuse_inputs,
        "excused_by": actor.as_dict(),
        "reason": reason,
        "excused_at": now.isoformat(),
    }
    attribute_change(outcome, actor, f"excused: {reason}")
    outcome.save()
    _add(card, day=utc_day(outcome.finished_at), deltas={"deliveries_late_excused": 1})
    _finish(card, now=now, refresh_last_n=True)
    record_event(
        organisation=organisation,
        event_type="delivery.excused",
        subject_type="driver",
        subject_id=outcome.driver_id,
        actor=actor,
        reason=reason,
        payload={
            "order_id": str(outcome.order_id),
            "driver_id": str(outcome.driver_id),
            "outcome_id": outcome.id,
            "late_seconds": outcome.late_seconds,
        },
    )
    delivery_outcome_excused.send(sender=DeliveryOutcome, outcome=outcome)
    return outcome


# --- the other facts ------------------------------------------------------------------------------

ANSWER_COUNTERS = {
    OfferAnswer.Answer.ACCEPTED: "offers_accepted",
    OfferAnswer.Answer.DECLINED: "offers_declined",
    OfferAnswer.Answer.EXPIRED: "offers_expired",
}


@transaction.atomic
def record_offer_answer(
    *, offer: Offer, answer: str, answered_at: datetime, now: datetime | None = None
) -> OfferAnswer | None:
    """A driver answered an offer (accepted, declined, let it expire); once per offer."""
    row = OfferAnswer(
        organisation_id=offer.organisation_id,
        driver_id=offer.driver_id,
        offer=offer,
        answer=answer,
        answered_at=answered_at,
    )
    return _count_once(row, at=answered_at, deltas={ANSWER_COUNTERS[answer]: 1}, now=now)


@transaction.atomic
def record_stop_service(
    *, visit: GeofenceVisit, departed_at: datetime, now: datetime | None = None
) -> StopService | None:
    """A geofence visit ended: the driver's service time at the stop (arrival to departure)."""
    if visit.entered_at is None or departed_at < visit.entered_at:
        return None
    seconds = int((departed_at - visit.entered_at).total_seconds())
    row = StopService(
        organisation_id=visit.organisation_id,
        driver_id=visit.driver_id,
        order_id=visit.order_id,
        visit=visit,
        kind=visit.kind,
        arrived_at=visit.entered_at,
        departed_at=departed_at,
        service_s=seconds,
    )
    deltas = {f"{visit.kind}_service_s": seconds, f"{visit.kind}_visits": 1}
    return _count_once(row, at=departed_at, deltas=deltas, now=now)


@transaction.atomic
def record_cancellation(
    *, order: Order, driver_id, event_id, cancelled_at: datetime, reason: str, now: datetime | None = None
) -> DriverCancellation | None:
    """A driver gave up an order they held; once per event."""
    row = DriverCancellation(
        organisation_id=order.organisation_id,
        driver_id=driver_id,
        order=order,
        event_id=event_id,
        cancelled_at=cancelled_at,
        reason=reason[:2000],
    )
    return _count_once(row, at=cancelled_at, deltas={"cancellations": 1}, now=now)


def record_resequences(*, organisation_id, driver_id, at: datetime, moved: list[dict], reason: str) -> None:
    """Stops the system moved when it re-sequenced a driver's route (evidence for lateness)."""
    StopResequence.objects.bulk_create(
        StopResequence(
            organisation_id=organisation_id,
            driver_id=driver_id,
            order_id=stop["order_id"],
            kind=stop["stop"],
            resequenced_at=at,
            from_position=stop["from_position"],
            to_position=stop["to_position"],
            eta_before=_parse_time(stop.get("eta_before")),
            eta_after=_parse_time(stop.get("eta_after")),
            reason=reason[:2000],
        )
        for stop in moved
    )


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


# --- the daily roll ---------------------------------------------------------------------------------


def snapshot_scorecards(*, now: datetime | None = None, organisation_id=None) -> int:
    """Move every scorecard's windows on to today and keep the day's snapshot (the charts'
    history); each driver in its own transaction. Returns how many."""
    now = now or timezone.now()
    cards = Scorecard.objects.all()
    if organisation_id is not None:
        cards = cards.filter(organisation_id=organisation_id)
    done = 0
    for driver_id in cards.order_by("driver_id").values_list("driver_id", flat=True):
        with transaction.atomic():
            card = refresh_scorecard(driver_id=driver_id, now=now)
            ScorecardSnapshot.objects.update_or_create(
                driver_id=driver_id,
                day=utc_day(now),
                defaults={
                    "organisation_id": card.organisation_id,
                    "metrics": {window: scoring.figures(card.sums[window]) for window in WINDOWS},
                    "performance_score": card.performance_score,
                },
            )
        done += 1
    return done


# --- ratings ---------------------------------------------------------------------------------------

RATING_COMMENT_MAX = 500


@transaction.atomic
def submit_rating(*, order: Order, stars: int, comment: str = "", now: datetime | None = None) -> Rating:
    """The recipient's rating of a delivered order (the signed link's page checks the link):
    1-5 stars and a comment of at most 500 characters, once per order (the table refuses a
    second). Counts on the driver's scorecard at once; `rating.received` (without the comment)."""
    if isinstance(stars, bool) or not isinstance(stars, int) or not 1 <= stars <= 5:
        raise ValidationError({"stars": "Choose 1 to 5 stars."})
    comment = (comment or "").strip()
    if len(comment) > RATING_COMMENT_MAX:
        raise ValidationError({"comment": f"At most {RATING_COMMENT_MAX} characters."})
    now = now or timezone.now()
    lock_holder(order.pk)  # the driver before the order, as every service locks
    order = lock(Order.objects).get(pk=order.pk)
    if order.status != OrderStatus.DELIVERED or order.driver_id is None:
        raise ValidationError({"order": "Only a delivered order can be rated."})
    delivered = delivered_at(order)
    if delivered is None or now >= link_expires_at(delivered):
        raise ValidationError({"order": "The time to rate this delivery has passed."})
    rating = Rating(
        organisation_id=order.organisation_id,
        driver_id=order.driver_id,
        order=order,
        client_id=order.client_id,
        stars=stars,
        comment=comment,
        rated_at=now,
    )
    deltas = {"rating_sum": stars, "rating_count": 1}
    if _count_once(rating, at=now, deltas=deltas, now=now, last_n=True) is None:
        raise RatingAlreadyGiven("This delivery has already been rated.")
    record_event(
        organisation=order.organisation_id,
        event_type="rating.received",
        subject_type="driver",
        subject_id=order.driver_id,
        actor=Actor.system("rating-link"),
        payload={"order_id": str(order.id), "driver_id": str(order.driver_id), "stars": stars},
    )
    return rating


class RatingAlreadyGiven(Exception):
    """A second rating for an order (a replayed link)."""


# --- settings ------------------------------------------------------------------------------------------


@transaction.atomic
def update_scorecard_settings(
    *, organisation: Organisation, changes: dict, actor: Actor, merge_weights: bool = False
) -> ScorecardSettings:
    """Change the organisation's score settings (weights, prior strength, N), all or nothing;
    a bad value names its field (`weights.<metric>`). `merge_weights`: the given weights
    change only those metrics (PATCH). Scores are recomputed after commit;
    `scorecard.settings_updated` records old -> new."""
    unknown = set(changes) - {"weights", "prior_strength", "last_n_orders"}
    if unknown:
        raise ValidationError(dict.fromkeys(sorted(unknown), "Unknown setting."))
    ScorecardSettings.objects.get_or_create(organisation=organisation)
    row = lock(ScorecardSettings.objects).get(organisation=organisation)
    before = {
        "weights": dict(row.weights),
        "prior_strength": row.prior_strength,
        "last_n_orders": row.last_n_orders,
    }
    errors = {}
    if "weights" in changes:
        weights = {**row.weights, **changes["weights"]} if merge_weights else changes["weights"]
        errors |= scoring.check_weights(weights)
        row.weights = weights
    for name, low, high in (("prior_strength", 0, 1000), ("last_n_orders", 1, 500)):
        if name in changes:
            value = changes[name]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                errors[name] = f"Must be a whole number from {low} to {high}."
            else:
                setattr(row, name, value)
    if errors:
        raise ValidationError(errors)
    after = {"weights": row.weights, "prior_strength": row.prior_strength, "last_n_orders": row.last_n_orders}
    if after == before:
        return row
    attribute_change(row, actor, "scorecard settings")
    row.save()
    record_event(
        organisation=organisation,
        event_type="scorecard.settings_updated",
        subject_type="organisation",
        subject_id=organisation.id,
        actor=actor,
        payload={"old": before, "new": after},
    )
    transaction.on_commit(lambda: _queue_rescore(str(organisation.id)))
    return row


def _queue_rescore(organisation_id: str) -> None:
    from scorecards.tasks import rescore_organisation

    rescore_organisation.delay(organisation_id)


def rescore_organisation(*, organisation_id, now: datetime | None = None) -> int:
    """Recompute every scorecard of the organisation (its settings changed), each in its own
    transaction. Returns how many."""
    driver_ids = Scorecard.objects.filter(organisation_id=organisation_id).values_list("driver_id", flat=True)
    for driver_id in list(driver_ids):
        refresh_scorecard(driver_id=driver_id, now=now)
    return len(driver_ids)
