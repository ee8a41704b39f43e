import django_filters

from dispatch.models import Order, OrderStatus


class OrderFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=OrderStatus.choices)
    external_ref = django_filters.CharFilter()
    driver = django_filters.UUIDFilter(field_name="driver_id")
    hub = django_filters.UUIDFilter(field_name="hub_id")
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    needs_attention = django_filters.BooleanFilter(method="filter_needs_attention")

    class Meta:
        model = Order
        fields = [
            "status",
            "external_ref",
            "driver",
            "hub",
            "created_after",
            "created_before",
            "needs_attention",
        ]

    def filter_needs_attention(self, queryset, name, value):
        return queryset.exclude(attention_reason="") if value else queryset.filter(attention_reason="")
