"""Admin forms that validate through the domain services, so the admin is a client of the
services: their errors show on the form, next to the field they name, before anything is saved."""

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.forms.fields import InvalidJSONInput

from core.api.parsers import MAX_JSON_DEPTH, json_depth


def add_service_errors(form: forms.BaseForm, exc: ValidationError) -> None:
    """Put a service's ValidationError on the form: on the field it names when the form shows
    that field, else at the top, prefixed with the field's name."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc.messages)
        return
    for field, errors in exc.message_dict.items():
        if field in form.fields:
            form.add_error(field, errors)
        else:
            form.add_error(None, [f"{field}: {error}" for error in errors])


class ServiceModelForm(forms.ModelForm):
    """A ModelForm that, once its own checks pass, runs `check_with_service(instance)`: the
    service's own validation (one copy of each rule), raising its ValidationError."""

    def check_with_service(self, instance) -> None:
        raise NotImplementedError

    def _post_clean(self):
        super()._post_clean()
        if self.errors:
            return
        try:
            self.check_with_service(self.instance)
        except ValidationError as exc:
            add_service_errors(self, exc)


def changed_values(form: forms.BaseForm) -> dict:
    """The fields the user changed and their new values: what an update service takes."""
    return {name: form.cleaned_data[name] for name in form.changed_data}


class BoundedJSONField(forms.JSONField):
    """An admin JSON field that refuses text too long or nested too deep before parsing it:
    Python's json module recurses once per level, so `[[[...]]]` 100,000 deep would be a 500
    (RecursionError) instead of a form error. The depth rule is the API's (core.api.parsers)."""

    max_chars = 65_536
    default_error_messages = {
        "too_long": f"Enter at most {max_chars:,} characters of JSON.",
        "too_deep": f"JSON nested deeper than {MAX_JSON_DEPTH} levels is not accepted.",
    }

    def _refusal(self, value) -> str | None:
        if self.disabled or not isinstance(value, str):
            return None
        if len(value) > self.max_chars:
            return "too_long"
        return "too_deep" if json_depth(value) > MAX_JSON_DEPTH else None

    def to_python(self, value):
        if code := self._refusal(value):
            raise ValidationError(self.error_messages[code], code=code)
        return super().to_python(value)

    def bound_data(self, data, initial):
        # The form shown again with its error parses the text too: keep it as typed.
        if self._refusal(data):
            return InvalidJSONInput(data)
        return super().bound_data(data, initial)


# For ModelAdmin.formfield_overrides: every JSON field an admin form edits is bounded.
JSON_FORMFIELD_OVERRIDES = {models.JSONField: {"form_class": BoundedJSONField}}
