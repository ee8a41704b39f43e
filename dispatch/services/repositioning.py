"""Predictive dispatch: suggest idle drivers move toward where orders are expected.

`suggest_repositioning` forecasts the next slot's orders per H3 cell from the organisation's own
order history (dispatch.engine.forecast, through selectors.order_history), weighs them against
the drivers who are, or soon will be, near each cell, and asks the engine
(dispatch.engine.reposition.propose_moves) which idle drivers to send where. Each move becomes a
`RepositionSuggestion` for the driver: where, why in plain words, what it was decided from,
an optional incentive, and an expiry; the driver hears of it on their socket and accepts or
dismisses it in the driver API. Settings are the `reposition` section of the organisation's
dispatch rules (parse_rules checks them; off unless enabled).

A suggestion is advice: the driver stays online and available for offers whatever they answer.
It runs under the organisation's DispatchSettings lock, like a round, so two runs never suggest
twice and a round never reads drivers halfway through one.
"""

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, OperationalError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from core.actors import Actor
from core.api.errors import is_busy
from core.db import lock, save_transition
from core.events import record_event
from core.exceptions import InvalidTransition
from core.geo import make_point
from dispatch import push
from dispatch.engine.forecast import ForecastConfig, SlotForecast, cell_of, forecast_slot
from dispatch.engine.reposition import IdleDriver, Move, RepositionConfig, propose_moves, supply_by_cell
from dispatch.engine.rules import Reposition
from dispatch.models import (
    DRIVER_HOLDS_STATUSES,
    DispatchSettings,
    Offer,
    OfferStatus,
    Order,
    RepositionSuggestion,
    SuggestionStatus,
)
from dispatch.selectors import order_history
from dispatch.services.dispatch_settings import ensure_dispatch_settings, rules_for
from dispatch.services.offers import refuse_if_past_expiry
from fleet.models import Driver, DriverStatus, Vehicle
from identity.models import Organisation

logger = logging.getLogger(__name__)

HISTORY_DAYS = 28
DONE = {"accept": "accepted", "dismiss": "dismissed", "expire": "expired"}


def forecast_config(organisation: Organisation) -> ForecastConfig:
    """The forecast's slots follow the organisation's local day."""
    return ForecastConfig(timezone=organisation.timezone, history_days=HISTORY_DAYS)


@dataclass
class RepositionReport:
    organisation: str
    ran_at: datetime
    skipped: str = ""
    forecast_orders: float = 0.0
    idle_drivers: int = 0
    suggestions: list[RepositionSuggestion] = field(default_factory=list)


def suggest_repositioning(
    *, organisation: Organisation, now: datetime | None = None, actor: Actor | None = None
) -> RepositionReport:
    """Forecast the next slot and suggest moves to idle drivers (nothing when the organisation's
    `reposition` rules are off). Skipped, not queued, while a round holds the lock."""
    now = now or timezone.now()
    actor = actor or Actor.system("predictive-dispatch")
    report = RepositionReport(organisation=organisation.slug, ran_at=now)
    ensure_dispatch_settings(organisation)
    try:
        with transaction.atomic():
            settings_row = lock(DispatchSettings.objects).get(organisation=organisation)
            settings = rules_for(settings_row).reposition
            if not settings.enabled:
                report.skipped = "repositioning is off in the organisation's dispatch rules"
                return report
            _suggest_locked(organisation, settings, now, actor, report)
    except OperationalError as exc:
        if not is_busy(exc):
            raise
        report.skipped = "a round holds the organisation's lock"
    return report


def _suggest_locked(
    organisation: Organisation, settings: Reposition, now: datetime, actor: Actor, report: RepositionReport
) -> None:
    config = forecast_config(organisation)
    history = order_history(organisation, since=now - timedelta(days=HISTORY_DAYS), until=now)
    forecast = forecast_slot(history, now_s=now.timestamp(), config=config)
    report.forecast_orders = forecast.total()
    idle, elsewhere = _supply(organisation, now)
    report.idle_drivers = len(idle)
    moves = propose_moves(
        [IdleDriver(str(d.id), d.last_location.y, d.last_location.x) for d in idle],
        forecast,
        other_supply=supply_by_cell(elsewhere, config.resolution),
        config=RepositionConfig(max_distance_m=settings.max_distance_m, min_gain=settings.min_expected_gain),
    )
    by_id = {str(d.id): d for d in idle}
    for move in moves:
        try:
            with transaction.atomic():
                report.suggestions.append(
                    make_suggestion(
                        organisation=organisation,
                        driver=by_id[move.driver_id],
                        move=move,
                        forecast=forecast,
                        settings=settings,
                        actor=actor,
                        now=now,
                    )
                )
        except ValidationError as exc:  # went offline, or answered an offer, since the read
            logger.info("no suggestion for %s: %s", move.driver_id, "; ".join(exc.messages))


def _supply(organisation: Organisation, now: datetime) -> tuple[list[Driver], list[tuple[float, float]]]:
    """Idle drivers (ACTIVE, online, with a position and an active vehicle, as a round needs,
    holding no order, with no offer or suggestion to answer or on its way) and where the other online drivers will be: at their
    last drop-off, at a suggested target, or where they are (also who dismissed a suggestion
    for this slot)."""
    pending_offer = Offer.objects.filter(driver=OuterRef("pk"), status=OfferStatus.PENDING)
    drivers = list(
        Driver.objects.filter(
            organisation=organisation, status=DriverStatus.ACTIVE, is_online=True, last_location__isnull=False
        )
        .filter(Exists(Vehicle.objects.filter(driver=OuterRef("pk"), is_active=True)))
        .annotate(has_pending_offer=Exists(pending_offer))
        .order_by("id")
    )
    last_drop = {}
    for order in Order.objects.filter(driver__in=drivers, status__in=DRIVER_HOLDS_STATUSES).order_by(
        "dropoff_window_end"
    ):
        last_drop[order.driver_id] = order.dropoff_location
    heading, dismissed = {}, set()
    for s in RepositionSuggestion.objects.filter(driver__in=drivers, slot_end__gt=now).exclude(
        status=SuggestionStatus.EXPIRED
    ):
        if s.status == SuggestionStatus.DISMISSED:
            dismissed.add(s.driver_id)  # said no for this slot: not asked again until the next
        else:
            heading[s.driver_id] = s.target
    idle, elsewhere = [], []
    for driver in drivers:
        where = last_drop.get(driver.id) or heading.get(driver.id)
        if where is not None:
            elsewhere.append((where.y, where.x))
        elif driver.has_pending_offer or driver.id in dismissed:
            elsewhere.append((driver.last_location.y, driver.last_location.x))
        else:
            idle.append(driver)
    return idle, elsewhere


def _money(amount: int, currency: str) -> str:
    return f"{amount // 100}.{amount % 100:02d} {currency}"


@transaction.atomic
def make_suggestion(
    *,
    organisation: Organisation,
    driver: Driver,
    move: Move,
    forecast: SlotForecast,
    settings: Reposition,
    actor: Actor,
    now: datetime | None = None,
) -> RepositionSuggestion:
    """Store one move as a pending suggestion for an ACTIVE, online driver with none pending,
    with its reason and inputs; the driver hears of it on their socket once this commits."""
    now = now or timezone.now()
    locked = lock(Driver.objects).filter(id=driver.id, organisation=organisation).first()
    if locked is None:
        raise ValidationError({"driver_id": "No such driver in your organisation."})
    if locked.status != DriverStatus.ACTIVE or not locked.is_online:
        raise ValidationError({"driver_id": "The driver is not ACTIVE and online."})
    incentive = settings.incentive_minor
    reason = move.reason
    if incentive:
        reason += f" Accepting pays {_money(incentive, organisation.currency)}."
    origin = locked.last_location
    suggestion = RepositionSuggestion(
        organisation=organisation,
        driver=locked,
        cell=move.cell,
        target=make_point(lat=move.lat, lon=move.lon),
        distance_m=round(move.distance_m),
        expected_orders=round(move.expected_orders, 3),
        drivers_near=move.drivers_near,
        slot_start=datetime.fromtimestamp(forecast.slot_start_s, UTC),
        slot_end=datetime.fromtimestamp(forecast.slot_end_s, UTC),
        reason=reason,
        inputs={
            "from": None
            if origin is None
            else {
                "lat": origin.y,
                "lon": origin.x,
                "cell": cell_of(origin.y, origin.x, forecast.config.resolution),
            },
            "forecast": {
                "basis": forecast.basis(),
                "resolution": forecast.config.resolution,
                "slot_minutes": forecast.config.slot_s // 60,
                "orders_used": forecast.orders_used,
                "seasonal_days": forecast.seasonal_days,
                "recent_slots": forecast.recent_slots,
                "expected_near_target": round(move.expected_orders, 3),
            },
            "drivers_near_target": move.drivers_near,
            "expected_gain": round(move.gain, 3),
            "settings": {
                "max_distance_m": settings.max_distance_m,
                "min_expected_gain": settings.min_expected_gain,
                "incentive_minor": settings.incentive_minor,
            },
        },
        incentive_minor=incentive,
        currency=organisation.currency,
        expires_at=max(now, timezone.now()) + timedelta(minutes=settings.ttl_minutes),
    )
    try:
        with transaction.atomic():
            suggestion.save()
    except IntegrityError as exc:
        raise ValidationError({"driver_id": "The driver already has a suggestion to answer."}) from exc
    record_event(
        organisation=organisation,
        event_type="reposition.suggested",
        subject_type="reposition_suggestion",
        subject_id=suggestion.id,
        actor=actor,
        reason=reason,
        payload=_payload(suggestion),
    )
    transaction.on_commit(lambda: push.suggestion_to_driver(suggestion))
    return suggestion


def _payload(suggestion: RepositionSuggestion) -> dict:
    return {
        "suggestion_id": str(suggestion.id),
        "driver_id": str(suggestion.driver_id),
        "status": suggestion.status,
        "cell": suggestion.cell,
        "target": {"lat": suggestion.target.y, "lon": suggestion.target.x},
        "expected_orders": suggestion.expected_orders,
        "incentive_minor": suggestion.incentive_minor,
        "currency": suggestion.currency,
        "expires_at": suggestion.expires_at.isoformat(),
    }


def _apply(suggestion: RepositionSuggestion, action: str, *, actor: Actor, reason: str = "") -> None:
    from_status = suggestion.status
    getattr(suggestion, action)()
    suggestion.responded_at = timezone.now()
    save_transition(suggestion, "suggestion")
    record_event(
        organisation=suggestion.organisation_id,
        event_type=f"reposition.{DONE[action]}",
        subject_type="reposition_suggestion",
        subject_id=suggestion.id,
        actor=actor,
        reason=reason,
        payload={**_payload(suggestion), "from_status": from_status},
    )


@transaction.atomic
def answer_suggestion(*, suggestion_id, driver: Driver, action: str, actor: Actor) -> RepositionSuggestion:
    """The driver accepts (`accept`) or dismisses (`dismiss`) their pending suggestion; one that
    is answered or past its expiry is refused (409) and nothing changes."""
    if action not in ("accept", "dismiss"):
        raise ValueError(f"unknown answer {action!r}")
    lock(Driver.objects).get(id=driver.id)
    suggestion = lock(RepositionSuggestion.objects).filter(id=suggestion_id, driver_id=driver.id).first()
    if suggestion is None:
        raise ValidationError({"suggestion_id": "No such suggestion for you."})
    if suggestion.status != SuggestionStatus.PENDING:
        raise InvalidTransition(
            f"This suggestion is {suggestion.status.lower()}; it can no longer be {DONE[action]}.",
            current_status=suggestion.status,
            action=action,
        )
    refuse_if_past_expiry(suggestion, "suggestion", action)
    _apply(suggestion, action, actor=actor)
    return suggestion


def expire_due_suggestions(now: datetime | None = None) -> int:
    """Pending suggestions past their expiry lapse, each in its own transaction. Returns how many."""
    now = now or timezone.now()
    due = RepositionSuggestion.objects.filter(status=SuggestionStatus.PENDING, expires_at__lte=now)
    expired = 0
    for suggestion_id in list(due.values_list("id", flat=True)):
        with transaction.atomic():
            suggestion = lock(RepositionSuggestion.objects).get(id=suggestion_id)
            if suggestion.status != SuggestionStatus.PENDING:
                continue  # answered meanwhile
            _apply(
                suggestion, "expire", actor=Actor.system("suggestion-expiry"), reason="Not answered in time."
            )
            expired += 1
    return expired


def end_pending_suggestions(*, driver_id, reason: str) -> int:
    """The driver's pending suggestion lapses because it no longer applies (they went offline,
    took work, or can no longer take work). Runs in the caller's transaction, the driver locked."""
    pending = RepositionSuggestion.objects.filter(driver_id=driver_id, status=SuggestionStatus.PENDING)
    ended = 0
    for suggestion in lock(pending).order_by("id"):
        _apply(suggestion, "expire", actor=Actor.system("suggestion-moot"), reason=reason)
        ended += 1
    return ended


def organisations_to_reposition() -> list[Organisation]:
    """Organisations whose rules turn repositioning on and that have an online ACTIVE driver."""
    online = Driver.objects.filter(organisation=OuterRef("pk"), status=DriverStatus.ACTIVE, is_online=True)
    enabled = DispatchSettings.objects.filter(organisation=OuterRef("pk"), rules__reposition__enabled=True)
    return list(Organisation.objects.filter(Exists(enabled), Exists(online)).order_by("slug"))


def suggest_for_all() -> list[RepositionReport]:
    """Expire what lapsed, then a run for each organisation that wants one; one that fails is
    logged and the others still run."""
    expire_due_suggestions()
    reports = []
    for organisation in organisations_to_reposition():
        try:
            reports.append(suggest_repositioning(organisation=organisation))
        except Exception:
            logger.exception("repositioning for %s failed", organisation.slug)
    return reports
