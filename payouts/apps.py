from django.apps import AppConfig


class PayoutsConfig(AppConfig):
    """Ledger, earnings and payouts. The domain arrives with its own issue; the foundation
    stores proof of delivery (dispatch) that settlement will post from."""

    name = "payouts"
