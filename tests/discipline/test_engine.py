"""The discipline rules engine (pure): checking a rules document path by path, weighing a
driver's newest items, leaving excused lateness out, and wording the decision."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from discipline import engine
from discipline.engine import OfferAnswer, Outcome, Rating, RulesError, evaluate, parse_rules, verdict

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def outcomes(*kinds: str) -> list[Outcome]:
    """Outcomes newest first from codes, oldest first: L late, O on time, F failed, E excused late."""
    items = []
    for n, kind in enumerate(kinds):
        outcome = {"L": "LATE", "O": "ON_TIME", "F": "FAILED", "E": "LATE"}[kind]
        items.append(
            Outcome(
                id=f"o{n}",
                label=f"ORD-{n}",
                outcome=outcome,
                at=T0 + timedelta(minutes=n),
                late_seconds=600 if outcome == "LATE" else 0,
                excused_cause="FOOD_NOT_READY" if kind == "E" else "",
            )
        )
    return list(reversed(items))


def rule(name="late_streak", **body):
    return parse_rules({name: body})[name]


STREAK = {"metric": "consecutive_late", "threshold": 3, "action": "SUSPEND"}


def test_the_defaults_parse_and_are_stored_with_every_default_written_out():
    stored = engine.normalised(engine.DEFAULT_RULES)
    assert stored["late_streak"] == {
        "metric": "consecutive_late",
        "threshold": 3,
        "action": "SUSPEND",
        "enabled": True,
        "warn_first": True,
        "suspension_hours": 24,
        "warning_valid_days": 30,
    }
    assert stored["low_acceptance"]["over_last"] == 20
    assert engine.normalised(stored) == stored


@pytest.mark.parametrize(
    ("body", "path", "words"),
    [
        ({"metric": "speed", "threshold": 3, "action": "WARN"}, "r.metric", "Unknown metric"),
        (
            {"metric": "acceptance_rate", "threshold": 120, "over_last": 10, "action": "WARN"},
            "r.threshold",
            "percentage",
        ),
        (
            {"metric": "on_time_rate", "threshold": 0, "over_last": 10, "action": "WARN"},
            "r.threshold",
            "more than 0",
        ),
        (
            {"metric": "acceptance_rate", "threshold": 50, "over_last": 0, "action": "WARN"},
            "r.over_last",
            "between 1",
        ),
        (
            {"metric": "mean_rating", "threshold": 6, "over_last": 5, "action": "WARN"},
            "r.threshold",
            "from 1 to 5",
        ),
        (
            {"metric": "mean_rating", "threshold": 0.5, "over_last": 5, "action": "WARN"},
            "r.threshold",
            "from 1 to 5",
        ),
        ({"metric": "mean_rating", "threshold": 3, "action": "WARN"}, "r.over_last", "Required"),
        ({"metric": "consecutive_late", "threshold": 0, "action": "SUSPEND"}, "r.threshold", "between 1"),
        (
            {"metric": "consecutive_late", "threshold": 2.5, "action": "SUSPEND"},
            "r.threshold",
            "whole number",
        ),
        ({"metric": "consecutive_late", "threshold": True, "action": "SUSPEND"}, "r.threshold", "number"),
        (
            {"metric": "consecutive_late", "threshold": 3, "over_last": 5, "action": "SUSPEND"},
            "r.over_last",
            "does not apply",
        ),
        ({"metric": "consecutive_late", "threshold": 3, "action": "BAN"}, "r.action", "Unknown action"),
        (
            {"metric": "consecutive_late", "threshold": 3, "action": "WARN", "warn_first": True},
            "r.warn_first",
            "SUSPEND",
        ),
        ({**STREAK, "suspension_hours": 0}, "r.suspension_hours", "between 1"),
        ({**STREAK, "warning_valid_days": 0}, "r.warning_valid_days", "between 1"),
        ({**STREAK, "action": "WARN", "warning_valid_days": 5}, "r.warning_valid_days", "SUSPEND"),
        ({**STREAK, "enabled": "yes"}, "r.enabled", "true or false"),
        ({**STREAK, "colour": "red"}, "r.colour", "Unknown field"),
        ({**STREAK, "threshold": None}, "r.threshold", "number"),
    ],
)
def test_an_impossible_rule_is_refused_naming_its_path(body, path, words):
    with pytest.raises(RulesError) as refused:
        parse_rules({"r": body})
    assert path in refused.value.errors, refused.value.errors
    assert words in refused.value.errors[path]


def test_a_bad_rule_name_or_document_is_named():
    with pytest.raises(RulesError) as refused:
        parse_rules({"Bad Name": STREAK})
    assert list(refused.value.errors) == ["Bad Name"]
    with pytest.raises(RulesError) as refused:
        parse_rules([STREAK])
    assert list(refused.value.errors) == [""]


def test_three_late_in_a_row_apply_and_the_finding_lists_them_newest_first():
    finding = evaluate(rule(**STREAK), outcomes("O", "L", "L", "L"))
    assert finding is not None and finding.value == 3
    assert [item.id for item in finding.counted] == ["o3", "o2", "o1"]
    assert finding.newest.id == "o3"


@pytest.mark.parametrize("history", ["LLOL", "LL", "LLFL", "OOO", ""])
def test_a_streak_broken_or_too_short_decides_nothing(history):
    assert evaluate(rule(**STREAK), outcomes(*history)) is None


def test_excused_lateness_neither_counts_nor_breaks_the_streak_and_is_listed_as_left_out():
    items = outcomes("L", "E", "L", "E")
    assert evaluate(rule(**STREAK), items) is None  # two of the driver's own: not three
    finding = evaluate(rule(**STREAK), outcomes("L", "E", "L", "E", "L"))
    assert [item.id for item in finding.counted] == ["o4", "o2", "o0"]
    assert [item.id for item in finding.left_out] == ["o3", "o1"]
    inputs = finding.as_inputs()
    assert [item["id"] for item in inputs["left_out"]] == ["o3", "o1"]
    assert "not ready at pickup" in inputs["left_out"][0]["why"]


def test_windows_need_enough_history_then_compare_with_the_threshold():
    low = rule("low", metric="acceptance_rate", threshold=50, over_last=4, action="WARN")
    answers = [
        OfferAnswer(id=f"a{n}", label=f"offer {n}", answer=answer, at=T0 + timedelta(minutes=n))
        for n, answer in enumerate(["ACCEPTED", "DECLINED", "EXPIRED", "DECLINED", "ACCEPTED"])
    ][::-1]
    assert evaluate(low, answers[:3]) is None  # three answers: too little to judge
    finding = evaluate(low, answers)
    assert finding.value == 25.0 and len(finding.counted) == 4
    assert evaluate(low, [OfferAnswer(id="x", label="x", answer="ACCEPTED", at=T0)] * 4) is None
    ratings = rule("r", metric="mean_rating", threshold=3.5, over_last=3, action="HUMAN_REVIEW")
    stars = [Rating(id=f"r{n}", label=f"ORD-{n}", stars=s, at=T0) for n, s in enumerate([2, 4, 3, 5])]
    assert evaluate(ratings, stars).value == 3.0
    assert evaluate(ratings, stars[1:]) is None  # 4, 3, 5: mean 4


def test_on_time_rate_leaves_excused_lateness_out_of_the_window():
    on_time = rule("on_time", metric="on_time_rate", threshold=60, over_last=3, action="WARN")
    finding = evaluate(on_time, outcomes("L", "O", "E", "L"))
    assert finding.value == pytest.approx(33.3)
    assert [item.id for item in finding.counted] == ["o3", "o1", "o0"]
    assert [item.id for item in finding.left_out] == ["o2"]


def test_on_time_rate_judges_only_deliveries_that_were_on_time_or_late_as_the_scorecard_does():
    on_time = rule("on_time", metric="on_time_rate", threshold=60, over_last=3, action="WARN")
    # Failed deliveries are neither: three on-time deliveries between them are 100 %.
    assert evaluate(on_time, outcomes("O", "F", "O", "F", "O", "F")) is None
    finding = evaluate(on_time, outcomes("O", "L", "F", "L"))
    assert [item.id for item in finding.counted] == ["o3", "o1", "o0"]


PREFIX_RULES = [
    rule(**STREAK),
    rule("on_time", metric="on_time_rate", threshold=60, over_last=3, action="WARN"),
    rule("low", metric="acceptance_rate", threshold=50, over_last=3, action="WARN"),
    rule("r", metric="mean_rating", threshold=3.5, over_last=3, action="HUMAN_REVIEW"),
]


def _items(metric: str, codes: str) -> list:
    """The rule's kind of items, newest first, from outcome codes (oldest first)."""
    items = outcomes(*codes)
    if metric in engine.OUTCOME_METRICS:
        return items
    if metric == "acceptance_rate":
        answers = {"LATE": "DECLINED", "ON_TIME": "ACCEPTED", "FAILED": "EXPIRED"}
        return [OfferAnswer(id=o.id, label="", answer=answers[o.outcome], at=o.at) for o in items]
    stars = {"LATE": 2, "ON_TIME": 5, "FAILED": 3}
    return [Rating(id=o.id, label="", stars=stars[o.outcome], at=o.at) for o in items]


@given(st.sampled_from(PREFIX_RULES), st.text(alphabet="LOFE", max_size=12), st.integers(0, 12))
def test_a_rule_that_applies_to_the_newest_items_applies_to_all_with_the_same_finding(rule_, codes, k):
    """What lets evaluate_driver read what an earlier decision counted only when a rule applies
    to a driver's newest items at all."""
    items = _items(rule_.metric, codes)
    newest = evaluate(rule_, items[:k])
    assert newest is None or evaluate(rule_, items) == newest


def test_a_switched_off_rule_decides_nothing():
    assert evaluate(rule(**STREAK, enabled=False), outcomes("L", "L", "L")) is None


def test_warn_first_warns_until_a_warning_stands_then_suspends():
    warn_first = rule(**STREAK, warn_first=True, suspension_hours=12)
    finding = evaluate(warn_first, outcomes("L", "L", "L"))
    first = verdict(finding, version=4, warned_recently=False)
    assert first.action == "WARN"
    assert "This is a warning" in first.explanation
    assert "within 30 days, you will be suspended for 12 hours" in first.explanation
    second = verdict(finding, version=4, warned_recently=True)
    assert second.action == "SUSPEND"
    assert second.explanation.startswith(
        "You are suspended for 12 hours because your last 3 deliveries were late"
    )


def test_the_explanation_names_what_was_counted_the_rule_its_version_and_what_was_left_out():
    finding = evaluate(rule(**STREAK), outcomes("L", "E", "L", "L"))
    text = verdict(finding, version=7, warned_recently=False).explanation
    assert (
        "order ORD-0 (10 minutes late); order ORD-2 (10 minutes late); order ORD-3 (10 minutes late)" in text
    )
    assert 'Rule "late_streak" (version 7)' in text
    assert (
        "1 late delivery was left out because the lateness was not yours: order ORD-1 (the order was not ready at pickup)"
        in text
    )
    assert "You can appeal" in text
    assert "Lateness the driver did not cause is left out" in engine.describe(finding.rule)


def test_a_human_review_says_nothing_changes_until_a_person_decides():
    ratings = rule("low_rating", metric="mean_rating", threshold=4, over_last=2, action="HUMAN_REVIEW")
    finding = evaluate(
        ratings, [Rating(id="r1", label="A", stars=2, at=T0), Rating(id="r2", label="B", stars=3, at=T0)]
    )
    text = verdict(finding, version=1, warned_recently=False).explanation
    assert "sent to a person for review" in text and "mean of your last 2 customer ratings is 2.5" in text
    assert "appeal" not in text and text.endswith("You will see the person's decision and their reason here.")
