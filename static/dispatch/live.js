/*
 * The live map. Reads its configuration from the JSON block #live-config (no inline
 * script, so a strict CSP holds), draws our own streets, hubs and zones, then follows the
 * websocket /ws/live/, which sends {"type": "snapshot", drivers, orders, order_counts,
 * offers, routes} every two seconds, and changes as they commit: {"type": "route"} (a
 * driver's remaining stops with ETAs), {"type": "offer"} / {"type": "offer_closed"} and
 * {"type": "order_risk"}. Reconnects with back-off when the socket closes.
 */
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("live-config").textContent);

  var COLOURS = {
    idle: "#2a9d8f",
    busy: "#f4a261",
    offline: "#9aa0a6",
    ownedRing: "#1d3557",
    gigRing: "#ffffff",
    waiting: "#e63946",
    assigned: "#7b2cbf",
    carrying: "#1f6fb2",
    street: "#b8c2cc",
    mainStreet: "#8d99a6",
    zone: "#1d3557",
    route: "#264653",
    offer: "#e76f51",
    risk: "#d62828",
  };
  var STATUSES = [
    ["CREATED", "Waiting for a driver"],
    ["OFFERED", "Offered"],
    ["ASSIGNED", "Assigned"],
    ["EN_ROUTE_PICKUP", "Driving to pickup"],
    ["ARRIVED_PICKUP", "At pickup"],
    ["PICKED_UP", "On the way"],
    ["ARRIVED_DROPOFF", "At drop-off"],
    ["DELIVERED", "Delivered"],
    ["FAILED", "Failed"],
    ["CANCELLED", "Cancelled"],
    ["RETURNED", "Returned"],
  ];
  var TERMINAL = { DELIVERED: true, FAILED: true, CANCELLED: true, RETURNED: true };
  var WAITING = { CREATED: true, OFFERED: true };
  var CARRYING = { PICKED_UP: true, ARRIVED_DROPOFF: true };
  var MAIN_ROADS = { primary: true, secondary: true, trunk: true, tertiary: true };

  // --- the map ----------------------------------------------------------------------------
  var map = L.map("map", { preferCanvas: true, zoomSnap: 0.25 });
  map.attributionControl.setPrefix(false);
  if (config.tileUrl) {
    L.tileLayer(config.tileUrl, { maxZoom: 19, attribution: config.attribution }).addTo(map);
  } else if (config.streetsUrl) {
    map.attributionControl.addAttribution("Streets " + config.attribution);
  }
  if (config.bounds) {
    map.fitBounds(config.bounds, { padding: [20, 20] });
  } else {
    map.setView([0, 0], 2);
  }

  var streetsLayer = L.layerGroup().addTo(map);
  var zonesLayer = L.layerGroup().addTo(map);
  // Routes, offers and alerts are SVG (the rest is canvas): each line is an element of its own.
  var svg = L.svg();
  var routesLayer = L.layerGroup().addTo(map);
  var offersLayer = L.layerGroup().addTo(map);
  var ordersLayer = L.layerGroup().addTo(map);
  var hubsLayer = L.layerGroup().addTo(map);
  var driversLayer = L.layerGroup().addTo(map);

  if (config.streetsUrl) fetch(config.streetsUrl, { credentials: "same-origin" })
    .then(function (response) {
      if (!response.ok) throw new Error("streets: HTTP " + response.status);
      return response.json();
    })
    .then(function (geojson) {
      L.geoJSON(geojson, {
        interactive: false,
        style: function (feature) {
          var main = MAIN_ROADS[feature.properties.highway];
          return { color: main ? COLOURS.mainStreet : COLOURS.street, weight: main ? 4 : 2, opacity: 0.9 };
        },
      }).addTo(streetsLayer);
    })
    .catch(function (error) {
      console.warn(error);
    });

  (config.zones || []).forEach(function (zone) {
    L.geoJSON(zone.geometry, {
      style: { color: COLOURS.zone, weight: 1, opacity: 0.5, dashArray: "4 4", fillOpacity: 0.03 },
    })
      .bindTooltip(textTip([zone.name]), { sticky: true })
      .addTo(zonesLayer);
  });
  (config.hubs || []).forEach(function (hub) {
    L.marker([hub.lat, hub.lon], {
      icon: L.divIcon({ className: "hub-icon", iconSize: [12, 12] }),
      keyboard: false,
    })
      .bindTooltip(textTip([hub.name, hub.address]))
      .addTo(hubsLayer);
  });

  // --- drivers ----------------------------------------------------------------------------
  var driverMarkers = new Map();

  function driverState(driver) {
    if (!driver.online) return "offline";
    return driver.busy ? "busy" : "idle";
  }

  function driverStyle(driver) {
    var owned = driver.fleet_type === "owned";
    return {
      radius: 7,
      fillColor: COLOURS[driverState(driver)],
      fillOpacity: 0.95,
      color: owned ? COLOURS.ownedRing : COLOURS.gigRing,
      weight: owned ? 3 : 2,
    };
  }

  function driverTooltip(driver) {
    var vehicle = driver.vehicle ? driver.vehicle.replace("_", " ") : "no vehicle";
    var fleet = driver.fleet_type === "owned" ? "owned fleet" : "gig";
    return textTip([driver.name, vehicle + ", " + fleet + " · " + driverState(driver)]);
  }

  function updateDrivers(drivers) {
    var seen = new Set();
    var counts = { idle: 0, busy: 0, offline: 0 };
    drivers.forEach(function (driver) {
      if (!driver.position) return;
      seen.add(driver.id);
      counts[driverState(driver)] += 1;
      var latlng = [driver.position.lat, driver.position.lon];
      var marker = driverMarkers.get(driver.id);
      if (!marker) {
        marker = L.circleMarker(latlng, driverStyle(driver)).bindTooltip(textTip([""]));
        marker.addTo(driversLayer);
        driverMarkers.set(driver.id, marker);
      } else {
        marker.setLatLng(latlng);
        marker.setStyle(driverStyle(driver));
      }
      marker.setTooltipContent(driverTooltip(driver));
    });
    driverMarkers.forEach(function (marker, id) {
      if (!seen.has(id)) {
        driversLayer.removeLayer(marker);
        driverMarkers.delete(id);
      }
    });
    ["idle", "busy", "offline"].forEach(function (state) {
      document.getElementById("drivers-" + state).textContent = counts[state];
    });
  }

  // --- orders -----------------------------------------------------------------------------
  var orderShapes = new Map();

  function orderColour(order) {
    if (WAITING[order.status]) return COLOURS.waiting;
    return CARRYING[order.status] ? COLOURS.carrying : COLOURS.assigned;
  }

  function drawOrder(order) {
    var pickup = [order.pickup.lat, order.pickup.lon];
    var dropoff = [order.dropoff.lat, order.dropoff.lon];
    var colour = orderColour(order);
    var group = L.layerGroup();
    if (order.at_risk) {
      var at = CARRYING[order.status] ? dropoff : pickup;
      L.circleMarker(at, {
        radius: 11,
        color: COLOURS.risk,
        weight: 3,
        fill: false,
        className: "at-risk-ring",
        renderer: svg,
      })
        .bindTooltip(textTip([order.ref + " · at risk of being late"]))
        .addTo(group);
    }
    if (order.driver_id) {
      L.polyline([pickup, dropoff], {
        color: colour,
        weight: 2.5,
        opacity: 0.8,
        dashArray: CARRYING[order.status] ? null : "6 5",
        interactive: false,
      }).addTo(group);
      L.circleMarker(dropoff, { radius: 3.5, color: colour, weight: 2, fillColor: "#fff", fillOpacity: 1 })
        .bindTooltip(textTip([order.ref + " drop-off"]))
        .addTo(group);
    }
    if (!CARRYING[order.status]) {
      L.circleMarker(pickup, { radius: 4.5, color: "#fff", weight: 1, fillColor: colour, fillOpacity: 1 })
        .bindTooltip(textTip([order.ref + " · " + statusLabel(order.status)]))
        .addTo(group);
    }
    return group;
  }

  function updateOrders(orders) {
    var seen = new Set();
    orders.forEach(function (order) {
      if (TERMINAL[order.status]) return;
      seen.add(order.id);
      var key = order.status + "|" + (order.driver_id || "") + "|" + (order.at_risk ? "risk" : "");
      var existing = orderShapes.get(order.id);
      if (existing && existing.key === key) return;
      if (existing) ordersLayer.removeLayer(existing.group);
      var group = drawOrder(order).addTo(ordersLayer);
      orderShapes.set(order.id, { key: key, group: group });
    });
    orderShapes.forEach(function (shape, id) {
      if (!seen.has(id)) {
        ordersLayer.removeLayer(shape.group);
        orderShapes.delete(id);
      }
    });
  }

  var ordersById = new Map();

  function setRisk(orderId, atRisk) {
    var order = ordersById.get(orderId);
    if (!order) return;
    order.at_risk = atRisk;
    updateOrders(Array.from(ordersById.values()));
    updateRiskList();
  }

  function updateRiskList() {
    var list = document.getElementById("at-risk");
    var items = document.createDocumentFragment();
    ordersById.forEach(function (order) {
      if (!order.at_risk) return;
      var item = document.createElement("li");
      item.textContent = order.ref + " · " + statusLabel(order.status);
      items.appendChild(item);
    });
    list.replaceChildren(items);
    document.getElementById("at-risk-none").hidden = list.children.length > 0;
  }

  // --- routes and offers ------------------------------------------------------------------
  var routes = new Map(); // driver id -> remaining stops, in order
  var offers = new Map(); // offer id -> offer

  function clock(iso) {
    return iso ? new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : "–";
  }

  function drawRoutes() {
    routesLayer.clearLayers();
    routes.forEach(function (stops, driverId) {
      if (!stops.length) return;
      var marker = driverMarkers.get(driverId);
      var points = stops.map(function (stop) { return [stop.lat, stop.lon]; });
      if (marker) points.unshift(marker.getLatLng());
      L.polyline(points, {
        color: COLOURS.route,
        weight: 3,
        opacity: 0.55,
        interactive: false,
        className: "route-line",
        renderer: svg,
      })
        .addTo(routesLayer);
      stops.forEach(function (stop, index) {
        var late = stop.predicted_late_s > 0;
        var lines = [
          (index + 1) + ". " + stop.ref + " " + (stop.kind === "pickup" ? "pickup" : "drop-off"),
          "ETA " + clock(stop.eta) + " · window ends " + clock(stop.window_end),
        ];
        if (late) lines.push(Math.round(stop.predicted_late_s / 60) + " min late (predicted)");
        L.circleMarker([stop.lat, stop.lon], {
          radius: 3,
          color: late ? COLOURS.risk : COLOURS.route,
          weight: 2,
          fillColor: "#fff",
          fillOpacity: 1,
          className: "route-stop",
          renderer: svg,
        })
          .bindTooltip(textTip(lines))
          .addTo(routesLayer);
      });
    });
  }

  function drawOffers() {
    offersLayer.clearLayers();
    offers.forEach(function (offer) {
      var marker = driverMarkers.get(offer.driver_id);
      if (!marker || !offer.pickup) return;
      L.polyline([marker.getLatLng(), [offer.pickup.lat, offer.pickup.lon]], {
        color: COLOURS.offer,
        weight: 2.5,
        dashArray: "3 6",
        className: "offer-line",
        renderer: svg,
      })
        .bindTooltip(textTip(["Offer: " + offer.refs.join(", "), "expires " + new Date(offer.expires_at).toLocaleTimeString()]))
        .addTo(offersLayer);
    });
  }

  function statusLabel(status) {
    for (var i = 0; i < STATUSES.length; i++) {
      if (STATUSES[i][0] === status) return STATUSES[i][1];
    }
    return status;
  }

  function updateOrderCounts(counts) {
    var list = document.getElementById("order-counts");
    var rows = document.createDocumentFragment();
    STATUSES.forEach(function (entry) {
      var status = entry[0];
      var n = counts[status] || 0;
      if (!n && (status === "OFFERED" || TERMINAL[status]) && status !== "DELIVERED") return;
      var row = document.createElement("div");
      if (TERMINAL[status]) row.className = "status-terminal";
      var dt = document.createElement("dt");
      dt.textContent = entry[1];
      var dd = document.createElement("dd");
      dd.textContent = n;
      row.appendChild(dt);
      row.appendChild(dd);
      rows.appendChild(row);
    });
    list.replaceChildren(rows);
  }

  // --- the socket -------------------------------------------------------------------------
  var connection = document.getElementById("connection");
  var updated = document.getElementById("updated");
  var retryMs = 1000;
  var fitted = !!config.bounds;

  function setConnection(state, text) {
    connection.className = "connection connection--" + state;
    connection.textContent = text;
  }

  function onSnapshot(snapshot) {
    ordersById = new Map(snapshot.orders.map(function (order) { return [order.id, order]; }));
    updateOrders(snapshot.orders);
    updateDrivers(snapshot.drivers);
    updateRiskList();
    routes = new Map((snapshot.routes || []).map(function (route) { return [route.driver_id, route.stops]; }));
    offers = new Map((snapshot.offers || []).map(function (offer) { return [offer.id, offer]; }));
    drawRoutes();
    drawOffers();
    updateOrderCounts(snapshot.order_counts || {});
    updated.textContent = new Date(snapshot.at).toLocaleTimeString();
    updated.setAttribute("datetime", snapshot.at);
    if (!fitted && driverMarkers.size) {
      map.fitBounds(driversLayer.getLayers().map(function (m) { return m.getLatLng(); }), { padding: [30, 30] });
      fitted = true;
    }
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + config.wsPath);
    socket.addEventListener("open", function () {
      retryMs = 1000;
      setConnection("live", "live");
    });
    socket.addEventListener("message", function (event) {
      var message = JSON.parse(event.data);
      if (message.type === "snapshot") onSnapshot(message);
      else if (message.type === "route") {
        routes.set(message.driver_id, message.stops);
        drawRoutes();
      } else if (message.type === "offer") {
        offers.set(message.offer.id, message.offer);
        drawOffers();
      } else if (message.type === "offer_closed") {
        offers.delete(message.id);
        drawOffers();
      } else if (message.type === "order_risk") setRisk(message.order_id, message.at_risk);
    });
    socket.addEventListener("close", function (event) {
      if (event.code === 4401 || event.code === 4403) {
        setConnection("closed", event.code === 4401 ? "signed out: sign in again" : "not allowed");
        return;
      }
      setConnection("closed", "reconnecting in " + Math.round(retryMs / 1000) + " s");
      window.setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 15000);
    });
  }

  // Every text from the server reaches the page as a text node, never as HTML: a name such
  // as "<img src=x onerror=...>" shows as those characters. Leaflet takes the element as is.
  function textTip(lines) {
    var tip = document.createElement("span");
    lines.forEach(function (line, index) {
      if (index) tip.appendChild(document.createElement("br"));
      tip.appendChild(document.createTextNode(line == null ? "" : String(line)));
    });
    return tip;
  }

  connect();
})();
