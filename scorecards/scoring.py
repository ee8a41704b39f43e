"""A scorecard's figures and the performance score, from its sums (pure: no Django).

The performance score is a weighted mean of four rates, each in [0, 1] and each shrunk toward
the neutral 1.0 by how little evidence it rests on (a Bayesian mean with a prior worth
`prior_strength` observations):

    shrunk_m = (n_m * rate_m + k * 1.0) / (n_m + k)
    score    = sum(w_m * shrunk_m) / sum(w_m)

  acceptance  accepted / (accepted + declined + expired)          n = offers answered
  on_time     on time / (on time + late not excused)              n = deliveries judged
  rating      (mean stars - 1) / 4                                n = ratings
  completion  delivered / (delivered + failed + cancellations)    n = those attempts

A driver with no history scores exactly 1.0 (what matching assumed before scorecards), and
each rate moves the score only as its evidence grows. Matching treats 1.0 as fully reliable
and penalises a lower score on high-value orders (dispatch.engine.assignment).
"""

from dataclasses import dataclass

METRICS = ("acceptance", "on_time", "rating", "completion")
NEUTRAL = 1.0
WEIGHT_MAX = 100.0


def outcome_deltas(outcome: str, excused: bool) -> dict:
    """What one delivery outcome ("ON_TIME", "LATE", "FAILED") adds to a scorecard's sums."""
    if outcome == "ON_TIME":
        return {"deliveries_on_time": 1}
    if outcome == "FAILED":
        return {"deliveries_failed": 1}
    return {"deliveries_late": 1, "deliveries_late_excused": 1 if excused else 0}


def ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def figures(sums: dict) -> dict:
    """What a scorecard shows for one window's sums (None where there is nothing to measure)."""
    get = lambda name: sums.get(name, 0)  # noqa: E731
    answered = get("offers_accepted") + get("offers_declined") + get("offers_expired")
    judged = get("deliveries_on_time") + get("deliveries_late") - get("deliveries_late_excused")
    delivered = get("deliveries_on_time") + get("deliveries_late")
    rating_mean = ratio(get("rating_sum"), get("rating_count"))
    return {
        "offers_answered": answered,
        "offers_accepted": get("offers_accepted"),
        "offers_declined": get("offers_declined"),
        "offers_expired": get("offers_expired"),
        "acceptance_rate": ratio(get("offers_accepted"), answered),
        "deliveries": delivered,
        "on_time": get("deliveries_on_time"),
        "late": get("deliveries_late") - get("deliveries_late_excused"),
        "late_excused": get("deliveries_late_excused"),
        "on_time_rate": ratio(get("deliveries_on_time"), judged),
        "failed": get("deliveries_failed"),
        "cancellations": get("cancellations"),
        "rating_mean": round(rating_mean, 3) if rating_mean is not None else None,
        "rating_count": get("rating_count"),
        "pickup_service_mean_s": _mean_s(get("pickup_service_s"), get("pickup_visits")),
        "pickup_visits": get("pickup_visits"),
        "dropoff_service_mean_s": _mean_s(get("dropoff_service_s"), get("dropoff_visits")),
        "dropoff_visits": get("dropoff_visits"),
    }


def _mean_s(total: float, count: int) -> float | None:
    return round(total / count, 1) if count else None


@dataclass(frozen=True)
class Score:
    value: float
    components: dict  # metric -> {"rate", "n", "shrunk", "weight"}

    def as_dict(self) -> dict:
        return {"score": self.value, "components": self.components}


def performance_score(sums: dict, *, weights: dict, prior_strength: float) -> Score:
    """The composite above from one window's sums."""
    shown = figures(sums)
    evidence = {
        "acceptance": (shown["acceptance_rate"], shown["offers_answered"]),
        "on_time": (shown["on_time_rate"], shown["on_time"] + shown["late"]),
        "rating": (
            (shown["rating_mean"] - 1) / 4 if shown["rating_mean"] is not None else None,
            shown["rating_count"],
        ),
        "completion": _completion(shown),
    }
    components, total, weight_sum = {}, 0.0, 0.0
    for metric in METRICS:
        rate, n = evidence[metric]
        weight = float(weights.get(metric, 0.0))
        shrunk = (
            (n * rate + prior_strength * NEUTRAL) / (n + prior_strength)
            if n and rate is not None
            else NEUTRAL
        )
        components[metric] = {"rate": rate, "n": n, "shrunk": round(shrunk, 4), "weight": weight}
        total += weight * shrunk
        weight_sum += weight
    value = min(1.0, max(0.0, total / weight_sum)) if weight_sum else NEUTRAL
    return Score(round(value, 4), components)


def _completion(shown: dict) -> tuple[float | None, int]:
    attempts = shown["deliveries"] + shown["failed"] + shown["cancellations"]
    return ratio(shown["deliveries"], attempts), attempts


def check_weights(weights: object) -> dict[str, str]:
    """Problems with a weights mapping, by the field to name ("weights.<metric>")."""
    if not isinstance(weights, dict):
        return {"weights": "Must be an object of metric: weight."}
    errors = {}
    for name, value in weights.items():
        if name not in METRICS:
            errors[f"weights.{name}"] = f"Unknown metric; use one of {', '.join(METRICS)}."
        elif isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= WEIGHT_MAX:
            errors[f"weights.{name}"] = f"Must be a number from 0 to {WEIGHT_MAX:g}."
    if not errors and not any(float(value) > 0 for value in weights.values()):
        errors["weights"] = "At least one weight must be above 0."
    return errors
