// The loop's charts (uPlot): used by the live dashboard and by the static `watcher report`.
"use strict";
window.WatcherCharts = (function () {
  const COLORS = {
    retrain: "#1f77b4", refresh: "#9ecae1", escalation: "#d62728", change_alarm: "#ff7f0e",
    no_signal: "#8c564b", promoted: "#2ca02c", rolled_back: "#e377c2", rejected: "#7f7f7f",
  };
  // Vertical lines at each marker's draw, coloured by kind; `current()` gives the data.
  function markerPlugin(current) {
    return {
      hooks: {
        draw: [(u) => {
          const markers = (current() && current().markers) || [];
          const ctx = u.ctx;
          ctx.save();
          ctx.lineWidth = 1.5 * devicePixelRatio;
          for (const m of markers) {
            const x = Math.round(u.valToPos(m.x, "x", true));
            if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
            ctx.strokeStyle = COLORS[m.kind] || "#444";
            ctx.beginPath();
            ctx.moveTo(x, u.bbox.top);
            ctx.lineTo(x, u.bbox.top + u.bbox.height);
            ctx.stroke();
          }
          ctx.restore();
        }],
      },
    };
  }
  const hitData = (d) => [d.x, d.hit_rate, d.ci_low, d.ci_high, d.chance_rate];
  const calData = (d) => [d.x, d.brier, d.ece];
  function build(data, elHit, elCal, width, current, onZoom) {
    const hooks = onZoom ? { setScale: [(u, key) => { if (key === "x") onZoom(u); }] } : {};
    const hit = new uPlot({
      title: "hit rate vs chance", width: width, height: 300, plugins: [markerPlugin(current)],
      scales: { x: { time: false }, y: { range: [0, 1] } },
      cursor: { drag: { x: true, y: false } },
      hooks: hooks,
      series: [
        { label: "draw" },
        { label: "hit rate", stroke: "#1f77b4", width: 2, spanGaps: true },
        { label: "ci low", stroke: "#aec7e8", dash: [4, 4] },
        { label: "ci high", stroke: "#aec7e8", dash: [4, 4] },
        { label: "chance", stroke: "#7f7f7f", dash: [8, 4] },
      ],
    }, hitData(data), elHit);
    const cal = new uPlot({
      title: "Brier and calibration (ECE)", width: width, height: 200,
      plugins: [markerPlugin(current)],
      scales: { x: { time: false } },
      series: [{ label: "draw" }, { label: "brier", stroke: "#9467bd" },
               { label: "ece", stroke: "#17becf" }],
    }, calData(data), elCal);
    return { hit: hit, cal: cal };
  }
  return { COLORS: COLORS, build: build, hitData: hitData, calData: calData };
})();
