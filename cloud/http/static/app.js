/* guanjia pages: CSRF for htmx, device charts (uPlot), live values and the butler inbox (SSE). */
(function () {
  "use strict";
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  document.addEventListener("htmx:configRequest", function (e) {
    if (csrf) e.detail.headers["X-CSRF-Token"] = csrf;
  });
  document.addEventListener("htmx:afterRequest", function (e) {
    if (e.detail.successful && e.detail.elt.classList.contains("reload-after")) window.location.reload();
  });
  document.addEventListener("htmx:responseError", function (e) {
    var text = e.detail.xhr.responseText || ("HTTP " + e.detail.xhr.status);
    try { text = JSON.parse(text).error.message; } catch (_) { /* plain text */ }
    window.alert(text);
  });

  /* ---- device chart ---------------------------------------------------------------------- */
  var plot = null;
  function loadChart() {
    var box = document.getElementById("chart");
    if (!box || !window.uPlot) return;
    var metric = document.getElementById("chart-metric").value;
    var range = document.getElementById("chart-range").value;
    var info = document.getElementById("chart-info");
    if (!metric) { info.textContent = "—"; return; }
    var from = document.getElementById("chart-start"), to = document.getElementById("chart-end");
    from.hidden = to.hidden = range !== "custom";
    var span = "&range=" + range;
    if (range === "custom") {
      if (!from.value || !to.value) return;  /* wait for both dates */
      var end = new Date(to.value); end.setDate(end.getDate() + 1);  /* the end day is included */
      span = "&start=" + new Date(from.value).toISOString() + "&end=" + end.toISOString();
    }
    box.dataset.ready = "0";
    fetch("/api/v1/devices/" + box.dataset.device + "/series?metric=" + encodeURIComponent(metric) + span,
          {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (s) {
        var data = [s.t, s.avg, s.min, s.max];
        var opts = {
          width: Math.max(300, box.clientWidth || 600), height: 280,
          series: [{}, {label: metric, stroke: "#1668dc", width: 1.5},
                   {label: "min", stroke: "rgba(22,104,220,.25)"}, {label: "max", stroke: "rgba(22,104,220,.25)"}],
          bands: [{series: [3, 2], fill: "rgba(22,104,220,.08)"}],
          axes: [{}, {size: 60}],
        };
        if (plot) plot.destroy();
        box.innerHTML = "";
        plot = new uPlot(opts, data, box);
        info.textContent = s.t.length + " points · " + s.source + " · step " + s.step_s + " s";
        box.dataset.ready = "1";
        box.dataset.points = String(s.t.length);
      })
      .catch(function (err) { info.textContent = String(err); box.dataset.ready = "error"; });
  }

  /* ---- live values of a device ----------------------------------------------------------- */
  function liveValues() {
    var dl = document.getElementById("live-values");
    if (!dl || !window.EventSource) return;
    var dot = document.getElementById("live-dot");
    var values = {};
    var es = new EventSource("/api/v1/devices/" + dl.dataset.device + "/live");
    es.addEventListener("values", function (e) {
      var update = JSON.parse(e.data);
      Object.keys(update).forEach(function (k) { values[k] = update[k]; });
      dl.innerHTML = "";
      Object.keys(values).sort().forEach(function (k) {
        var dt = document.createElement("dt"); dt.textContent = k;
        var dd = document.createElement("dd");
        var v = values[k].v;
        dd.textContent = typeof v === "number" ? (Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2)) : String(v);
        dd.title = new Date(values[k].t).toLocaleString();
        dl.appendChild(dt); dl.appendChild(dd);
      });
      if (dot) { dot.classList.add("on"); setTimeout(function () { dot.classList.remove("on"); }, 400); }
    });
  }

  /* ---- butler inbox: live arrival with a sound and visual cue ------------------------------ */
  var audio = null;
  document.addEventListener("click", function () {
    if (!audio && (window.AudioContext || window.webkitAudioContext)) {
      audio = new (window.AudioContext || window.webkitAudioContext)();
    }
  }, {once: true});
  function chime() {
    if (!audio) return;
    [880, 1320].forEach(function (freq, i) {
      var osc = audio.createOscillator(), gain = audio.createGain();
      osc.frequency.value = freq; osc.connect(gain); gain.connect(audio.destination);
      var t0 = audio.currentTime + i * 0.18;
      gain.gain.setValueAtTime(0.2, t0); gain.gain.exponentialRampToValueAtTime(0.001, t0 + 0.16);
      osc.start(t0); osc.stop(t0 + 0.17);
    });
  }
  function inbox() {
    var live = document.getElementById("inbox-live");
    if (!live || !window.EventSource) return;
    var toast = document.getElementById("toast");
    var es = new EventSource("/api/v1/inbox/stream");
    var arrived = function (e) {
      chime();
      if (navigator.vibrate) navigator.vibrate([200, 100, 200]);
      toast.hidden = false; document.body.classList.add("flash");
      setTimeout(function () { toast.hidden = true; document.body.classList.remove("flash"); }, 4000);
      document.body.dispatchEvent(new CustomEvent("inbox-refresh"));
    };
    var quiet = function () { document.body.dispatchEvent(new CustomEvent("inbox-refresh")); };
    /* new work arrives with a cue; other changes only refresh the list */
    ["work_order.assigned", "work_order.escalated", "work_order.report_linked", "work_order.opened"]
      .forEach(function (name) { es.addEventListener(name, arrived); });
    ["work_order.reminder", "work_order.cancelled", "work_order.closed", "work_order.resolved", "message"]
      .forEach(function (name) { es.addEventListener(name, quiet); });
    es.onopen = function () { live.textContent = live.dataset.live; live.className = "live on"; };
    es.addEventListener("ready", function () { live.textContent = live.dataset.live; live.className = "live on"; });
    es.onerror = function () { live.textContent = live.dataset.offline; live.className = "live off"; };
  }

  /* the resident's phone: each step of their orders arrives live, newest on top, and the order's
     state in "my reports" follows; texts come rendered in the reader's language from the server */
  function residentUpdates() {
    var live = document.getElementById("resident-live"), list = document.getElementById("updates");
    if (!live || !list || !window.EventSource) return;
    var es = new EventSource("/api/v1/resident/inbox/stream");
    var seen = {};
    Array.prototype.forEach.call(list.querySelectorAll("li[data-id]"), function (li) { seen[li.dataset.id] = 1; });
    var arrived = function (e) {
      var m = JSON.parse(e.data);
      if (seen[m.id]) return;
      seen[m.id] = 1;
      var empty = list.querySelector("li.empty");
      if (empty) empty.remove();
      var li = document.createElement("li");
      li.className = "update fresh"; li.dataset.id = m.id; li.dataset.wo = m.work_order;
      var at = document.createElement("span"); at.className = "small muted"; at.textContent = m.at || "";
      li.appendChild(at); li.appendChild(document.createTextNode(" " + m.text));
      list.insertBefore(li, list.firstChild);
      var state = document.querySelector("#wo-" + m.work_order + " .state");
      if (state && m.state_text) state.textContent = m.state_text;
      if (navigator.vibrate) navigator.vibrate(150);
    };
    ["received", "assigned", "on_the_way", "on_site", "resolved", "closed", "reopened", "cancelled"]
      .forEach(function (step) { es.addEventListener("resident." + step, arrived); });
    es.addEventListener("ready", function () { live.textContent = live.dataset.live; live.className = "live on"; });
    es.onerror = function () { live.textContent = live.dataset.offline; live.className = "live off"; };
  }

  document.addEventListener("change", function (e) {
    if (e.target.classList && e.target.classList.contains("autosubmit")) e.target.form.submit();
  });

  document.addEventListener("DOMContentLoaded", function () {
    var metric = document.getElementById("chart-metric");
    if (metric) {
      metric.addEventListener("change", loadChart);
      document.getElementById("chart-range").addEventListener("change", loadChart);
      document.getElementById("chart-start").addEventListener("change", loadChart);
      document.getElementById("chart-end").addEventListener("change", loadChart);
      loadChart();
    }
    liveValues();
    inbox();
    residentUpdates();
  });
})();
