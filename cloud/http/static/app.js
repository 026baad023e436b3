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

  /* ---- remote commands: reload the device page when an open command gets its result ------ */
  var pollCommands = function () {
    var open = document.querySelectorAll("[data-command-poll]");
    if (!open.length) return;
    open.forEach(function (row) {
      fetch(row.getAttribute("data-command-poll"), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (c) {
          if (c && c.status !== row.getAttribute("data-status")) window.location.reload();
        })
        .catch(function () { /* next round */ });
    });
    window.setTimeout(pollCommands, 1500);
  };
  document.addEventListener("DOMContentLoaded", function () { window.setTimeout(pollCommands, 1000); });

  /* ---- device chart ----------------------------------------------------------------------
     Times are the community's (data-tz), 24-hour, like every other time on the page: uPlot places
     its ticks with tzDate and the labels come from Intl with hourCycle h23, whatever the browser's
     own zone and clock. A state (enum/bool) is drawn as coloured bands with a legend of its words,
     not as a line between codes that mean nothing as numbers. */
  var plot = null;
  var PALETTE = ["#52c41a", "#1668dc", "#fa8c16", "#f5222d", "#722ed1", "#13c2c2", "#eb2f96", "#a0d911",
                 "#faad14", "#2f54eb", "#8c8c8c", "#fa541c"];
  function formatters(tz, lang) {
    var loc = lang === "en" ? "en-GB" : "zh-CN";
    var base = {timeZone: tz, hourCycle: "h23"};
    var mk = function (o) { return new Intl.DateTimeFormat(loc, Object.assign({}, base, o)); };
    var hm = mk({hour: "2-digit", minute: "2-digit"});
    var md = mk({month: "2-digit", day: "2-digit"});
    var full = mk({year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit"});
    return {
      time: function (t) { return hm.format(new Date(t * 1000)); },
      day: function (t) { return md.format(new Date(t * 1000)); },
      full: function (t) { return full.format(new Date(t * 1000)); },
    };
  }
  function stateColor(code, codes) {
    var i = codes.indexOf(code);
    return code === 0 ? PALETTE[0] : PALETTE[1 + ((i < 0 ? code : i) % (PALETTE.length - 1))];
  }
  function loadChart() {
    var box = document.getElementById("chart");
    if (!box || !window.uPlot) return;
    var metric = document.getElementById("chart-metric").value;
    var range = document.getElementById("chart-range").value;
    var info = document.getElementById("chart-info");
    var legend = document.getElementById("chart-states");
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
        var lang = box.dataset.lang || "zh", tz = s.timezone || box.dataset.tz || "Asia/Shanghai";
        var fmt = formatters(tz, lang), d = s.display;
        var label = d.label[lang] + (d.unit ? " (" + d.unit + ")" : "");
        var isState = d.kind === "state";
        var xAxis = {
          values: function (u, splits, ax, space, incr) {
            var labels = splits.map(function (t) {
              if (incr >= 86400) return fmt.day(t);
              return (Date.parse(s.end) - Date.parse(s.start)) > 86400000 ? fmt.day(t) + " " + fmt.time(t) : fmt.time(t);
            });
            box.dataset.axis = labels.join("|");
            box.dataset.axisT = splits.join("|");  /* the tick instants, so a test can check the labels */
            return labels;
          },
        };
        /* the x axis is the asked window, not the data's extent: with one point (a fresh demo) uPlot
           would widen a zero span to years ("one point on an axis from 2027 to 2029") */
        var x0 = Date.parse(s.start) / 1000, x1 = Date.parse(s.end) / 1000;
        var opts = {
          width: Math.max(300, box.clientWidth || 600), height: isState ? 160 : 280,
          scales: {x: {time: true, range: function () { return [x0, x1]; }}},
          tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), tz); },
          axes: [xAxis, isState ? {show: false} : {size: 60}],
        };
        var data, codes = [];
        if (isState) {
          codes = Object.keys(d.states).map(Number);
          var value = s.max.map(function (v) { return v == null ? null : Math.round(v); });
          var mixed = s.min.map(function (v, i) { return v != null && s.max[i] != null && v !== s.max[i]; });
          data = [s.t, value.map(function (v) { return v == null ? null : 0.5; })];
          opts.scales.y = {range: [0, 1]};
          opts.series = [{label: lang === "en" ? "Time" : "时间", value: function (u, v) { return v == null ? "—" : fmt.full(v); }},
                         {label: label, stroke: "transparent", points: {show: false},
                          value: function (u, v, si, i) { var c = value[i]; return c == null ? "—" : (d.states[c] ? d.states[c][lang] : String(c)); }}];
          opts.hooks = {drawClear: [function (u) {
            var ctx = u.ctx, top = u.bbox.top, h = u.bbox.height, step = s.step_s;
            ctx.save();
            for (var i = 0; i < s.t.length; i++) {
              if (value[i] == null) continue;
              var x0 = u.valToPos(s.t[i], "x", true), x1 = u.valToPos((s.t[i + 1] != null ? Math.min(s.t[i + 1], s.t[i] + step) : s.t[i] + step), "x", true);
              ctx.globalAlpha = mixed[i] ? 0.45 : 0.85;
              ctx.fillStyle = stateColor(value[i], codes);
              ctx.fillRect(x0, top, Math.max(1, x1 - x0), h);
            }
            ctx.restore();
          }]};
          var seen = {};
          value.forEach(function (v) { if (v != null) seen[v] = true; });
          legend.innerHTML = "";
          Object.keys(seen).map(Number).sort(function (a, b) { return a - b; }).forEach(function (c) {
            var li = document.createElement("li"); li.dataset.code = String(c);
            var sw = document.createElement("span"); sw.className = "swatch"; sw.style.background = stateColor(c, codes);
            li.appendChild(sw);
            li.appendChild(document.createTextNode(d.states[c] ? d.states[c][lang] : String(c)));
            legend.appendChild(li);
          });
          legend.hidden = false;
        } else {
          data = [s.t, s.avg, s.min, s.max];
          opts.series = [{label: lang === "en" ? "Time" : "时间", value: function (u, v) { return v == null ? "—" : fmt.full(v); }},
                         {label: label, stroke: "#1668dc", width: 1.5},
                         {label: lang === "en" ? "min" : "最小", stroke: "rgba(22,104,220,.25)"},
                         {label: lang === "en" ? "max" : "最大", stroke: "rgba(22,104,220,.25)"}];
          opts.bands = [{series: [3, 2], fill: "rgba(22,104,220,.08)"}];
          legend.hidden = true; legend.innerHTML = "";
        }
        if (plot) plot.destroy();
        box.innerHTML = "";
        plot = new uPlot(opts, data, box);
        info.textContent = s.t.length + " · " + s.source + " · " + s.step_s + " s · " + tz;
        box.dataset.kind = d.kind;
        box.dataset.ready = "1";
        box.dataset.points = String(s.t.length);
      })
      .catch(function (err) { info.textContent = String(err); box.dataset.ready = "error"; });
  }

  /* ---- live values of a device: the server sends each value's words (zh and en) ------------ */
  function liveValues() {
    var root = document.getElementById("live-values");
    if (!root || !window.EventSource) return;
    var dot = document.getElementById("live-dot");
    var lang = root.dataset.lang || "zh";
    var chart = document.getElementById("chart");
    var fmt = formatters((chart && chart.dataset.tz) || "Asia/Shanghai", lang);
    var es = new EventSource("/api/v1/devices/" + root.dataset.device + "/live");
    es.addEventListener("values", function (e) {
      var update = JSON.parse(e.data);
      Object.keys(update).forEach(function (k) {
        var dd = root.querySelector('dd[data-metric="' + k.replace(/[^a-z0-9_]/g, "") + '"]');
        if (!dd) return;  /* a metric the page did not list: shown after a reload */
        var v = dd.querySelector(".v");
        if (v) v.textContent = update[k][lang] != null ? update[k][lang] : String(update[k].v);
        dd.title = fmt.full(update[k].t / 1000);
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
