from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render


@login_required
def live_map(request):
    if request.user.organisation_id is None or request.user.is_driver:
        raise PermissionDenied("The live map is for an organisation's dispatchers and admins.")
    return render(request, "dispatch/live.html", {"organisation": request.user.organisation})
