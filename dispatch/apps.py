from django.apps import AppConfig


class DispatchConfig(AppConfig):
    """Orders and their lifecycle, offers, routes and stops, proof of delivery."""

    name = "dispatch"

    def ready(self) -> None:
        from core.events import register_event_types
        from dispatch.models import OrderStatus

        # An order's event is named after the status it reached (transitions and overrides),
        # except a release: it reaches CREATED again but is not a new order.
        register_event_types(
            {
                f"order.{status.value.lower()}": f"An order became {status.label.lower()}."
                for status in OrderStatus
            },
            client_scoped=True,
        )
        register_event_types(
            {
                "order.released": "An order was taken back from its driver; it is open again.",
                "order.needs_attention": "An order needs a dispatcher's decision; the reason says why.",
                "order.updated": "An order's details changed, with a reason (each field old -> new in `changes`).",
            },
            client_scoped=True,
        )

        register_event_types(
            {
                "offer.created": "Work was offered to a driver (orders, incentive, expiry).",
                "offer.accepted": "A driver accepted an offer; its orders are theirs.",
                "offer.declined": "A driver declined an offer, with their reason if they gave one.",
                "offer.expired": "An offer lapsed unanswered.",
                "offer.withdrawn": "An offer was taken back: another driver took the work, or the "
                "driver can no longer take work.",
            }
        )

        register_event_types(
            {
                "reposition.suggested": "Predictive dispatch suggested an idle driver move toward "
                "expected orders (target, expected orders, incentive, expiry; the reason in words).",
                "reposition.accepted": "A driver accepted a reposition suggestion.",
                "reposition.dismissed": "A driver dismissed a reposition suggestion.",
                "reposition.expired": "A reposition suggestion lapsed unanswered.",
            }
        )

        register_event_types(
            {
                "dispatch.settings_updated": "An organisation's dispatch rules or offer time limit changed.",
            }
        )

        from dispatch import receivers  # noqa: F401  (connects the reactions to other domains' events)
