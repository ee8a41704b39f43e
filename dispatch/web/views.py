from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render

from dispatch.live import map_features, service_area_bbox

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
