"""Celery tasks of dispatch."""

from celery import shared_task
from django.core.cache import cache

from dispatch.services import repositioning, rounds
from dispatch.services.offers import expire_due_offers as expire_offers
from identity.models import Organisation


@shared_task(name="dispatch.expire_due_offers", ignore_result=True)
def expire_due_offers() -> int:
    """Offers past their expiry lapse and their orders go back to the pool (every few seconds)."""
    return expire_offers()


@shared_task(name="dispatch.run_dispatch_rounds", ignore_result=True)
def run_dispatch_rounds() -> int:
    """Beat task: a round for every organisation with open orders and online drivers."""
    return len(rounds.run_rounds(rounds.organisations_with_work()))


@shared_task(name="dispatch.run_requested_dispatch_rounds", ignore_result=True)
def run_requested_dispatch_rounds() -> int:
    """In-process: the rounds events asked for since the last pass (none with Celery, where
    each is its own dispatch.run_dispatch_round task)."""
    wanted = rounds.take_requested()
    if not wanted:
        return 0
    return len(rounds.run_rounds(Organisation.objects.filter(id__in=wanted).order_by("slug")))


@shared_task(name="dispatch.run_dispatch_round", ignore_result=True)
def run_dispatch_round(organisation_id: str) -> int:
    """One organisation's round, queued by an event (rounds.request_round)."""
    cache.delete(rounds.queued_key(organisation_id))  # events from now on queue another
    organisation = Organisation.objects.filter(id=organisation_id).first()
    if organisation is None:
        return 0
    return len(rounds.run_round(organisation=organisation).offers)


@shared_task(name="dispatch.suggest_repositioning", ignore_result=True)
def suggest_repositioning() -> int:
    """Beat task: lapse due reposition suggestions, then suggest moves to idle drivers in every
    organisation that turned repositioning on."""
    return sum(len(r.suggestions) for r in repositioning.suggest_for_all())
