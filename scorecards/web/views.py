"""Pages: the recipient's rating form (a signed link, no login), the dispatchers' scorecards
with a chart per driver, and a driver's own scorecard. Server-rendered, escaped, no inline
script (the charts read their data from json_script blocks in static JS)."""

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from dispatch.models import Order, OrderStatus
from dispatch.rating_links import delivered_at, link_expires_at, order_id_from_token
from scorecards import selectors, services
from scorecards.models import Rating
from scorecards.services import RATING_COMMENT_MAX, RatingAlreadyGiven


class RatingForm(forms.Form):
    stars = forms.TypedChoiceField(
        choices=[(n, f"{n} star{'s' if n > 1 else ''}") for n in range(5, 0, -1)],
        coerce=int,
        widget=forms.RadioSelect,
        label="How was the delivery?",
    )
    comment = forms.CharField(
        required=False,
        max_length=RATING_COMMENT_MAX,
        widget=forms.Textarea(attrs={"rows": 4}),
        label="Comment",
    )


def _refuse(request, status: int, title: str, message: str):
    return render(request, "scorecards/rate_closed.html", {"title": title, "message": message}, status=status)


@require_http_methods(["GET", "POST"])
def rate_delivery(request, token: str):
    """One rating per delivered order through its signed link, until the link expires. A bad
    signature is 404 (nothing to learn), an expired link 410, a second rating 409."""
    order_id = order_id_from_token(token)
    order = Order.objects.filter(pk=order_id).first() if order_id else None
    if order is None or order.status != OrderStatus.DELIVERED:
        return _refuse(request, 404, "Link not valid", "This rating link is not valid.")
    delivered = delivered_at(order)
    if delivered is None or timezone.now() >= link_expires_at(delivered):
        return _refuse(request, 410, "Link expired", "This rating link has expired.")
    if Rating.objects.filter(order=order).exists():
        return _refuse(request, 409, "Already rated", "This delivery has already been rated. Thank you!")
    form = RatingForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            services.submit_rating(
                order=order, stars=form.cleaned_data["stars"], comment=form.cleaned_data["comment"]
            )
        except RatingAlreadyGiven:
            return _refuse(request, 409, "Already rated", "This delivery has already been rated. Thank you!")
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, messages)
        else:
            return render(request, "scorecards/rate_thanks.html", {"order": order})
    status = 400 if request.method == "POST" else 200
    return render(request, "scorecards/rate.html", {"form": form, "order": order}, status=status)


def _require_dispatch_member(user) -> None:
    if not user.runs_dispatch:
        raise PermissionDenied("Scorecards are for an organisation's dispatchers and admins.")


@login_required
def dispatcher_scorecards(request):
    """Every driver of the organisation with their scorecard and a trend chart."""
    _require_dispatch_member(request.user)
    cards = selectors.scorecards_for(organisation_id=request.user.organisation_id)
    history = selectors.history_of([card.driver_id for card in cards], selectors.utc_day(timezone.now()))
    options = selectors.settings_for(request.user.organisation_id)
    rows = [
        selectors.scorecard_view(card, history=history[card.driver_id], options=options) for card in cards
    ]
    charts = {row["driver"]["id"]: row["history"] for row in rows}
    return render(
        request,
        "scorecards/dispatcher.html",
        {"organisation": request.user.organisation, "rows": rows, "charts": charts},
    )


@login_required
def my_scorecard(request):
    """The signed-in driver's own scorecard, with its trend."""
    driver = getattr(request.user, "driver", None)
    if not getattr(request.user, "is_driver", False) or driver is None:
        raise PermissionDenied("This page is for drivers.")
    view = selectors.scorecard_view(selectors.scorecard_of(driver))
    return render(
        request, "scorecards/driver.html", {"view": view, "charts": {view["driver"]["id"]: view["history"]}}
    )
