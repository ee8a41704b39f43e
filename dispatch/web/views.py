import mimetypes
import os

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, render

from dispatch.live import map_features, service_area_bbox
from dispatch.models import ProofOfDelivery
from dispatch.proof_links import PROOF_IMAGES, token_opens

# Base map tiles and a streets overlay are optional settings: with neither, the map still
# shows zones, hubs, drivers and orders (it needs no internet access).
OSM_ATTRIBUTION = "© OpenStreetMap contributors"


def require_dispatch_member(user) -> None:
    if not user.runs_dispatch:
        raise PermissionDenied("The live map is for an organisation's dispatchers and admins.")


@login_required
def live_map(request):
    require_dispatch_member(request.user)
    bbox = service_area_bbox(request.user.organisation_id)
    map_config = {
        "wsPath": "/ws/live/",
        "streetsUrl": settings.LIVE_MAP_STREETS_URL,
        "bounds": [[bbox[1], bbox[0]], [bbox[3], bbox[2]]] if bbox else None,
        "tileUrl": settings.LIVE_MAP_TILE_URL,
        "attribution": OSM_ATTRIBUTION,
        **map_features(request.user.organisation_id),
    }
    return render(
        request,
        "dispatch/live.html",
        {"organisation": request.user.organisation, "map_config": map_config},
    )


def may_view_proof(user, proof: ProofOfDelivery) -> bool:
    """Staff allowed to view proofs of delivery, or the order's organisation's dispatch."""
    if user.is_staff and user.has_perm("dispatch.view_proofofdelivery"):
        return True
    return user.runs_dispatch and user.organisation_id == proof.order.organisation_id


def proof_image(request, proof_id: int, kind: str):
    """A proof-of-delivery photo or signature, for those who may see it (signed in, or holding
    a signed link that has not expired); MEDIA_ROOT itself is never served. Anyone else gets
    404, so another organisation cannot learn a proof exists."""
    token = request.GET.get("token")
    by_link = bool(token) and token_opens(token, proof_id=proof_id, kind=kind)
    if not by_link and not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if kind not in PROOF_IMAGES:
        raise Http404
    proof = get_object_or_404(ProofOfDelivery.objects.select_related("order"), pk=proof_id)
    image = getattr(proof, kind)
    if not (by_link or may_view_proof(request.user, proof)) or not image:
        raise Http404
    try:
        stream = image.open("rb")
    except FileNotFoundError as exc:
        raise Http404 from exc
    content_type = mimetypes.guess_type(image.name)[0] or "application/octet-stream"
    response = FileResponse(
        stream, content_type=content_type, as_attachment=False, filename=os.path.basename(image.name)
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response
