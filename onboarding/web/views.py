"""The applicant's mobile pages (server-rendered, no inline script) and staff's audited view
of an identity document. Every write goes through onboarding.services, as the API's do."""

import mimetypes

from django import forms
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render

from core.admin_forms import add_service_errors
from fleet.models import Driver, Vehicle
from onboarding import selectors, services
from onboarding.decisions import REASON_TEXT
from onboarding.models import Consent, DocumentKind

UPLOAD_KINDS = [
    (DocumentKind.ID_FRONT, "Identity document (photo page or front)"),
    (DocumentKind.ID_BACK, "Identity document, back (ID cards)"),
    (DocumentKind.SELFIE, "Selfie"),
    (DocumentKind.VEHICLE_PHOTO, "Your vehicle, from the side"),
    (DocumentKind.VEHICLE_REGISTRATION, "Vehicle registration document"),
    (DocumentKind.DRIVING_LICENCE, "Driving licence"),
    (DocumentKind.DRIVING_LICENCE_BACK, "Driving licence, back (US or Canadian: the barcode side)"),
    (DocumentKind.INSURANCE, "Insurance certificate"),
]


class SignUpForm(forms.Form):
    username = forms.CharField(max_length=150)
    password = forms.CharField(widget=forms.PasswordInput, max_length=128)
    name = forms.CharField(max_length=200, label="Full name")
    phone = forms.CharField(max_length=20, help_text="International format, e.g. +358401234567")
    email = forms.EmailField()
    vehicle_type = forms.ChoiceField(choices=Vehicle.Type.choices)
    plate = forms.CharField(max_length=16, required=False, help_text="For a motorised vehicle")
    vin = forms.CharField(
        max_length=17,
        required=False,
        label="VIN",
        help_text="Vehicle identification number, as on the registration",
    )


class DetailsForm(forms.Form):
    surname = forms.CharField(max_length=100)
    given_names = forms.CharField(max_length=100)
    birth_date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    document_number = forms.CharField(max_length=20)
    nationality = forms.CharField(max_length=3, help_text="Three letters, as on the document (e.g. FIN)")


class UploadForm(forms.Form):
    kind = forms.ChoiceField(choices=UPLOAD_KINDS)
    file = forms.FileField()
    expires_on = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))


class AppealForm(forms.Form):
    text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), max_length=2000, label="Why is this wrong?"
    )


def join(request, token: str):
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            application = services.sign_up(signup_token=token, **form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            login(request, application.driver.user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect("onboarding-apply")
    return render(request, "onboarding/join.html", {"form": form})


def _driver(request) -> Driver:
    driver = Driver.objects.filter(user=request.user, organisation_id=request.user.organisation_id).first()
    if driver is None:
        raise PermissionDenied("This page is for applicants.")
    return driver


@login_required
def apply(request):
    """The application on one page: details, consents, uploads, submit, status, appeal."""
    driver = _driver(request)
    application = selectors.own_application(driver)
    if application is None:
        raise Http404
    action = request.POST.get("action") if request.method == "POST" else None
    forms_by_action = {
        "details": DetailsForm(request.POST if action == "details" else None, initial=application.declared),
        "upload": UploadForm(
            request.POST if action == "upload" else None, request.FILES if action == "upload" else None
        ),
        "appeal": AppealForm(request.POST if action == "appeal" else None),
    }
    errors = []
    if action:
        form = forms_by_action.get(action)
        try:
            if form is not None and not form.is_valid():
                raise ValidationError({})
            _do(action, application, driver, form, request.POST)
        except ValidationError as exc:
            if form is not None and hasattr(exc, "error_dict"):
                add_service_errors(form, exc)
            else:
                errors.extend(exc.messages)
        else:
            return redirect("onboarding-apply")
        application = selectors.own_application(driver)
    consents = {c.kind for c in application.consents.all()}
    return render(
        request,
        "onboarding/apply.html",
        {
            "application": application,
            "progress": selectors.progress(application),
            "forms": forms_by_action,
            "errors": errors,
            "consent_texts": [
                (kind, label, *services.CONSENT_TEXTS[kind], kind in consents)
                for kind, label in Consent.Kind.choices
            ],
            "reason_texts": [REASON_TEXT.get(code, code) for code in application.decision_codes],
        },
    )


def _do(action, application, driver, form, post) -> None:
    ids = {"application_id": application.id, "driver": driver}
    if action == "details":
        data = dict(form.cleaned_data, birth_date=form.cleaned_data["birth_date"].isoformat())
        services.set_details(**ids, details=data)
    elif action == "consent":
        services.give_consent(**ids, kind=post.get("kind", ""), text_version=post.get("text_version", ""))
    elif action == "upload":
        services.add_document(
            **ids,
            kind=form.cleaned_data["kind"],
            upload=form.cleaned_data["file"],
            expires_on=form.cleaned_data["expires_on"],
        )
    elif action == "submit":
        services.submit(**ids)
    elif action == "appeal":
        services.appeal(**ids, text=form.cleaned_data["text"])
    else:
        raise ValidationError({"action": "Unknown action."})


@login_required
def liveness(request):
    """The live selfie: the script (static/onboarding/liveness.js) asks the API for a random
    challenge, films each action with getUserMedia and uploads the frames as JPEGs."""
    driver = _driver(request)
    application = selectors.own_application(driver)
    if application is None:
        raise Http404
    return render(request, "onboarding/liveness.html", {"application": application})


@login_required
def document_file(request, document_id):
    """An identity document's image for the organisation's authorised staff, each view audited;
    anyone else gets 404 (no hint that it exists). `?original=1` serves the bytes as uploaded."""
    try:
        _, handle = services.open_document(
            document_id=document_id,
            user=request.user,
            remote_addr=request.META.get("REMOTE_ADDR", ""),
            original=request.GET.get("original") == "1",
        )
    except (PermissionDenied, ValidationError) as exc:
        raise Http404 from exc
    content_type = mimetypes.guess_type(handle.name)[0] or "application/octet-stream"
    response = FileResponse(handle, content_type=content_type)
    response["Cache-Control"] = "private, no-store"
    response["Content-Disposition"] = "inline"
    return response
