"""Reads of discipline: what a rule counts for a driver (from scorecards), the review queue,
and the rules' decisions about a driver."""

from django.db.models import Prefetch, QuerySet

from discipline import engine
from discipline.models import DisciplineDecision, DisciplineReview
from fleet.models import Driver
from scorecards import selectors as scorecards

# Excused outcomes a rule looks past at most, beyond the items it counts (they are left out,
# so a long run of them must not make a rule read a driver's whole history).
EXCUSED_LOOKBACK = 50


def items_for(driver: Driver, rule: engine.Rule) -> list[engine.Item]:
    """The driver's newest items that the rule reads (newest first, from scorecards)."""
    need = int(rule.over_last or rule.threshold)
    if rule.metric in engine.OUTCOME_METRICS:
        return [
            engine.Outcome(
                id=str(row["id"]),
                label=row["order_ref"],
                outcome=row["outcome"],
                at=row["finished_at"],
                late_seconds=row["late_seconds"],
                excused_cause=row["excused_cause"],
            )
            for row in scorecards.recent_outcome_rows(driver, need + EXCUSED_LOOKBACK)
        ]
    if rule.metric == "acceptance_rate":
        return [
            engine.OfferAnswer(
                id=str(row.id),
                label=f"offer of {row.answered_at:%Y-%m-%d %H:%M} UTC",
                answer=row.answer,
                at=row.answered_at,
            )
            for row in scorecards.recent_offer_answers(driver, need)
        ]
    return [
        engine.Rating(id=str(row.id), label=row.order_ref, stars=row.stars, at=row.rated_at)
        for row in scorecards.recent_ratings(driver, need)
    ]


def review_queue(organisation) -> QuerySet[DisciplineReview]:
    """The organisation's reviews, each with its decision and driver."""
    return DisciplineReview.objects.filter(organisation=organisation).select_related(
        "decision", "decision__driver", "decision__rule_set", "resolved_by"
    )


def decisions_of(driver: Driver) -> QuerySet[DisciplineDecision]:
    """The rules' decisions about the driver, newest first, with their record rows and reviews."""
    return (
        DisciplineDecision.objects.filter(driver=driver)
        .select_related("rule_set", "status_change")
        .prefetch_related(Prefetch("reviews", queryset=DisciplineReview.objects.order_by("created_at")))
        .order_by("-created_at", "-id")
    )
