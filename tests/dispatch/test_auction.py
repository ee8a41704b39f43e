"""Auction: an order nobody takes earns an incentive that steps up to a cap (the organisation's
`auction` rules, checked like every rule), stored on the offer with a plain line saying why."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from dispatch.engine.auction import incentive_minor
from dispatch.engine.rules import Auction, RulesError, parse_rules
from dispatch.models import Offer, OfferStatus
from dispatch.services.dispatch_settings import update_dispatch_settings
from dispatch.services.offers import decline_offer, expire_due_offers, make_offer
from dispatch.services.rounds import run_round
from tests.dispatch.test_rounds import LAT, SYSTEM, driver_at, new_order

AUCTION = Auction(after_declines=2, step_minor=100, cap_minor=250, when_minutes_to_pickup_end=10)
FAR = 3600.0  # an hour to the pickup window's end: no time trigger


@pytest.mark.parametrize(
    ("declined", "expired", "expected"),
    [
        (0, 0, (0, "")),
        (1, 0, (0, "")),
        (2, 0, (100, "declined 2 times")),
        (2, 1, (200, "declined 2 times, expired 1 time")),
        (0, 2, (100, "expired 2 times")),
        (9, 0, (250, "declined 9 times")),  # the cap
    ],
)
def test_the_incentive_steps_up_per_miss_from_the_threshold_to_the_cap(declined, expired, expected):
    assert incentive_minor(AUCTION, declined=declined, expired=expired, seconds_to_pickup_end=FAR) == expected


def test_close_to_the_pickup_window_end_adds_a_step():
    assert incentive_minor(AUCTION, declined=0, expired=0, seconds_to_pickup_end=8 * 60 + 5) == (
        100,
        "pickup window ends in 8 min",
    )
    assert incentive_minor(AUCTION, declined=2, expired=0, seconds_to_pickup_end=60)[0] == 200
    off = Auction(after_declines=1, step_minor=100, cap_minor=100)  # no time trigger
    assert incentive_minor(off, declined=0, expired=0, seconds_to_pickup_end=0) == (0, "")
    assert incentive_minor(None, declined=5, expired=5, seconds_to_pickup_end=0) == (0, "")


def test_auction_rules_parse_and_bad_ones_name_the_path():
    rules = parse_rules({"auction": {"after_declines": 3, "step_minor": 50, "cap_minor": 200}})
    assert rules.auction == Auction(
        after_declines=3, step_minor=50, cap_minor=200, when_minutes_to_pickup_end=0
    )
    assert parse_rules({}).auction is None
    good = {"after_declines": 1, "when_minutes_to_pickup_end": 5, "step_minor": 100, "cap_minor": 300}
    for change, path in [
        ({"after_declines": 0}, "auction.after_declines"),
        ({"after_declines": True}, "auction.after_declines"),
        ({"when_minutes_to_pickup_end": -1}, "auction.when_minutes_to_pickup_end"),
        ({"step_minor": 0}, "auction.step_minor"),
        ({"step_minor": 1.5}, "auction.step_minor"),
        ({"cap_minor": 99}, "auction.cap_minor"),
        ({"currency": "EUR"}, "auction.currency"),
    ]:
        with pytest.raises(RulesError) as bad:
            parse_rules({"auction": {**good, **change}})
        assert bad.value.path == path, change
    with pytest.raises(RulesError) as missing:
        parse_rules({"auction": {"after_declines": 1, "cap_minor": 300}})
    assert missing.value.path == "auction.step_minor"
    with pytest.raises(RulesError) as not_object:
        parse_rules({"auction": 5})
    assert not_object.value.path == "auction"


def test_the_settings_service_refuses_bad_auction_rules_naming_the_path(org):
    with pytest.raises(ValidationError) as bad:
        update_dispatch_settings(
            organisation=org,
            rules={"auction": {"after_declines": 1, "step_minor": 100, "cap_minor": 50}},
            actor=SYSTEM,
        )
    assert bad.value.message_dict["rules"][0].startswith("auction.cap_minor: must be at least step_minor")


def miss(org, driver, order, how):
    offer = make_offer(
        organisation=org,
        driver=driver,
        orders=[order],
        expires_at=timezone.now() + timedelta(minutes=1),
        actor=SYSTEM,
    )
    if how == "decline":
        decline_offer(offer_id=offer.id, driver=driver, actor=SYSTEM, reason="No.")
    else:
        expire_due_offers(timezone.now() + timedelta(minutes=2))


def test_a_round_offers_an_order_declined_often_with_its_incentive_and_says_why(org):
    update_dispatch_settings(
        organisation=org,
        rules={"auction": {"after_declines": 2, "step_minor": 100, "cap_minor": 500}},
        actor=SYSTEM,
    )
    order = new_order(org, "HARD")
    easy = new_order(org, "EASY", lat=LAT + 0.03)
    for n in (1, 2, 3):
        miss(org, driver_at(org, n), order, "decline" if n < 3 else "expire")
    fresh, other = driver_at(org, 4), driver_at(org, 5, lat=LAT + 0.03)
    report = run_round(organisation=org)
    assert sorted(made.orders[0] for made in report.offers) == ["EASY", "HARD"]
    offer = Offer.objects.get(orders=order, status=OfferStatus.PENDING)
    assert offer.driver_id == fresh.id and (offer.incentive_minor, offer.attempt) == (200, 4)
    assert offer.explanation[-1] == "Incentive 2.00 EUR: declined 2 times, expired 1 time"
    plain = Offer.objects.get(orders=easy, status=OfferStatus.PENDING)
    assert plain.driver_id == other.id and (plain.incentive_minor, plain.attempt) == (0, 1)
    assert not any(line.startswith("Incentive") for line in plain.explanation)
