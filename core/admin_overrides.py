"""A manual status override in Django admin: a form that demands a reason, then a service
call that audits it (history row with is_override, domain event, admin log entry)."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from core.actors import Actor
from core.admin_forms import add_service_errors
from core.exceptions import ConcurrentChange


class StatusOverrideForm(forms.Form):
    to_status = forms.ChoiceField(label="New status")
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Required. Stored in the audit log; for a driver, shown to them.",
    )

    def __init__(self, *args, choices, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["to_status"].choices = choices


class StatusOverrideAdminMixin:
    """Adds /<pk>/override-status/ and a link to it on the change page.

    Subclasses set `status_choices` and implement `apply_override(obj, to_status, actor, reason)`.
    """

    status_choices: list = []

    def get_urls(self):
        info = self.model._meta.app_label, self.model._meta.model_name
        return [
            path(
                "<path:object_id>/override-status/",
                self.admin_site.admin_view(self.override_status_view),
                name="{}_{}_override_status".format(*info),
            ),
            *super().get_urls(),
        ]

    @admin.display(description="Manual override")
    def override_link(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        info = self.model._meta.app_label, self.model._meta.model_name
        url = reverse("admin:{}_{}_override_status".format(*info), args=[obj.pk])
        return format_html('<a class="button" href="{}">Force a status…</a>', url)

    def override_status_view(self, request, object_id):
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404
        if not self.has_change_permission(request, obj):
            raise Http404
        form = StatusOverrideForm(request.POST or None, choices=self.status_choices)
        if request.method == "POST" and form.is_valid():
            try:
                self.apply_override(
                    obj,
                    to_status=form.cleaned_data["to_status"],
                    actor=Actor.for_user(request.user),
                    reason=form.cleaned_data["reason"],
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            except ConcurrentChange as exc:
                form.add_error(None, str(exc))
            else:
                self.log_change(
                    request,
                    obj,
                    f"Forced status to {form.cleaned_data['to_status']}: {form.cleaned_data['reason']}",
                )
                messages.success(request, f"Status forced to {form.cleaned_data['to_status']}.")
                info = self.model._meta.app_label, self.model._meta.model_name
                return HttpResponseRedirect(reverse("admin:{}_{}_change".format(*info), args=[obj.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Force the status of {obj}",
            "object": obj,
            "form": form,
            "opts": self.model._meta,
            "current_status": obj.status,
        }
        return TemplateResponse(request, "admin/status_override.html", context)
