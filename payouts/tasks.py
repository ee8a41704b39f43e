"""Celery tasks of settlement: thin wrappers around its services."""

from celery import shared_task

from payouts.services.payouts import run_due_cycles, send_pending_payouts


@shared_task(name="payouts.run_daily_payouts", ignore_result=True)
def run_daily_payouts() -> int:
    """Beat task: close yesterday's payout cycle of each organisation (once; the cycle is unique)."""
    return run_due_cycles()


@shared_task(name="payouts.send_pending_payouts", ignore_result=True)
def resend_pending_payouts() -> int:
    """Beat task: send again the payouts the provider has not answered (same idempotency keys)."""
    return send_pending_payouts()
