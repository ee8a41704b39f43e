"""Payout providers behind one small interface: the ledger-only default (payouts are recorded
and paid by hand) and Stripe Connect. Chosen by settings.PAYOUT_PROVIDER."""

from dataclasses import dataclass
from typing import Protocol

from django.conf import settings


@dataclass(frozen=True)
class SendResult:
    status: str  # a payouts.models.PayoutStatus value; PENDING: not sent yet, try again later
    provider_ref: str = ""
    provider_payout_ref: str = ""
    failure_reason: str = ""
    # The instant payout was refused after the transfer went through: the money follows the
    # standard payout schedule instead, so the instant fee is given back.
    instant_refused: bool = False


class PayoutProvider(Protocol):
    name: str

    def create_account(self, *, driver_id: str, email: str, country: str) -> str:
        """Open the driver's account at the provider; its id."""
        ...

    def onboarding_link(self, *, account_id: str, refresh_url: str, return_url: str) -> str:
        """A link where the driver fills in their details (bank, identity) at the provider."""
        ...

    def send(
        self, *, idempotency_key: str, account_id: str, amount_minor: int, currency: str, instant: bool
    ) -> SendResult:
        """Move the money. The same idempotency key never moves it twice."""
        ...


class NoProviderAccount(Exception):
    """The provider has no onboarding (the ledger-only default)."""


class LedgerOnlyProvider:
    """Records payouts in the ledger; the organisation pays them by hand (bank export)."""

    name = "ledger"

    def create_account(self, *, driver_id: str, email: str, country: str) -> str:
        return f"ledger:{driver_id}"

    def onboarding_link(self, *, account_id: str, refresh_url: str, return_url: str) -> str:
        raise NoProviderAccount(
            "Payouts are recorded in the ledger and paid by your organisation; there is nothing to set up."
        )

    def send(
        self, *, idempotency_key: str, account_id: str, amount_minor: int, currency: str, instant: bool
    ) -> SendResult:
        return SendResult(status="PAID", provider_ref=f"ledger:{idempotency_key}")


def get_provider(name: str | None = None) -> PayoutProvider:
    name = name or settings.PAYOUT_PROVIDER
    if name == "ledger":
        return LedgerOnlyProvider()
    if name == "stripe":
        from payouts.providers.stripe_connect import StripeConnectProvider

        return StripeConnectProvider(api_key=settings.STRIPE_API_KEY, api_base=settings.STRIPE_API_BASE)
    raise ValueError(f"Unknown PAYOUT_PROVIDER '{name}': use ledger or stripe.")
