// Excel export of a filtered list as a background job, with a progress bar.
//
// A link `<a href="/api/...?format=xlsx&filters" data-export="kind">` keeps working without script
// (a direct download). With this script, a click starts POST /api/exports {kind, params: the link's
// filters}, shows a <progress> under the link, polls the job every second and downloads the file
// when it is done, or shows the error. Labels come translated from the script tag's data-label-*
// attributes (rendered by the template with _()): start, progress ({done}, {total}), done, failed, bar.
(function () {
  "use strict";
  var script = document.currentScript;
  var labels = (script && script.dataset) || {};
  var POLL_MS = 1000;

  function label(name, values) {
    var text = labels["label" + name.charAt(0).toUpperCase() + name.slice(1)] || name;
    Object.keys(values || {}).forEach(function (key) {
      text = text.split("{" + key + "}").join(String(values[key]));
    });
    return text;
  }

  function csrfToken() {
    var meta = document.querySelector("meta[name=csrf-token]");
    return meta ? meta.getAttribute("content") : "";
  }

  // The link's query string as the export's params; a repeated name becomes a list.
  function paramsOf(link) {
    var params = {};
    new URL(link.href, window.location.href).searchParams.forEach(function (value, key) {
      if (key === "format") return;
      if (Object.prototype.hasOwnProperty.call(params, key)) {
        params[key] = [].concat(params[key], value);
      } else {
        params[key] = value;
      }
    });
    return params;
  }

  function errorText(body, status) {
    return (body && (body.message || body.error)) || "HTTP " + status;
  }

  function request(method, url, payload) {
    var options = { method: method, credentials: "same-origin",
                    headers: { "Accept": "application/json", "X-CSRF-Token": csrfToken() } };
    if (payload !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(payload);
    }
    return fetch(url, options).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (body) {
        if (!response.ok) throw new Error(errorText(body, response.status));
        return body;
      });
    });
  }

  function panelFor(link) {
    var panel = link.parentNode.querySelector(".export-progress[data-for='" + link.dataset.export + "']");
    if (!panel) {
      panel = document.createElement("div");
      panel.className = "export-progress";
      panel.dataset.for = link.dataset.export;
      panel.setAttribute("role", "status");
      panel.setAttribute("aria-live", "polite");
      var bar = document.createElement("progress");
      bar.max = 100;
      bar.value = 0;
      bar.setAttribute("aria-label", label("bar"));
      var text = document.createElement("span");
      text.className = "export-text";
      panel.appendChild(bar);
      panel.appendChild(document.createTextNode(" "));
      panel.appendChild(text);
      link.insertAdjacentElement("afterend", panel);
    }
    panel.hidden = false;
    panel.classList.remove("failed");
    return panel;
  }

  function show(panel, percent, text) {
    var bar = panel.querySelector("progress");
    bar.value = percent;
    panel.dataset.percent = String(percent);
    panel.querySelector(".export-text").textContent = text + " " + percent + " %";
  }

  function fail(panel, link, message) {
    panel.classList.add("failed");
    panel.dataset.state = "failed";
    panel.querySelector(".export-text").textContent = label("failed") + ": " + message;
    link.removeAttribute("aria-disabled");
  }

  function download(url) {
    var anchor = document.createElement("a");
    anchor.href = url;
    anchor.setAttribute("download", "");
    anchor.hidden = true;
    document.body.appendChild(anchor);
    anchor.click();
    anchor.remove();
  }

  function poll(link, panel, job) {
    if (job.status === "done") {
      show(panel, 100, label("done"));
      panel.dataset.state = "done";
      link.removeAttribute("aria-disabled");
      download(job.file_url);
      return;
    }
    if (job.status === "failed") {
      fail(panel, link, job.error || "");
      return;
    }
    panel.dataset.state = job.status;
    show(panel, job.percent, label("progress", { done: job.done_rows, total: job.total }));
    window.setTimeout(function () {
      request("GET", "/api/exports/" + encodeURIComponent(job.id)).then(function (next) {
        poll(link, panel, next);
      }, function (error) { fail(panel, link, error.message); });
    }, POLL_MS);
  }

  function start(event) {
    var link = event.currentTarget;
    event.preventDefault();
    if (link.getAttribute("aria-disabled") === "true") return;  // one export at a time per link
    link.setAttribute("aria-disabled", "true");
    var panel = panelFor(link);
    panel.dataset.state = "starting";
    show(panel, 0, label("start"));
    request("POST", "/api/exports", { kind: link.dataset.export, params: paramsOf(link) }).then(
      function (job) { poll(link, panel, job); },
      function (error) { fail(panel, link, error.message); });
  }

  document.querySelectorAll("a[data-export]").forEach(function (link) {
    link.addEventListener("click", start);
  });
})();
