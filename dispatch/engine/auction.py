"""Incentives for work nobody takes (the organisation's `auction` rules): pure arithmetic on an
order's history, so a round, a test and a dispatcher reading the offer agree on the amount."""

from dispatch.engine.rules import Auction


def incentive_minor(
    auction: Auction | None, *, declined: int, expired: int, seconds_to_pickup_end: float
) -> tuple[int, str]:
    """The incentive for one order, in minor units, and why in words ("" when none)."""
    if auction is None:
        return 0, ""
    misses = declined + expired
    steps = misses - auction.after_declines + 1 if misses >= auction.after_declines else 0
    why = []
    if steps:
        why.append(
            ", ".join(_times(word, n) for word, n in (("declined", declined), ("expired", expired)) if n)
        )
    minutes = auction.when_minutes_to_pickup_end
    if minutes and seconds_to_pickup_end <= minutes * 60:
        steps += 1
        why.append(f"pickup window ends in {max(0, int(seconds_to_pickup_end // 60))} min")
    amount = min(steps * auction.step_minor, auction.cap_minor)
    return amount, "; ".join(why) if amount else ""


def _times(word: str, n: int) -> str:
    return f"{word} {n} time{'s' if n != 1 else ''}"
