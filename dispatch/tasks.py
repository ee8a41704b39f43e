"""Celery tasks of dispatch."""

import logging

from celery import shared_task
from django.conf import settings
from django.core.cache import cache

from core.actors import Actor
from dispatch.services import repositioning, rounds, traffic
from dispatch.services.offers import expire_due_offers as expire_offers
from dispatch.services.routes import resequence_organisation
from dispatch.services.sla import watch_slas as watch
from identity.models import Organisation

logger = logging.getLogger(__name__)


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


@shared_task(name="dispatch.watch_slas", ignore_result=True)
def watch_slas() -> int:
    """Beat task: retime every active route from live positions, re-sequence those that drifted,
    raise and clear at-risk alerts (dispatch.services.sla). Returns how many routes it saw."""
    return watch().routes


@shared_task(name="dispatch.resequence_routes", ignore_result=True)
def resequence_routes(organisation_id: str) -> int:
    """Re-sequence every active route of the organisation (its travel times changed)."""
    return resequence_organisation(
        organisation_id=organisation_id, actor=Actor.system("traffic"), reason="the travel times changed"
    )


@shared_task(name="dispatch.suggest_repositioning", ignore_result=True)
def suggest_repositioning() -> int:
    """Beat task: lapse due reposition suggestions, then suggest moves to idle drivers in every
    organisation that turned repositioning on."""
    return sum(len(r.suggestions) for r in repositioning.suggest_for_all())


@shared_task(name="dispatch.learn_traffic", ignore_result=True)
def learn_traffic() -> int:
    """Beat task: learn cell speeds from each organisation's recent pings, and poll the traffic
    feed if one is configured (TRAFFIC_FEED_URL for the organisation TRAFFIC_FEED_ORG)."""
    learnt = sum(traffic.learn_cell_speeds(organisation=org) for org in Organisation.objects.order_by("slug"))
    if settings.TRAFFIC_FEED_URL and settings.TRAFFIC_FEED_ORG:
        organisation = Organisation.objects.get(slug=settings.TRAFFIC_FEED_ORG)
        try:
            traffic.poll_traffic_feed(organisation=organisation, url=settings.TRAFFIC_FEED_URL)
        except traffic.FeedError as exc:
            logger.warning("traffic feed not applied: %s", exc)
    return learnt
