"""Reads of scorecards and the facts under them, newest first, each on an index that starts
with the driver (so "the last n" reads n rows)."""

from datetime import UTC, date, datetime, time, timedelta

from django.db.models import Count, F, QuerySet, Sum
from django.utils import timezone

from identity.models import Organisation
from scorecards import scoring
from scorecards.models import (
    COUNTERS,
    DailyStats,
    DeliveryOutcome,
    DriverCancellation,
    OfferAnswer,
    Rating,
    Scorecard,
    ScorecardSettings,
    ScorecardSnapshot,
    StopService,
)

# The rolling windows, in UTC days (today included), by the key the scorecard shows them under.
WINDOWS = {"7d": 7, "30d": 30}
# The window the performance score is computed over.
SCORE_WINDOW = "30d"
# How many days of daily snapshots the charts draw.
HISTORY_DAYS = 90


def utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def window_start(window: str, today: date) -> date:
    return today - timedelta(days=WINDOWS[window] - 1)


def settings_for(organisation_id) -> ScorecardSettings:
    """The organisation's score settings (the defaults when it never set any)."""
    found = ScorecardSettings.objects.filter(organisation_id=organisation_id).first()
    return found or ScorecardSettings(organisation_id=organisation_id)


def settings_of(organisation: Organisation) -> ScorecardSettings:
    """What settings_for returns, for an organisation read with
    select_related("scorecard_settings"): no query."""
    try:
        return organisation.scorecard_settings
    except ScorecardSettings.DoesNotExist:
        return ScorecardSettings(organisation_id=organisation.pk)


def advanced_windows(card: Scorecard, today: date) -> tuple[dict, dict]:
    """The card's window sums and starts as of `today`: the buckets that left each window since
    its last update taken out (a new card's windows start from what the buckets hold), read in
    one query for both windows. Never moves a window back."""
    sums, starts = dict(card.sums), dict(card.window_starts)
    wanted = {window: window_start(window, today) for window in WINDOWS}
    fresh = [window for window in WINDOWS if window not in starts]
    moving = {
        window: date.fromisoformat(starts[window])
        for window in WINDOWS
        if window in starts and date.fromisoformat(starts[window]) < wanted[window]
    }
    if not fresh and not moving:
        return sums, starts
    since = min([*(wanted[window] for window in fresh), *moving.values()])
    rows = list(
        DailyStats.objects.filter(driver_id=card.driver_id, day__gte=since).values_list("day", *COUNTERS)
    )
    for window in fresh:
        sums[window] = _summed(row for row in rows if row[0] >= wanted[window])
    for window, known in moving.items():
        gone = _summed(row for row in rows if known <= row[0] < wanted[window])
        sums[window] = {name: sums[window].get(name, 0) - gone[name] for name in COUNTERS}
    for window in [*fresh, *moving]:
        starts[window] = wanted[window].isoformat()
    return sums, starts


def _summed(rows) -> dict:
    totals = dict.fromkeys(COUNTERS, 0)
    for row in rows:
        for name, value in zip(COUNTERS, row[1:], strict=True):
            totals[name] += value
    return totals


def recent_outcomes(driver, n: int) -> list[DeliveryOutcome]:
    """The driver's last n delivery outcomes (on time, late with or without an excuse, failed)."""
    return list(outcomes_of(driver)[:n])


def recent_outcome_rows(driver, n: int) -> list[dict]:
    """recent_outcomes as plain rows, what another domain's rules read of them: `id`,
    `order_ref` (the order's reference, what the driver knows it by), `outcome`,
    `finished_at`, `late_seconds`, `excused_cause`. No models are built: about half the time
    of recent_outcomes, for the rules weighed at every delivery."""
    fields = ("id", "outcome", "finished_at", "late_seconds", "excused_cause")
    return list(outcomes_of(driver).values(*fields, order_ref=F("order__external_ref"))[:n])


def recent_offer_answers(driver, n: int) -> list[OfferAnswer]:
    """The driver's last n answers to offers (accepted, declined, expired)."""
    return list(OfferAnswer.objects.filter(driver=driver).order_by("-answered_at", "-id")[:n])


def recent_ratings(driver, n: int) -> list[Rating]:
    """The driver's last n ratings from recipients, each with its order's reference
    (`order_ref`)."""
    ratings = Rating.objects.filter(driver=driver).annotate(order_ref=F("order__external_ref"))
    return list(ratings.order_by("-rated_at", "-id")[:n])


def outcomes_of(driver) -> QuerySet[DeliveryOutcome]:
    return DeliveryOutcome.objects.filter(driver=driver).order_by("-finished_at", "-id")


def window_sums_from_facts(driver, *, since: date) -> dict:
    """A window's sums recomputed from the fact rows themselves (every fact on or after
    `since`, a UTC day): the check on the incremental sums, and what a rebuild would write."""
    start = datetime.combine(since, time.min, tzinfo=UTC)
    sums = dict.fromkeys(COUNTERS, 0)

    def add(deltas: dict) -> None:
        for name, value in deltas.items():
            sums[name] += value

    for answer in OfferAnswer.objects.filter(driver=driver, answered_at__gte=start).values_list(
        "answer", flat=True
    ):
        add({f"offers_{answer.lower()}": 1})
    for outcome, cause in DeliveryOutcome.objects.filter(driver=driver, finished_at__gte=start).values_list(
        "outcome", "excused_cause"
    ):
        add(scoring.outcome_deltas(outcome, bool(cause)))
    sums["cancellations"] = DriverCancellation.objects.filter(driver=driver, cancelled_at__gte=start).count()
    for stars in Rating.objects.filter(driver=driver, rated_at__gte=start).values_list("stars", flat=True):
        add({"rating_sum": stars, "rating_count": 1})
    for kind, seconds in StopService.objects.filter(driver=driver, departed_at__gte=start).values_list(
        "kind", "service_s"
    ):
        add({f"{kind}_service_s": seconds, f"{kind}_visits": 1})
    return sums


# What a client-limited caller sees of a driver: how the client's own orders went with them.
# Offer answers and the performance score mix every client's work, so they are left out.
CLIENT_FIGURES = (
    "deliveries",
    "on_time",
    "late",
    "late_excused",
    "on_time_rate",
    "failed",
    "cancellations",
    "rating_mean",
    "rating_count",
    "pickup_service_mean_s",
    "dropoff_service_mean_s",
)


def client_window_sums(*, organisation_id, client_id, since: date) -> dict:
    """Per driver, a window's sums over one client's orders only (every fact on or after
    `since`, a UTC day), read grouped by driver: the client's view of the drivers who carried
    its orders. A read on the client's indexed facts, not the scorecards (which mix clients)."""
    start = datetime.combine(since, time.min, tzinfo=UTC)
    by_driver: dict = {}

    def add(driver_id, deltas: dict, times: int = 1) -> None:
        sums = by_driver.setdefault(driver_id, dict.fromkeys(COUNTERS, 0))
        for name, value in deltas.items():
            sums[name] += value * times

    mine = {"organisation_id": organisation_id}
    outcomes = (
        DeliveryOutcome.objects.filter(**mine, client_id=client_id, finished_at__gte=start)
        .values_list("driver_id", "outcome", "excused_cause")
        .annotate(n=Count("id"))
        .order_by()
    )
    for driver_id, outcome, cause, n in outcomes:
        add(driver_id, scoring.outcome_deltas(outcome, bool(cause)), n)
    ratings = (
        Rating.objects.filter(**mine, client_id=client_id, rated_at__gte=start)
        .values_list("driver_id")
        .annotate(total=Sum("stars"), n=Count("id"))
        .order_by()
    )
    for driver_id, total, n in ratings:
        add(driver_id, {"rating_sum": total, "rating_count": n})
    services = (
        StopService.objects.filter(**mine, order__client_id=client_id, departed_at__gte=start)
        .values_list("driver_id", "kind")
        .annotate(total=Sum("service_s"), n=Count("id"))
        .order_by()
    )
    for driver_id, kind, total, n in services:
        add(driver_id, {f"{kind}_service_s": total, f"{kind}_visits": n})
    cancellations = (
        DriverCancellation.objects.filter(**mine, order__client_id=client_id, cancelled_at__gte=start)
        .values_list("driver_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    for driver_id, n in cancellations:
        add(driver_id, {"cancellations": n})
    return by_driver


def client_scorecards(
    *, organisation_id, client_id, driver_id=None, now: datetime | None = None
) -> list[dict]:
    """The client's view (see CLIENT_FIGURES) of every driver who carried its orders in the
    widest window, by name; `driver_id` narrows it to one."""
    from fleet.models import Driver

    today = utc_day(now or timezone.now())
    windows = {
        window: client_window_sums(
            organisation_id=organisation_id, client_id=client_id, since=window_start(window, today)
        )
        for window in WINDOWS
    }
    widest = max(WINDOWS, key=WINDOWS.get)
    drivers = Driver.objects.filter(organisation_id=organisation_id, id__in=list(windows[widest])).order_by(
        "name", "id"
    )
    if driver_id is not None:
        drivers = drivers.filter(id=driver_id)
    views = []
    for driver in drivers:
        view = {
            "driver": {"id": str(driver.id), "name": driver.name},
            "client_id": str(client_id),
            "windows": {},
        }
        for window in WINDOWS:
            shown = scoring.figures(windows[window].get(driver.id, {}))
            view["windows"][window] = {
                "from": window_start(window, today).isoformat(),
                **{name: shown[name] for name in CLIENT_FIGURES},
            }
        views.append(view)
    return views


def client_outcomes(driver, *, client_id, n: int) -> list[DeliveryOutcome]:
    """The driver's last n delivery outcomes on one client's orders."""
    return list(outcomes_of(driver).filter(client_id=client_id)[:n])


CLIENT_CSV_COLUMNS = (
    "driver_id",
    "driver_name",
    "client_id",
    *(f"{window}_{name}" for window in WINDOWS for name in CLIENT_FIGURES),
)


def client_csv_row(view: dict) -> list:
    return [
        view["driver"]["id"],
        view["driver"]["name"],
        view["client_id"],
        *(view["windows"][window][name] for window in WINDOWS for name in CLIENT_FIGURES),
    ]


def scorecard_of(driver) -> Scorecard:
    """The driver's scorecard; an empty (unsaved) one when nothing was recorded yet."""
    found = Scorecard.objects.filter(driver=driver).select_related("driver").first()
    if found is None:
        found = Scorecard(driver=driver, organisation_id=driver.organisation_id, updated_at=timezone.now())
    return found


def scorecards_for(*, organisation_id) -> list[Scorecard]:
    """Every driver of the organisation (applicants left out) with their scorecard or an empty
    one, by name."""
    from fleet.models import Driver, DriverStatus

    drivers = Driver.objects.filter(organisation_id=organisation_id).exclude(status=DriverStatus.APPLICANT)
    cards = {
        card.driver_id: card
        for card in Scorecard.objects.filter(organisation_id=organisation_id).select_related("driver")
    }
    now = timezone.now()
    return [
        cards.get(driver.id) or Scorecard(driver=driver, organisation_id=organisation_id, updated_at=now)
        for driver in drivers.order_by("name", "id")
    ]


def history_of(driver_ids, today: date) -> dict:
    """Each driver's daily snapshots before today (HISTORY_DAYS of them), in one query: the
    points the charts draw, by driver id."""
    since = today - timedelta(days=HISTORY_DAYS)
    points: dict = {driver_id: [] for driver_id in driver_ids}
    snapshots = ScorecardSnapshot.objects.filter(
        driver_id__in=list(driver_ids), day__gte=since, day__lt=today
    )
    for snap in snapshots.order_by("driver_id", "day"):
        month = snap.metrics.get("30d", {})
        points[snap.driver_id].append(
            {
                "day": snap.day.isoformat(),
                "performance_score": snap.performance_score,
                "on_time_rate": month.get("on_time_rate"),
                "acceptance_rate": month.get("acceptance_rate"),
                "rating_mean": month.get("rating_mean"),
            }
        )
    return points


def scorecard_view(
    card: Scorecard,
    *,
    with_history: bool = True,
    history: list | None = None,
    options: ScorecardSettings | None = None,
    now: datetime | None = None,
) -> dict:
    """A scorecard as the API, the CSV and the pages show it: each window's figures (windows
    moved on to today on read), the last N orders, the score with its parts, and the trend
    (`history`: the snapshots, read here unless given, then today's figures)."""
    now = now or timezone.now()
    today = utc_day(now)
    driver = card.driver
    stored = not card._state.adding
    sums, starts = advanced_windows(card, today) if stored and card.window_starts else ({}, {})
    windows = {
        window: {
            "from": starts.get(window, window_start(window, today).isoformat()),
            **scoring.figures(sums.get(window, {})),
        }
        for window in WINDOWS
    }
    view = {
        "driver": {"id": str(driver.id), "name": driver.name, "status": driver.status},
        "performance_score": card.performance_score,
        "score": card.score_inputs or {"score": card.performance_score, "components": {}},
        "windows": windows,
        "last_n": card.last_n
        or {"n": (options or settings_for(card.organisation_id)).last_n_orders, "orders": 0},
        "updated_at": card.updated_at.isoformat() if stored else None,
    }
    if with_history:
        today_point = {
            "day": today.isoformat(),
            "performance_score": card.performance_score,
            "on_time_rate": windows["30d"]["on_time_rate"],
            "acceptance_rate": windows["30d"]["acceptance_rate"],
            "rating_mean": windows["30d"]["rating_mean"],
        }
        if history is None:
            history = history_of([driver.id], today)[driver.id]
        view["history"] = [*history, today_point]
    return view


def outcome_view(outcome: DeliveryOutcome) -> dict:
    return {
        "id": outcome.id,
        "order_id": str(outcome.order_id),
        "outcome": outcome.outcome,
        "finished_at": outcome.finished_at.isoformat(),
        "promised_by": outcome.promised_by.isoformat(),
        "late_seconds": outcome.late_seconds,
        "excused_cause": outcome.excused_cause or None,
        "excused_because": outcome.get_excused_cause_display() if outcome.excused_cause else None,
        "excuse_inputs": outcome.excuse_inputs,
    }


CSV_COLUMNS = (
    "driver_id",
    "driver_name",
    "status",
    "performance_score",
    *(
        f"{window}_{name}"
        for window in WINDOWS
        for name in (
            "acceptance_rate",
            "offers_answered",
            "on_time_rate",
            "deliveries",
            "late",
            "late_excused",
            "failed",
            "cancellations",
            "rating_mean",
            "rating_count",
            "pickup_service_mean_s",
            "dropoff_service_mean_s",
        )
    ),
    "last_n_orders",
    "last_n_on_time_rate",
    "last_n_late_excused",
)


def csv_row(view: dict) -> list:
    row = [view["driver"]["id"], view["driver"]["name"], view["driver"]["status"], view["performance_score"]]
    for window in WINDOWS:
        figures = view["windows"][window]
        for column in CSV_COLUMNS:
            if column.startswith(f"{window}_"):
                row.append(figures[column.removeprefix(f"{window}_")])
    last_n = view["last_n"]
    row += [last_n.get("orders", 0), last_n.get("on_time_rate"), last_n.get("late_excused", 0)]
    return row
