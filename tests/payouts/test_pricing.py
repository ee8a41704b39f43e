"""The pure earnings arithmetic (payouts/pricing.py): no database."""

import pytest

from payouts import pricing

TARIFF = pricing.Tariff(
    base_minor=250,
    per_km_minor=60,
    waiting_threshold_s=300,
    waiting_per_minute_minor=20,
    surge=tuple(pricing.parse_surge([{"days": [4, 5], "start": "17:00", "end": "21:00", "percent": 20}])),
)


def facts(**overrides):
    base = {
        "distance_m": 3_250,
        "distance_source": "street distance",
        "local_weekday": 0,
        "local_minute_of_day": 600,
    }
    return pricing.DeliveryFacts(**{**base, **overrides})


def test_base_plus_distance_waiting_incentives_and_tip():
    breakdown = pricing.delivery_earning(
        TARIFF,
        facts(waiting_s=11 * 60 + 30, auction_minor=200, repositioning_minor=150, tip_minor=300),
        currency="EUR",
    )
    amounts = {line.code: line.amount_minor for line in breakdown.lines}
    # 3.25 km x 0.60 = 1.95; waited 11.5 min, 6.5 past 5 at 0.20 = 1.30
    assert amounts == {
        "base": 250,
        "distance": 195,
        "waiting": 130,
        "auction": 200,
        "repositioning": 150,
        "tip": 300,
    }
    assert breakdown.total_minor == 1225
    texts = [line.text for line in breakdown.lines]
    assert "3.25 km (street distance) at 0.60 EUR/km" in texts
    assert "Tip 3.00 EUR, all yours" in texts
    assert breakdown.as_dict()["total_minor"] == 1225


def test_surge_applies_in_its_window_only_on_base_distance_and_waiting():
    friday_evening = pricing.delivery_earning(
        TARIFF, facts(local_weekday=4, local_minute_of_day=18 * 60, tip_minor=100), currency="EUR"
    )
    assert friday_evening.amount("surge") == 89  # 20 % of 2.50 + 1.95, half up
    assert friday_evening.amount("tip") == 100
    at_nine = pricing.delivery_earning(
        TARIFF, facts(local_weekday=4, local_minute_of_day=21 * 60), currency="EUR"
    )
    assert at_nine.amount("surge") == 0  # the window is half-open


def test_waiting_under_the_threshold_earns_nothing_and_rounding_is_half_up():
    breakdown = pricing.delivery_earning(TARIFF, facts(distance_m=1_008, waiting_s=299), currency="EUR")
    assert breakdown.amount("waiting") == 0
    assert breakdown.amount("distance") == 60  # 60.48 -> 60
    assert pricing.delivery_earning(TARIFF, facts(distance_m=1_009), currency="EUR").amount("distance") == 61


@pytest.mark.parametrize(
    "field, value",
    [("tip_minor", -1), ("distance_m", 1.5), ("auction_minor", "100"), ("waiting_s", True)],
)
def test_bad_amounts_are_refused_by_name(field, value):
    with pytest.raises(ValueError, match=field):
        pricing.delivery_earning(TARIFF, facts(**{field: value}), currency="EUR")


@pytest.mark.parametrize(
    "windows, path",
    [
        ({}, "surge"),
        ([{"days": [7], "start": "10:00", "end": "11:00", "percent": 10}], "surge[0].days"),
        ([{"days": [1], "start": "25:00", "end": "26:00", "percent": 10}], "surge[0].start"),
        ([{"days": [1], "start": "10:00", "end": "09:00", "percent": 10}], "surge[0].end"),
        ([{"days": [1], "start": "10:00", "end": "11:00", "percent": 0}], "surge[0].percent"),
        ([{"days": [1], "start": "10:00", "end": "11:00"}], "surge[0]"),
    ],
)
def test_surge_errors_name_the_path(windows, path):
    with pytest.raises(ValueError) as caught:
        pricing.parse_surge(windows)
    assert str(caught.value).startswith(f"{path}:")


def test_client_charge_passes_the_tip_through():
    charge = pricing.client_charge(
        base_minor=590, per_km_minor=90, distance_m=2_000, tip_minor=200, currency="EUR"
    )
    assert [(line.code, line.amount_minor) for line in charge.lines] == [
        ("base", 590),
        ("distance", 180),
        ("tip", 200),
    ]


def test_guarantee_tops_up_to_the_hourly_minimum_without_tips():
    topup, text = pricing.guarantee_topup(
        hourly_minor=1200, online_s=2 * 3600 + 1800, earned_minor=2000, currency="EUR"
    )
    assert topup == 1000
    assert "Online 2.50 h x 12.00 EUR/h = 30.00 EUR guaranteed" in text and "topped up by 10.00 EUR" in text
    assert (
        pricing.guarantee_topup(hourly_minor=1200, online_s=3600, earned_minor=5000, currency="EUR")[0] == 0
    )


def test_online_seconds_count_overlaps_once_and_clip_to_the_period():
    sessions = [(0, 100), (50, 150), (400, 1000), (-50, 10)]
    assert pricing.online_seconds(sessions, start=0, end=500) == 250


def test_instant_fee_is_a_share_with_a_minimum():
    assert pricing.instant_fee_minor(10_000, basis_points=150, minimum_minor=50) == 150
    assert pricing.instant_fee_minor(1_000, basis_points=150, minimum_minor=50) == 50


def test_money_reads_in_the_currency():
    assert pricing.money(12345, "EUR") == "123.45 EUR"
    assert pricing.money(-5, "EUR") == "-0.05 EUR"
    assert pricing.money(500, "JPY") == "500 JPY"


def test_path_length_of_a_track():
    assert pricing.path_length_m([(60.0, 25.0), (60.0, 25.0), (60.009, 25.0)]) == pytest.approx(1001, abs=2)
