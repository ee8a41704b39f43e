"""The admin's map widget, served from our own static files and without inline script.

Django's GIS widgets load OpenLayers from a CDN and start it from an inline <script>, so
offline (or under a strict CSP) every geometry field is a blank box. This one loads the
vendored OpenLayers (scripts/vendor_frontend.sh), reads its options from a JSON block, and
needs no tile server: with LIVE_MAP_TILE_URL unset the map has no base layer and still draws,
moves and edits shapes.
"""

from django.conf import settings
from django.contrib.gis.admin.options import GeoModelAdminMixin
from django.contrib.gis.forms.widgets import OpenLayersWidget


class OfflineMapWidget(OpenLayersWidget):
    template_name = "gis/offline_map.html"
    # Where an empty map opens (lat, lon, zoom); a stored shape is framed instead.
    default_center = (0.0, 0.0, 2)

    class Media:
        extend = False  # not the parent's CDN files
        css = {"all": ("vendor/ol/ol.css", "gis/css/ol3.css")}
        js = ("vendor/ol/ol.js", "gis/js/OLMapWidget.js", "core/admin_map.js")

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
