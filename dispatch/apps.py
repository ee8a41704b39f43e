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
                "order.eta_changed": "A stop's ETA (`stop`: pickup or dropoff; `eta`, `previous_eta`) moved "
                "by more than the notification threshold since the last one announced.",
                "order.at_risk": "A stop is predicted late past its window by more than the alert threshold "
                "(`predicted_late_s`, `eta`, `window_end`).",
                "order.at_risk_cleared": "A stop raised as at risk is predicted back within the clear threshold.",
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
                "geofence.entered": "A driver's pings showed them arrived at a stop (pickup or drop-off), "
                "with the pings that decided.",
                "geofence.exited": "A driver's pings showed them gone from a stop they had arrived at.",
            }
        )

        register_event_types(
            {
                "dispatch.settings_updated": "An organisation's dispatch rules or offer time limit changed.",
                "traffic.updated": "A traffic feed or caller sent speed factors or incidents (counts by source).",
                "route.resequenced": "The system re-sequenced a driver's route and moved stops (`moved`: each "
                "stop's order, kind, position and ETA before and after).",
            }
        )

        from dispatch import receivers  # noqa: F401  (connects the reactions to other domains' events)
