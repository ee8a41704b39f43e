"""The admin's map widget, served from our own static files and without inline script.

Django's GIS widgets load OpenLayers from a CDN and start it from an inline <script>, so
offline (or under a strict CSP) every geometry field is a blank box. This one loads the
vendored OpenLayers (scripts/vendor_frontend.sh), reads its options from a JSON block, and
needs no tile server: with LIVE_MAP_TILE_URL unset the map has no base layer and still draws,
moves and edits shapes.
"""

import math

from django.conf import settings
from django.contrib.gis.admin.options import GeoModelAdminMixin
from django.contrib.gis.forms.widgets import OpenLayersWidget

from core.geo import WGS84, coordinate_errors

WEB_MERCATOR = 3857
# The edge of the Web Mercator world, in metres from its centre, on both axes.
WEB_MERCATOR_LIMIT = 20037508.342789244


class OfflineMapWidget(OpenLayersWidget):
    template_name = "gis/offline_map.html"
    # Where an empty map opens (lat, lon, zoom); a stored shape is framed instead.
    default_center = (0.0, 0.0, 2)

    class Media:
        extend = False  # not the parent's CDN files
        css = {"all": ("vendor/ol/ol.css", "gis/css/ol3.css")}
        js = ("vendor/ol/ol.js", "gis/js/OLMapWidget.js", "core/admin_map.js")

    def deserialize(self, value):
        """The drawn (or typed) shape, or None (an "invalid geometry" error on the field) when
        a coordinate lies off the map: projecting such a number back to lon/lat can run for
        ever, inside the admin's transaction."""
        geometry = super().deserialize(value)
        if geometry is None or geometry.empty:
            return geometry
        if not all(math.isfinite(v) for v in geometry.extent):
            return None
        west, south, east, north = geometry.extent
        if geometry.srid in (None, WEB_MERCATOR):
            inside = max(abs(west), abs(south), abs(east), abs(north)) <= WEB_MERCATOR_LIMIT
        elif geometry.srid == WGS84:
            inside = not (coordinate_errors(lat=south, lon=west) or coordinate_errors(lat=north, lon=east))
        else:
            inside = False  # the map speaks only its own and WGS84 coordinates
        return geometry if inside else None

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        lat, lon, zoom = self.default_center
        context["map_options"] = {
            "geom_name": context["geom_type"],
            "id": context["id"],
            "map_id": f"{context['id']}_map",
            "map_srid": self.map_srid,
            "name": name,
            "default_lat": lat,
            "default_lon": lon,
            "default_zoom": zoom,
            "tile_url": settings.LIVE_MAP_TILE_URL,
        }
        context["map_options_id"] = f"{context['id']}_map_options"
        return context


class OfflineMapAdminMixin(GeoModelAdminMixin):
    """For a ModelAdmin with geometry fields: every one of them gets the offline widget."""

    gis_widget = OfflineMapWidget
