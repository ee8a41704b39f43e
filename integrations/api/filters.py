import django_filters

from integrations.models import WebhookDelivery


class WebhookDeliveryFilter(django_filters.FilterSet):
    """By id, not by model choice: a choice field would tell another tenant's ids exist."""

    status = django_filters.MultipleChoiceFilter(choices=WebhookDelivery.Status.choices)
    subscription = django_filters.UUIDFilter(field_name="subscription_id")
    event_type = django_filters.CharFilter(field_name="event__event_type")

    class Meta:
        model = WebhookDelivery
        fields = ["status", "subscription", "event_type"]
