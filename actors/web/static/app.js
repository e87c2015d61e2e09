// Watcher's console: live regions, the loop chart, write actions. No framework, no CDN.
// Text from the server is inserted as text (textContent) or as HTML the server escaped.
"use strict";
(function () {
  const state = { events: 0, lastEvent: null, chart: null, cal: null, data: null, range: null };
  window.watcher = state;

  // -- live regions: re-fetch this page's fragment when an audit record arrives ----------
  let refreshTimer = null;
  async function refreshLive() {
    const region = document.getElementById("live");
    if (region && region.dataset.live) {
      const reply = await fetch(region.dataset.live, { headers: { Accept: "text/html" } });
      if (reply.ok) {
        const doc = new DOMParser().parseFromString(await reply.text(), "text/html");
        const fresh = doc.getElementById("live");
        if (fresh) region.innerHTML = fresh.innerHTML;
        bindActions();
      }
    }
    if (document.getElementById("chart-hit")) await loadChart(state.range);
    state.refreshed = (state.refreshed || 0) + 1;
  }
  function scheduleRefresh() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => {
      // The daemon may be restarting: say so, and let the next event (or reconnect) retry.
      refreshLive().catch((err) => {
        const label = document.getElementById("live-state");
        if (label) label.textContent = "offline (" + err.message + ")";
      });
    }, 150);
  }
  function connect() {
    const label = document.getElementById("live-state");
    const source = new EventSource("/events");
    source.onopen = () => {
      if (label) label.textContent = "live";
      // After a reconnect, records may have been written while we were away.
      if (state.opened) scheduleRefresh();
      state.opened = true;
    };
    source.onerror = () => { if (label) label.textContent = "reconnecting…"; };
    source.addEventListener("audit", (ev) => {
      state.events += 1;
      state.lastEvent = JSON.parse(ev.data);
      state.lastEventAt = performance.now();
      scheduleRefresh();
    });
  }

  // -- write actions -----------------------------------------------------------------------
  function bindActions() {
    document.querySelectorAll("button[data-action]").forEach((button) => {
      if (button.dataset.bound) return;
      button.dataset.bound = "1";
      button.addEventListener("click", () => act(button.dataset.action, button.dataset.id,
        button.dataset.type));
    });
    const token = document.getElementById("token");
    if (token && !token.dataset.bound) {
      token.dataset.bound = "1";
      token.value = sessionStorage.getItem("watcher-token") || "";
      token.addEventListener("input", () => sessionStorage.setItem("watcher-token", token.value));
    }
  }
  async function act(action, id, type) {
    const out = document.getElementById("action-result");
    const fields = { id: id };
    if (action === "reject" || action === "halt" || action === "submit") {
      const reason = window.prompt(action === "reject" ? "Why reject " + id + "?" :
        "Why " + action + (type ? " " + type : "") + "? (kept in the audit trail)");
      if (!reason) return;
      fields.reason = reason;
    }
    if (type) fields.request_type = type;
    const token = (document.getElementById("token") || {}).value || "";
    const reply = await fetch("/api/actions/" + encodeURIComponent(action), {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Watcher-Token": token },
      body: JSON.stringify(fields),
    });
    let body = {};
    try { body = await reply.json(); } catch (e) { body = { error: String(e) }; }
    if (out) {
      out.textContent = (reply.ok ? "done: " : "refused (" + reply.status + "): ") +
        (body.output || body.error || "");
      out.className = reply.ok ? "ok" : "bad";
    }
    scheduleRefresh();
  }

  // -- the loop chart (options and markers: charts.js, shared with `watcher report`) -------
  function onZoom(u) {
    const min = u.scales.x.min, max = u.scales.x.max;
    if (state.zooming) return;
    state.range = [min, max];
    clearTimeout(state.zoomTimer);
    state.zoomTimer = setTimeout(() => loadChart(state.range), 200);
  }
  async function loadChart(range) {
    const width = Math.max(400, (document.getElementById("chart-hit").clientWidth || 900));
    let url = "/api/loop?points=" + Math.min(2000, Math.round(width));
    if (range) url += "&lo=" + Math.floor(range[0]) + "&hi=" + Math.ceil(range[1]);
    const reply = await fetch(url);
    if (!reply.ok) return;
    const data = await reply.json();
    state.data = data;
    const info = document.getElementById("chart-info");
    const scored = data.scored.reduce((a, b) => a + b, 0);
    info.textContent = data.x.length + " points for " + data.total + " draws (" + scored +
      " scored in view)" +
      (data.bucket > 1 ? " (each point: " + data.bucket + " draws)" : "") +
      (data.markers_total > data.markers.length ? "; " + data.markers.length + " of " +
        data.markers_total + " markers (zoom in for the rest)" : "");
    renderMarkers(data.markers);
    if (!state.chart) {
      const el = document.getElementById("chart-hit");
      const built = WatcherCharts.build(data, el, document.getElementById("chart-cal"), width,
        () => state.data, (u) => onZoom(u));
      state.chart = built.hit;
      state.cal = built.cal;
      el.addEventListener("dblclick", () => { state.range = null; loadChart(null); });
    } else {
      state.zooming = true;
      state.chart.setData(WatcherCharts.hitData(data), !range);
      state.cal.setData(WatcherCharts.calData(data), true);
      if (range) state.chart.setScale("x", { min: range[0], max: range[1] });
      state.zooming = false;
    }
    state.chartLoads = (state.chartLoads || 0) + 1;
  }
  function renderMarkers(markers) {
    const body = document.querySelector("#markers tbody");
    if (!body) return;
    body.replaceChildren();
    for (const m of markers.slice(-500)) {
      const tr = document.createElement("tr");
      tr.className = "marker kind-" + m.kind;
      const cells = [String(m.x), m.kind, null, m.at];
      cells.forEach((text, i) => {
        const td = document.createElement("td");
        if (i === 2) {
          const a = document.createElement("a");
          a.href = m.link;
          a.textContent = m.label;
          td.appendChild(a);
        } else {
          td.textContent = text;
        }
        tr.appendChild(td);
      });
      body.appendChild(tr);
    }
  }

  bindActions();
  connect();
  if (document.getElementById("chart-hit")) loadChart(null).catch(() => scheduleRefresh());
})();
