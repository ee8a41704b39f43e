"""Stripe's webhook events, each handled once: payouts paid or failed (a failure is reversed
in the ledger), transfers reversed, connected accounts enabled for payouts."""

from django.db import IntegrityError, transaction

from core.actors import Actor
from payouts.models import Payout, PayoutAccount, PayoutStatus, StripeEvent
from payouts.providers import SendResult
from payouts.services.payouts import record_payout_result


class Replayed(Exception):
    """An event id handled before: refused, nothing is applied twice."""


@transaction.atomic
def handle_stripe_event(*, event: dict) -> str:
    """Apply a verified event; what was done, in words."""
    try:
        with transaction.atomic():
            StripeEvent.objects.create(event_id=event["id"], event_type=event["type"])
    except IntegrityError:
        raise Replayed(f"Event {event['id']} was already received.") from None
    actor = Actor.system("stripe-webhook")
    obj = event["data"]["object"]
    kind = event["type"]
    if kind in ("payout.paid", "payout.failed"):
        payout = Payout.objects.filter(provider="stripe", provider_payout_ref=obj["id"]).first()
        if payout is None:
            return "ignored: not one of our instant payouts"
        status = PayoutStatus.PAID if kind == "payout.paid" else PayoutStatus.FAILED
        reason = obj.get("failure_message") or obj.get("failure_code") or ""
        record_payout_result(
            payout_id=payout.id, result=SendResult(status=status, failure_reason=reason), actor=actor
        )
        return f"payout {payout.id} {status}"
    if kind == "transfer.reversed":
        payout = Payout.objects.filter(provider="stripe", provider_ref=obj["id"]).first()
        if payout is None:
            return "ignored: not one of our transfers"
        result = SendResult(status=PayoutStatus.FAILED, failure_reason="The transfer was reversed by Stripe.")
        record_payout_result(payout_id=payout.id, result=result, actor=actor)
        return f"payout {payout.id} FAILED"
    if kind == "account.updated":
        updated = PayoutAccount.objects.filter(provider="stripe", external_id=obj["id"]).update(
            payouts_enabled=bool(obj.get("payouts_enabled"))
        )
        return f"account updated ({updated})"
    return f"ignored: {kind}"
