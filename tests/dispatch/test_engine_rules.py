"""Dispatch rules: declarative, validated, and errors that name the path."""

import pytest

from dispatch.engine.rules import Rules, RulesError, parse_rules


def test_empty_or_none_gives_the_defaults():
    assert parse_rules({}) == Rules() == parse_rules(None)


def test_a_full_document_parses():
    rules = parse_rules(
        {
            "weights": {"delivery_delay": 1, "delay_to_others": 0.5, "added_route": 0.2},
            "lateness": {"mode": "forbid", "penalty_per_s": 3},
            "unassigned_penalty_s": 3600,
            "priority_bonus_s": 120,
            "owned_fleet_first": {"enabled": True, "bonus_s": 300},
            "max_pickup_distance_m": 4000,
            "high_value": {"threshold_minor": 10_000, "score_weight_s": 600, "min_score": 0.7},
            "zones": {"mode": "hard"},
            "excluded_drivers": [{"client": "acme", "driver": "d-17"}, {"client": 3, "driver": 9}],
            "batching": {
                "enabled": True,
                "max_batch_size": 2,
                "bundle_same_pickup": False,
                "bundle_ready_window_s": 0,
            },
            "k_nearest": 8,
        }
    )
    assert rules.lateness.mode == "forbid"
    assert rules.owned_fleet_first.enabled
    assert rules.high_value.min_score == 0.7
    assert rules.zones.mode == "hard"
    assert rules.zones.bonus_s == 120  # default kept
    assert rules.excluded_drivers == frozenset({("acme", "d-17"), (3, 9)})
    assert rules.batching.max_batch_size == 2
    assert rules.k_nearest == 8


@pytest.mark.parametrize(
    ("doc", "path", "words"),
    [
        ({"colour": "red"}, "colour", "unknown key"),
        ({"zones": {"mod": "hard"}}, "zones.mod", "unknown key"),
        ({"zones": {"mode": "strict"}}, "zones.mode", "expected one of off, bonus, hard"),
        ({"zones": "hard"}, "zones", "expected an object"),
        ({"weights": {"delivery_delay": -1}}, "weights.delivery_delay", "at least 0"),
        ({"weights": {"added_route": "fast"}}, "weights.added_route", "expected a number"),
        ({"lateness": {"penalty_per_s": float("nan")}}, "lateness.penalty_per_s", "finite"),
        ({"owned_fleet_first": {"enabled": "yes"}}, "owned_fleet_first.enabled", "true or false"),
        ({"high_value": {"min_score": 1.5}}, "high_value.min_score", "at most 1"),
        ({"high_value": {"threshold_minor": 10.5}}, "high_value.threshold_minor", "integer"),
        ({"max_pickup_distance_m": True}, "max_pickup_distance_m", "expected a number"),
        ({"excluded_drivers": {"client": "a"}}, "excluded_drivers", "list"),
        (
            {"excluded_drivers": [{"client": "a", "driver": "b"}, {"client": "a"}]},
            "excluded_drivers[1].driver",
            "required",
        ),
        ({"excluded_drivers": [{"client": "", "driver": "b"}]}, "excluded_drivers[0].client", "non-empty"),
        (
            {"excluded_drivers": [{"client": "a", "driver": "b", "why": "x"}]},
            "excluded_drivers[0].why",
            "unknown",
        ),
        ({"batching": {"max_batch_size": 0}}, "batching.max_batch_size", "at least 1"),
        ({"k_nearest": 0}, "k_nearest", "at least 1"),
        ({"unassigned_penalty_s": 0}, "unassigned_penalty_s", "at least 1"),
    ],
)
def test_errors_name_the_path(doc, path, words):
    with pytest.raises(RulesError) as caught:
        parse_rules(doc)
    assert caught.value.path == path
    assert str(caught.value).startswith(path + ": ")
    assert words in str(caught.value)


def test_not_an_object_at_all():
    with pytest.raises(RulesError, match="expected an object"):
        parse_rules(["zones"])
