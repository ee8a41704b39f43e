from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import cache_control

from dispatch.live import map_features, service_area_bbox, streets_geojson

# Base map tiles are optional: the map draws our own streets, so it works offline.
OSM_ATTRIBUTION = "© OpenStreetMap contributors"


def _require_dispatch_member(user) -> None:
    if user.organisation_id is None or user.is_driver:
        raise PermissionDenied("The live map is for an organisation's dispatchers and admins.")


@login_required
def live_map(request):
    _require_dispatch_member(request.user)
    bbox = service_area_bbox(request.user.organisation_id)
    map_config = {
        "wsPath": "/ws/live/",
        "streetsUrl": "/live/streets.geojson",
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


@login_required
@cache_control(private=True, max_age=3600)
def live_streets(request):
    """The streets of the caller's service area as GeoJSON, from our OSM extract."""
    _require_dispatch_member(request.user)
    return JsonResponse(streets_geojson(request.user.organisation_id))
