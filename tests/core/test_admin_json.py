"""Admin JSON fields refuse JSON nested too deep or too long with a form error, not a 500."""

import pytest
from django.contrib import admin
from django.db import models
from django.urls import reverse

from core.admin_forms import BoundedJSONField

pytestmark = pytest.mark.django_db
PROBED = "[" * 100_000 + "]" * 100_000  # too long as well as too deep


def test_every_admin_json_field_is_bounded():
    for model, model_admin in admin.site._registry.items():
        for field in model._meta.get_fields():
            if isinstance(field, models.JSONField):
                form_field = model_admin.formfield_for_dbfield(field, request=None)
                assert isinstance(form_field, BoundedJSONField), (model.__name__, field.name)


@pytest.mark.parametrize(
    ("page", "field", "data"),
    [
        ("identity_apikey", "scopes", {"name": "deep", "rate_limit_per_minute": "600"}),
        (
            "integrations_webhooksubscription",
            "event_types",
            {"url": "https://example.com/h", "is_active": "on"},
        ),
    ],
)
@pytest.mark.parametrize(
    ("value", "message"),
    [
        (PROBED, "JSON"),
        ("[" * 1000 + "]" * 1000, "nested deeper than"),
        ("[" + '"x",' * 20_000 + '"x"]', "at most"),
    ],
    ids=["probed", "deep", "long"],
)
def test_deep_or_long_json_in_an_admin_form_is_a_form_error(
    staff_client, org, page, field, data, value, message
):
    response = staff_client.post(reverse(f"admin:{page}_add"), {"organisation": org.pk, **data, field: value})
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == [field] and message in errors[field][0]
