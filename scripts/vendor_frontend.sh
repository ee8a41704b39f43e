#!/usr/bin/env bash
# Install the pinned front-end packages from npm and copy their built files into
# static/vendor/ (git-ignored), so pages load them from our own server, never a CDN.
set -euo pipefail

cd "$(dirname "$0")/.."

npm ci --no-audit --no-fund

vendor=static/vendor
rm -rf "$vendor/leaflet"
mkdir -p "$vendor/leaflet"
# The source map goes with leaflet.js: its last line names it, and collectstatic's manifest
# storage refuses a file that points at a missing one.
cp node_modules/leaflet/dist/leaflet.js node_modules/leaflet/dist/leaflet.js.map \
  node_modules/leaflet/dist/leaflet.css "$vendor/leaflet/"
cp -R node_modules/leaflet/dist/images "$vendor/leaflet/images"
cp node_modules/leaflet/LICENSE "$vendor/leaflet/LICENSE"

# OpenLayers for the admin's map widgets (core/admin_widgets.py), the version Django 5.2 uses.
rm -rf "$vendor/ol"
mkdir -p "$vendor/ol"
cp node_modules/ol/dist/ol.js node_modules/ol/dist/ol.js.map node_modules/ol/ol.css "$vendor/ol/"
cp node_modules/ol/LICENSE.md "$vendor/ol/LICENSE.md"

# Chart.js for the scorecards' charts (UMD build: a plain <script>, no bundler).
rm -rf "$vendor/chartjs"
mkdir -p "$vendor/chartjs"
cp node_modules/chart.js/dist/chart.umd.js node_modules/chart.js/dist/chart.umd.js.map "$vendor/chartjs/"
cp node_modules/chart.js/LICENSE.md "$vendor/chartjs/LICENSE.md"

echo "vendored: $(ls "$vendor")"
