// The places map: counties, townships, villages and grids from the places API, drawn with Leaflet.
// Works with no internet: no base tiles unless an intranet tile server is configured (tileUrl).
// Counties and townships load at once; villages and grids are many, so they load for the visible
// area once zoomed in, or for one village on request. Text comes translated from the page (map-i18n).
(function () {
  "use strict";

  var el = document.getElementById("map");
  if (!el || typeof L === "undefined") return;
  var cfg = JSON.parse(el.getAttribute("data-config"));
  var T = JSON.parse(document.getElementById("map-i18n").textContent);
  var locale = document.documentElement.lang || "zh-CN";
  var statusEl = document.getElementById("map-status");

  var LEVELS = ["county", "township", "village", "grid"];
  var STYLE = {
    county: { color: "#173d6b", weight: 2.5, fillColor: "#8fb0da", fillOpacity: 0.22 },
    township: { color: "#2f7d59", weight: 1.4, fillColor: "#bfe3cf", fillOpacity: 0.1 },
    village: { color: "#a0670a", weight: 1, fillColor: "#f3d9a4", fillOpacity: 0.12 },
    grid: { color: "#b03a2e", weight: 0.8, fillColor: "#f2b8b0", fillOpacity: 0.08 },
  };
  var HIGHLIGHT = { color: "#d6007e", weight: 4, fillColor: "#ff5cb0", fillOpacity: 0.3, dashArray: null };
  var LEVEL_TITLE = { county: T.counties, township: T.townships, village: T.villages, grid: T.grids };

  function styleFor(level, feature) {
    var base = STYLE[level];
    var style = {};
    for (var k in base) style[k] = base[k];
    // Synthetic (generated) geometry is drawn dashed, matching the legend.
    style.dashArray = feature && feature.properties && feature.properties.synthetic ? "5 4" : null;
    return style;
  }

  // Official names are Chinese; English pages add the romanised name where the data has one.
  function displayName(p) {
    return p.name;
  }
  function secondaryName(p) {
    return locale.indexOf("en") === 0 && p.name_en && p.name_en !== p.name ? p.name_en : "";
  }

  // --- status line ---------------------------------------------------------------------------
  var pending = 0;
  var hints = {};
  function showStatus(text, isError) {
    statusEl.textContent = text || "";
    statusEl.classList.toggle("error", !!isError);
  }
  function refreshStatus() {
    if (pending > 0) return showStatus(T.loading);
    var parts = [];
    for (var k in hints) if (hints[k]) parts.push(hints[k]);
    showStatus(parts.join(" · "));
  }

  function fetchJSON(url, params) {
    var query = new URLSearchParams();
    for (var k in params) if (params[k] !== undefined && params[k] !== null) query.set(k, params[k]);
    pending += 1;
    refreshStatus();
    return fetch(url + "?" + query.toString(), {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    })
      .then(function (response) {
        if (!response.ok) {
          return response.json().then(
            function (body) { throw new Error(body.message || response.statusText); },
            function () { throw new Error(response.statusText); }
          );
        }
        return response.json();
      })
      .finally(function () {
        pending -= 1;
        refreshStatus();
      });
  }

  function failed(err) {
    showStatus(T.load_failed + (err && err.message ? ": " + err.message : ""), true);
  }

  // --- map and layers ------------------------------------------------------------------------
  var map = L.map(el, { zoomControl: true, minZoom: 6, maxZoom: 18, zoomSnap: 0.5 });
  map.setView([35.75, 114.3], 9);
  window.cityopsMap = map;  // for the browser test and for debugging in the console
  var baseLayers = {};
  if (cfg.tileUrl) {
    baseLayers[T.base_map] = L.tileLayer(cfg.tileUrl, { maxZoom: 19 }).addTo(map);
  }

  var layers = {};
  var loaded = {};
  LEVELS.forEach(function (level) {
    loaded[level] = {};
    layers[level] = L.geoJSON(null, {
      style: function (feature) { return styleFor(level, feature); },
      onEachFeature: function (feature, layer) { bindFeature(level, feature, layer); },
    });
  });
  // County and township borders are drawn again, unfilled, in panes above the villages and grids,
  // so the smaller shapes never hide the larger borders. These copies take no clicks.
  var outlines = {};
  [["township", 405], ["county", 410]].forEach(function (entry) {
    var level = entry[0];
    var pane = map.createPane(level + "Outline");
    pane.style.zIndex = String(entry[1]);
    pane.style.pointerEvents = "none";
    outlines[level] = L.geoJSON(null, {
      pane: level + "Outline",
      interactive: false,
      style: function (feature) {
        var style = styleFor(level, feature);
        style.fill = false;
        return style;
      },
    });
  });
  var overlayOf = {
    county: L.layerGroup([layers.county, outlines.county]),
    township: L.layerGroup([layers.township, outlines.township]),
    village: layers.village,
    grid: layers.grid,
  };
  var highlight = L.geoJSON(null, { style: function () { return HIGHLIGHT; }, interactive: false });

  function addFeatures(level, collection) {
    var fresh = (collection.features || []).filter(function (f) {
      var code = f.properties && f.properties.code;
      if (!code || loaded[level][code]) return false;
      loaded[level][code] = true;
      return true;
    });
    if (!fresh.length) return 0;
    var fc = { type: "FeatureCollection", features: fresh };
    layers[level].addData(fc);
    if (outlines[level]) outlines[level].addData(fc);
    return fresh.length;
  }

  function bindFeature(level, feature, layer) {
    var p = feature.properties || {};
    if (level === "county" || level === "township") {
      layer.bindTooltip(displayName(p), { permanent: true, direction: "center", className: level + "-label" });
    }
    layer.bindPopup(function () { return popupFor(level, p); });
  }

  function el_(tag, attrs, text) {
    var node = document.createElement(tag);
    for (var k in attrs || {}) node.setAttribute(k, attrs[k]);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function popupFor(level, p) {
    var box = el_("div", { class: "place-popup", "data-code": p.code });
    box.appendChild(el_("h3", {}, displayName(p)));
    if (secondaryName(p)) box.appendChild(el_("p", { class: "muted alt-name" }, secondaryName(p)));
    var dl = el_("dl");
    function row(label, value) {
      if (value === undefined || value === null || value === "") return;
      dl.appendChild(el_("dt", {}, label));
      dl.appendChild(el_("dd", {}, value));
    }
    row(T.code, p.code);
    row(T.level, T["level_" + (p.level || level)] || p.level);
    row(T.parent, p.parent_code);
    box.appendChild(dl);
    if (p.synthetic) {
      var badge = el_("p", { class: "badge-synthetic", title: T.synthetic_note }, T.synthetic);
      box.appendChild(badge);
    } else {
      box.appendChild(el_("p", { class: "muted" }, T.real_boundary));
    }
    var actions = el_("div", { class: "actions" });
    if (cfg.placeUrl) {
      actions.appendChild(el_("a", { href: cfg.placeUrl.replace("{code}", encodeURIComponent(p.code)) }, T.open_place));
    }
    if (level === "village") {
      var button = el_("button", { type: "button", class: "linklike" }, T.show_grids);
      button.addEventListener("click", function () { loadGridsOfVillage(p.code); });
      actions.appendChild(button);
    }
    box.appendChild(actions);
    return box;
  }

  // --- loading ---------------------------------------------------------------------------------
  function loadAll(level) {
    return fetchJSON(cfg.geojsonUrl, { level: level }).then(function (fc) { addFeatures(level, fc); });
  }

  function bboxParam() {
    var b = map.getBounds();
    return [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(function (v) { return v.toFixed(5); }).join(",");
  }

  // Villages and grids: fetched for the visible area once zoomed in far enough.
  var VIEWPORT = { village: cfg.villageMinZoom, grid: cfg.gridMinZoom };
  var HINT = { village: T.zoom_for_villages, grid: T.zoom_for_grids };
  function loadViewport(level) {
    if (!map.hasLayer(layers[level])) { hints[level] = ""; return refreshStatus(); }
    if (map.getZoom() < VIEWPORT[level]) { hints[level] = HINT[level]; return refreshStatus(); }
    hints[level] = "";
    fetchJSON(cfg.geojsonUrl, { level: level, bbox: bboxParam() })
      .then(function (fc) { addFeatures(level, fc); })
      .catch(failed);
  }

  function loadGridsOfVillage(code) {
    if (!map.hasLayer(layers.grid)) map.addLayer(layers.grid);
    fetchJSON(cfg.geojsonUrl, { level: "grid", parent: code })
      .then(function (fc) {
        addFeatures("grid", fc);
        var bounds = L.geoJSON(fc).getBounds();
        if (bounds.isValid()) map.fitBounds(bounds, { padding: [20, 20] });
      })
      .catch(failed);
  }

  var timer = null;
  function onViewChange() {
    // Township names only once zoomed in, where they have room.
    el.classList.toggle("zoom-detail", map.getZoom() >= cfg.villageMinZoom);
    clearTimeout(timer);
    timer = setTimeout(function () { loadViewport("village"); loadViewport("grid"); }, 200);
  }
  map.on("moveend", onViewChange);
  map.on("overlayadd overlayremove", onViewChange);

  // --- controls --------------------------------------------------------------------------------
  var overlays = {};
  LEVELS.forEach(function (level) { overlays[LEVEL_TITLE[level]] = overlayOf[level]; });
  L.control.layers(baseLayers, overlays, { collapsed: window.innerWidth < 760 }).addTo(map);
  L.control.scale({ imperial: false }).addTo(map);

  var legend = L.control({ position: "bottomright" });
  legend.onAdd = function () {
    var box = el_("div", { class: "map-legend" });
    box.appendChild(el_("h4", {}, T.legend));
    function swatch(style, dashed) {
      var ns = "http://www.w3.org/2000/svg";
      var svg = document.createElementNS(ns, "svg");
      svg.setAttribute("width", "28");
      svg.setAttribute("height", "14");
      var rect = document.createElementNS(ns, "rect");
      rect.setAttribute("x", "1"); rect.setAttribute("y", "1");
      rect.setAttribute("width", "26"); rect.setAttribute("height", "12");
      rect.setAttribute("fill", style.fillColor);
      rect.setAttribute("fill-opacity", String(Math.max(style.fillOpacity, 0.25)));
      rect.setAttribute("stroke", style.color);
      rect.setAttribute("stroke-width", String(Math.min(style.weight, 2.5)));
      if (dashed) rect.setAttribute("stroke-dasharray", "5 3");
      svg.appendChild(rect);
      return svg;
    }
    LEVELS.forEach(function (level) {
      var row = el_("div", { class: "row", "data-level": level });
      row.appendChild(swatch(STYLE[level], false));
      row.appendChild(el_("span", {}, LEVEL_TITLE[level]));
      box.appendChild(row);
    });
    var synth = el_("div", { class: "row" });
    synth.appendChild(swatch({ color: "#555", weight: 1.5, fillColor: "#fff", fillOpacity: 0 }, true));
    synth.appendChild(el_("span", {}, T.synthetic));
    box.appendChild(synth);
    box.appendChild(el_("div", { class: "hint" }, T.synthetic_note));
    L.DomEvent.disableClickPropagation(box);
    return box;
  };
  legend.addTo(map);

  // --- search ------------------------------------------------------------------------------------
  var form = document.getElementById("map-search");
  var results = document.getElementById("map-results");

  function resultItems(body) {
    if (Array.isArray(body)) return body;
    return body.items || body.results || body.features || [];
  }

  function locate(item) {
    results.hidden = true;
    var p = item.properties || item;
    var level = p.level;
    var show = function (fc) {
      highlight.clearLayers();
      highlight.addData(fc);
      var bounds = highlight.getBounds();
      if (bounds.isValid()) map.fitBounds(bounds, { padding: [30, 30], maxZoom: 16 });
      var feature = (fc.features || [fc])[0];
      var props = (feature && feature.properties) || p;
      if (level === "village" || level === "grid") {
        if (!map.hasLayer(layers[level])) map.addLayer(layers[level]);
        addFeatures(level, fc.type === "FeatureCollection" ? fc : { features: [fc] });
      }
      var centre = bounds.isValid() ? bounds.getCenter() : null;
      if (centre) L.popup().setLatLng(centre).setContent(popupFor(level, props)).openOn(map);
    };
    if (item.geometry) return show({ type: "FeatureCollection", features: [item] });
    fetchJSON(cfg.geojsonUrl, { level: level, code: p.code }).then(show).catch(failed);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var q = form.elements.q.value.trim();
    if (!q) return;
    fetchJSON(cfg.searchUrl, { q: q })
      .then(function (body) {
        var items = resultItems(body);
        results.textContent = "";
        if (!items.length) {
          results.appendChild(el_("li", { class: "empty" }, T.no_results));
        }
        items.forEach(function (item) {
          var p = item.properties || item;
          var li = el_("li", { role: "option", "data-code": p.code, tabindex: "0" });
          li.appendChild(el_("span", { class: "lvl" }, T["level_" + p.level] || p.level));
          li.appendChild(el_("span", {}, displayName(p)));
          if (secondaryName(p)) li.appendChild(el_("span", { class: "code" }, secondaryName(p)));
          li.appendChild(el_("span", { class: "code" }, p.code));
          li.addEventListener("click", function () { locate(item); });
          li.addEventListener("keydown", function (e) { if (e.key === "Enter") locate(item); });
          results.appendChild(li);
        });
        results.hidden = false;
        // A single hit, or one whose code or name is exactly what was typed: go straight to it.
        var exact = items.filter(function (item) {
          var p = item.properties || item;
          return p.code === q || p.name === q || p.name_en === q;
        });
        if (items.length === 1) locate(items[0]);
        else if (exact.length) locate(exact[0]);
      })
      .catch(function (err) { showStatus(T.search_failed + ": " + err.message, true); });
  });
  document.addEventListener("click", function (event) {
    if (!form.contains(event.target)) results.hidden = true;
  });

  // --- start -----------------------------------------------------------------------------------
  overlayOf.county.addTo(map);
  overlayOf.township.addTo(map);
  highlight.addTo(map);
  loadAll("county")
    .then(function () {
      var bounds = layers.county.getBounds();
      if (bounds.isValid()) map.fitBounds(bounds, { padding: [10, 10], animate: false });
      el.setAttribute("data-ready", "counties");
      return loadAll("township");
    })
    .then(function () {
      highlight.bringToFront();
      el.setAttribute("data-ready", "all");
      onViewChange();
    })
    .catch(failed);
})();
