/*
 * Starts Django's MapWidget for each geometry field of an admin form from its JSON options
 * (core/admin_widgets.py), so no inline script is needed. With no tile URL the base layer is
 * an empty vector layer: the map still shows, draws and edits shapes offline.
 */
(function () {
  "use strict";

  function start(config) {
    var options = Object.assign({}, config);
    delete options.tile_url;
    options.base_layer = config.tile_url
      ? new ol.layer.Tile({ source: new ol.source.XYZ({ url: config.tile_url }) })
      : new ol.layer.Vector({ source: new ol.source.Vector() });
    return new MapWidget(options);
  }

  // The admin loads form media in <head>: wait for the form below it.
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll('script[type="application/json"][id$="_map_options"]').forEach(function (node) {
      start(JSON.parse(node.textContent));
    });
  });
})();
