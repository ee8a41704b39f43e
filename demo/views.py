"""The demo city's streets for the live map, from the bundled OSM extract, so the demo's map
works without a tile server (settings.LIVE_MAP_STREETS_URL points the map here)."""

from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.views.decorators.cache import cache_control

from demo import city
from dispatch.live import service_area_bbox
from dispatch.web.views import require_dispatch_member

# Streets a little beyond the service area still help the eye.
STREETS_MARGIN_DEG = 0.002


def streets_geojson(organisation_id) -> dict:
    """The extract's streets inside the organisation's service area; none if it has no area."""
    bbox = service_area_bbox(organisation_id)
    if bbox is None:
        return {"type": "FeatureCollection", "features": []}
    min_lon, min_lat, max_lon, max_lat = bbox
    m = STREETS_MARGIN_DEG
    return city.city_graph().geojson((min_lon - m, min_lat - m, max_lon + m, max_lat + m))


@login_required
@cache_control(private=True, max_age=3600)
def demo_streets(request):
    require_dispatch_member(request.user)
    return JsonResponse(streets_geojson(request.user.organisation_id))
