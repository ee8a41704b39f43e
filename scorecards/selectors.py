"""Reads of scorecards and the facts under them, newest first, each on an index that starts
with the driver (so "the last n" reads n rows)."""

from django.db.models import QuerySet

from scorecards.models import DeliveryOutcome, OfferAnswer, Rating


def recent_outcomes(driver, n: int) -> list[DeliveryOutcome]:
    """The driver's last n delivery outcomes (on time, late with or without an excuse, failed)."""
    return list(DeliveryOutcome.objects.filter(driver=driver).order_by("-finished_at", "-id")[:n])


def recent_offer_answers(driver, n: int) -> list[OfferAnswer]:
    """The driver's last n answers to offers (accepted, declined, expired)."""
    return list(OfferAnswer.objects.filter(driver=driver).order_by("-answered_at", "-id")[:n])


def recent_ratings(driver, n: int) -> list[Rating]:
    """The driver's last n ratings from recipients."""
    return list(Rating.objects.filter(driver=driver).order_by("-rated_at", "-id")[:n])


def outcomes_of(driver) -> QuerySet[DeliveryOutcome]:
    return DeliveryOutcome.objects.filter(driver=driver).order_by("-finished_at", "-id")
