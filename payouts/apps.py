from django.apps import AppConfig


class PayoutsConfig(AppConfig):
    """Settlement: the double-entry ledger, earnings rules and client price lists, earnings
    posted on delivery, payouts (ledger-only or Stripe Connect), disputes, statements."""

    name = "payouts"

    def ready(self) -> None:
        from core.events import register_event_types

        register_event_types(
            {
                "earning.posted": "A driver's earning for a delivery was posted to the ledger (total, currency).",
                "earning.reversed": "A delivery's earning was reversed (an override took the order out of DELIVERED).",
                "payout.created": "Money was taken from a driver's balance to be paid out (batch or instant).",
                "payout.paid": "A payout reached the driver (or was recorded as paid by hand).",
                "payout.failed": "A payout failed; its amount is back on the driver's balance.",
                "dispute.opened": "A driver disputed an earning; the automatic check's result is in the reason.",
                "dispute.decided": "A person decided a driver's dispute, with the reason.",
            }
        )

        from payouts import receivers  # noqa: F401  (posts earnings when orders are delivered)
