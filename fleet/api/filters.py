import django_filters

from fleet.models import Driver


class DriverFilter(django_filters.FilterSet):
    # By id, not a choice among every organisation's hubs: an unknown id must not answer
    # differently from another organisation's (that would tell that it exists).
    hub = django_filters.UUIDFilter(field_name="hub_id")

    class Meta:
        model = Driver
        fields = ["status", "fleet_type", "is_online", "hub"]
