"""What a delivery earns and costs: pure arithmetic on integer minor units, no Django.

Plain data in (a tariff and the facts of one delivery), a breakdown out: each line with its
amount and a sentence the driver can read. Rounding is half up, once per line.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

from dispatch.engine.geo import haversine_m

# ISO 4217 currencies without minor units (the rest here have two).
ZERO_DECIMAL_CURRENCIES = frozenset({"JPY", "KRW", "ISK", "CLP", "VND", "XAF", "XOF", "UGX", "PYG"})


def money(amount_minor: int, currency: str) -> str:
    """12345, "EUR" -> "123.45 EUR"."""
    if currency in ZERO_DECIMAL_CURRENCIES:
        return f"{amount_minor} {currency}"
    sign = "-" if amount_minor < 0 else ""
    whole, cents = divmod(abs(amount_minor), 100)
    return f"{sign}{whole}.{cents:02d} {currency}"


def _div_half_up(numerator: int, denominator: int) -> int:
    return (numerator + denominator // 2) // denominator


@dataclass(frozen=True)
class SurgeWindow:
    days: frozenset[int]  # 0 = Monday
    start_minute: int
    end_minute: int  # half-open [start, end) within the day
    percent: int


def parse_surge(windows: object) -> list[SurgeWindow]:
    """Surge windows from their stored form; an error names the path (`surge[0].start`)."""
    if not isinstance(windows, list):
        raise ValueError("surge: expected a list")
    parsed = []
    for index, window in enumerate(windows):
        where = f"surge[{index}]"
        if not isinstance(window, dict) or set(window) != {"days", "start", "end", "percent"}:
            raise ValueError(f"{where}: expected exactly days, start, end, percent")
        days = window["days"]
        if not isinstance(days, list) or not days or any(type(d) is not int or not 0 <= d <= 6 for d in days):
            raise ValueError(f"{where}.days: expected weekdays 0 (Monday) to 6")
        minutes = []
        for name in ("start", "end"):
            text = window[name]
            try:
                hours, mins = (int(part) for part in str(text).split(":"))
            except ValueError:
                raise ValueError(f"{where}.{name}: expected HH:MM") from None
            if not (0 <= hours <= 24 and 0 <= mins < 60) or hours * 60 + mins > 24 * 60:
                raise ValueError(f"{where}.{name}: expected HH:MM between 00:00 and 24:00")
            minutes.append(hours * 60 + mins)
        if minutes[1] <= minutes[0]:
            raise ValueError(f"{where}.end: must be after start")
        percent = window["percent"]
        if type(percent) is not int or not 0 < percent <= 300:
            raise ValueError(f"{where}.percent: expected a whole number from 1 to 300")
        parsed.append(SurgeWindow(frozenset(days), minutes[0], minutes[1], percent))
    return parsed


def surge_percent(windows: Iterable[SurgeWindow], *, weekday: int, minute_of_day: int) -> int:
    """The highest surge in force at that local weekday and minute (0 when none)."""
    return max(
        (w.percent for w in windows if weekday in w.days and w.start_minute <= minute_of_day < w.end_minute),
        default=0,
    )


@dataclass(frozen=True)
class Tariff:
    base_minor: int = 0
    per_km_minor: int = 0
    waiting_threshold_s: int = 300
    waiting_per_minute_minor: int = 0
    surge: tuple[SurgeWindow, ...] = ()


@dataclass(frozen=True)
class DeliveryFacts:
    distance_m: int
    distance_source: str  # how the distance was measured, said in the breakdown
    waiting_s: int = 0
    tip_minor: int = 0
    auction_minor: int = 0
    repositioning_minor: int = 0
    local_weekday: int = 0
    local_minute_of_day: int = 0


@dataclass(frozen=True)
class Line:
    code: str
    amount_minor: int
    text: str


@dataclass(frozen=True)
class Breakdown:
    currency: str
    lines: tuple[Line, ...] = field(default_factory=tuple)

    @property
    def total_minor(self) -> int:
        return sum(line.amount_minor for line in self.lines)

    def amount(self, code: str) -> int:
        return sum(line.amount_minor for line in self.lines if line.code == code)

    def as_dict(self) -> dict:
        return {
            "currency": self.currency,
            "total_minor": self.total_minor,
            "lines": [{"code": x.code, "amount_minor": x.amount_minor, "text": x.text} for x in self.lines],
        }


def _check_amounts(**amounts: int) -> None:
    for name, value in amounts.items():
        if type(value) is not int or value < 0:
            raise ValueError(f"{name}: expected a whole number of minor units, at least 0")


def delivery_earning(tariff: Tariff, facts: DeliveryFacts, *, currency: str) -> Breakdown:
    """Base + per km on the routed distance + waiting past the threshold, surged; then the
    incentives and the tip, which go to the driver whole."""
    _check_amounts(
        distance_m=facts.distance_m,
        waiting_s=facts.waiting_s,
        tip_minor=facts.tip_minor,
        auction_minor=facts.auction_minor,
        repositioning_minor=facts.repositioning_minor,
    )
    km = facts.distance_m / 1000
    lines = [
        Line("base", tariff.base_minor, f"Base fee {money(tariff.base_minor, currency)}"),
        Line(
            "distance",
            _div_half_up(tariff.per_km_minor * facts.distance_m, 1000),
            f"{km:.2f} km ({facts.distance_source}) at {money(tariff.per_km_minor, currency)}/km",
        ),
    ]
    billable_s = max(0, facts.waiting_s - tariff.waiting_threshold_s)
    if billable_s:
        lines.append(
            Line(
                "waiting",
                _div_half_up(tariff.waiting_per_minute_minor * billable_s, 60),
                f"Waited {facts.waiting_s // 60} min {facts.waiting_s % 60} s; "
                f"{billable_s // 60} min {billable_s % 60} s past the {tariff.waiting_threshold_s // 60} min "
                f"threshold at {money(tariff.waiting_per_minute_minor, currency)}/min",
            )
        )
    percent = surge_percent(
        tariff.surge, weekday=facts.local_weekday, minute_of_day=facts.local_minute_of_day
    )
    if percent:
        subtotal = sum(line.amount_minor for line in lines)
        lines.append(
            Line("surge", _div_half_up(subtotal * percent, 100), f"Surge +{percent}% at the time of delivery")
        )
    if facts.auction_minor:
        lines.append(
            Line(
                "auction",
                facts.auction_minor,
                f"Incentive {money(facts.auction_minor, currency)} on the offer you accepted",
            )
        )
    if facts.repositioning_minor:
        lines.append(
            Line(
                "repositioning",
                facts.repositioning_minor,
                f"Repositioning incentive {money(facts.repositioning_minor, currency)}",
            )
        )
    if facts.tip_minor:
        lines.append(Line("tip", facts.tip_minor, f"Tip {money(facts.tip_minor, currency)}, all yours"))
    return Breakdown(currency, tuple(line for line in lines if line.amount_minor or line.code == "base"))


def client_charge(
    *, base_minor: int, per_km_minor: int, distance_m: int, tip_minor: int, currency: str
) -> Breakdown:
    """A client's price for one delivery, and the tip passed through to the driver."""
    _check_amounts(distance_m=distance_m, tip_minor=tip_minor)
    lines = [
        Line("base", base_minor, f"Delivery {money(base_minor, currency)}"),
        Line(
            "distance",
            _div_half_up(per_km_minor * distance_m, 1000),
            f"{distance_m / 1000:.2f} km at {money(per_km_minor, currency)}/km",
        ),
    ]
    if tip_minor:
        lines.append(Line("tip", tip_minor, f"Tip passed to the driver {money(tip_minor, currency)}"))
    return Breakdown(currency, tuple(line for line in lines if line.amount_minor))


def guarantee_topup(*, hourly_minor: int, online_s: int, earned_minor: int, currency: str) -> tuple[int, str]:
    """The top-up that brings a period's earnings (tips left out) up to the guaranteed minimum
    for the hours online, and why."""
    _check_amounts(hourly_minor=hourly_minor, online_s=online_s, earned_minor=earned_minor)
    guaranteed = _div_half_up(hourly_minor * online_s, 3600)
    topup = max(0, guaranteed - earned_minor)
    hours = online_s / 3600
    text = (
        f"Online {hours:.2f} h x {money(hourly_minor, currency)}/h = {money(guaranteed, currency)} guaranteed; "
        f"earned {money(earned_minor, currency)} (tips not counted)"
    )
    return topup, text + (f"; topped up by {money(topup, currency)}" if topup else "; no top-up needed")


def instant_fee_minor(amount_minor: int, *, basis_points: int, minimum_minor: int) -> int:
    """The instant payout fee: a share of the amount, at least a minimum."""
    _check_amounts(amount_minor=amount_minor)
    return max(minimum_minor, _div_half_up(amount_minor * basis_points, 10_000))


def online_seconds(sessions: Iterable[tuple[float, float]], *, start: float, end: float) -> int:
    """Seconds of [start, end) covered by the (from, to) online sessions (overlaps once)."""
    spans = sorted((max(a, start), min(b, end)) for a, b in sessions if b > start and a < end)
    total, reach = 0.0, start
    for a, b in spans:
        a = max(a, reach)
        if b > a:
            total += b - a
            reach = b
    return int(total)


def path_length_m(points: Iterable[tuple[float, float]]) -> int:
    """Metres along consecutive (lat, lon) points (great circle between each)."""
    total, previous = 0.0, None
    for lat, lon in points:
        if previous is not None:
            total += haversine_m(previous[0], previous[1], lat, lon)
        previous = (lat, lon)
    return round(total)
