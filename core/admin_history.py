"""The admin's change-history pages (django-simple-history), readable and read-only."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from simple_history.admin import SimpleHistoryAdmin
from simple_history.models import DeletedObject
from simple_history.template_utils import HistoricalRecordContextHelper

from core.admin import ReadOnlyMixin
from core.admin_forms import JSON_FORMFIELD_OVERRIDES

EMPTY = "—"


class HistoryContextHelper(HistoricalRecordContextHelper):
    """An empty foreign key reads "—": simple-history calls it "Deleted driver (pk=None)"."""

    def prepare_delta_change_value(self, change, value):
        if isinstance(value, DeletedObject) and value.pk is None:
            return EMPTY
        return super().prepare_delta_change_value(change, value)


class HistoryAdmin(SimpleHistoryAdmin):
    """SimpleHistoryAdmin whose history page shows empty references as "—" and whose old
    versions are only shown: a revert would save the old row around the services (the
    setting SIMPLE_HISTORY_REVERT_DISABLED hides the button; this refuses the POST)."""

    formfield_overrides = JSON_FORMFIELD_OVERRIDES

    def get_historical_record_context_helper(self, request, historical_record):
        return HistoryContextHelper(self.model, historical_record)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        """A service that refuses at save time (its rule changed between the form's check and
        the save: another admin took the last subscription slot, say) is a message, not a 500;
        the admin's transaction has rolled back, so nothing was written."""
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ValidationError as exc:
            self.message_user(request, "Not saved: " + " ".join(exc.messages), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if request.method != "GET":
            return HttpResponseNotAllowed(["GET"])
        return super().history_form_view(request, object_id, version_id, extra_context)


class ReadOnlyHistoryAdmin(ReadOnlyMixin, HistoryAdmin):
    """A model no service writes for the admin yet: its rows and their history, shown."""
