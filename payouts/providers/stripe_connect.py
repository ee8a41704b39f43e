"""Stripe Connect (Express accounts) on the `stripe` library: onboarding links, transfers from
the platform to the driver's account, instant payouts to their debit card, idempotency keys on
every write, and webhook events verified with Stripe's signature scheme."""

import stripe

from payouts.providers import SendResult


class StripeConnectProvider:
    name = "stripe"

    def __init__(self, *, api_key: str, api_base: str = "") -> None:
        if not api_key:
            raise ValueError("STRIPE_API_KEY is not set.")
        addresses = {"api": api_base} if api_base else {}
        self.client = stripe.StripeClient(api_key, base_addresses=addresses, max_network_retries=2)

    def create_account(self, *, driver_id: str, email: str, country: str) -> str:
        params = {
            "type": "express",
            "country": country,
            "capabilities": {"transfers": {"requested": True}},
            "metadata": {"driver_id": driver_id},
        }
        if email:
            params["email"] = email
        account = self.client.v1.accounts.create(
            params=params, options={"idempotency_key": f"fleetroot-account-{driver_id}"}
        )
        return account.id

    def onboarding_link(self, *, account_id: str, refresh_url: str, return_url: str) -> str:
        link = self.client.v1.account_links.create(
            params={
                "account": account_id,
                "refresh_url": refresh_url,
                "return_url": return_url,
                "type": "account_onboarding",
            }
        )
        return link.url

    def send(
        self, *, idempotency_key: str, account_id: str, amount_minor: int, currency: str, instant: bool
    ) -> SendResult:
        """A transfer to the connected account; for an instant payout, then a payout of it to
        the driver's debit card (its final state arrives by webhook). A network failure leaves
        the payout PENDING, to be sent again with the same keys."""
        try:
            transfer = self.client.v1.transfers.create(
                params={
                    "amount": amount_minor,
                    "currency": currency.lower(),
                    "destination": account_id,
                    "metadata": {"fleetroot_payout": idempotency_key},
                },
                options={"idempotency_key": f"{idempotency_key}-transfer"},
            )
        except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
            return SendResult(status="PENDING", failure_reason=str(exc.user_message or exc))
        except stripe.StripeError as exc:
            return SendResult(status="FAILED", failure_reason=str(exc.user_message or exc))
        if not instant:
            return SendResult(status="PAID", provider_ref=transfer.id)
        try:
            payout = self.client.v1.payouts.create(
                params={
                    "amount": amount_minor,
                    "currency": currency.lower(),
                    "method": "instant",
                    "metadata": {"fleetroot_payout": idempotency_key},
                },
                options={"idempotency_key": f"{idempotency_key}-payout", "stripe_account": account_id},
            )
        except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
            # Sent again later with the same keys: the transfer is not repeated.
            return SendResult(status="PENDING", failure_reason=str(exc.user_message or exc))
        except stripe.StripeError as exc:
            # The money is on the driver's Stripe balance already: it is paid, on the standard
            # schedule; reversing it here would pay it twice.
            return SendResult(
                status="PAID",
                provider_ref=transfer.id,
                instant_refused=True,
                failure_reason=f"Instant payout refused ({exc.user_message or exc}); "
                "the money follows your standard payout schedule and the fee is refunded.",
            )
        status = (
            "PAID" if payout.status == "paid" else "FAILED" if payout.status == "failed" else "IN_TRANSIT"
        )
        return SendResult(status=status, provider_ref=transfer.id, provider_payout_ref=payout.id)


def verify_event(*, payload: bytes, signature: str, secret: str, tolerance_s: int) -> dict:
    """The event, if its Stripe-Signature is valid and recent (stripe.Webhook.construct_event);
    raises ValueError (bad body) or stripe.SignatureVerificationError otherwise."""
    event = stripe.Webhook.construct_event(payload, signature, secret, tolerance=tolerance_s)
    return event.to_dict()
