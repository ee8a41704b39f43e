"""Admin forms that validate through the domain services, so the admin is a client of the
services: their errors show on the form, next to the field they name, before anything is saved."""

from django import forms
from django.core.exceptions import ValidationError


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
