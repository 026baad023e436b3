/* guanjia admin pages: forms post JSON to the admin API; its 422 errors are shown next to each field.
 *
 * A form with data-api="URL" data-method="POST|PUT|PATCH|DELETE" sends its named fields as JSON:
 * "a.b.c" names nest, data-type="int|float|bool" converts, data-optional leaves an empty field out,
 * checkboxes inside a fieldset[data-list=NAME] become a list; data-type="list" splits a field's text
 * at spaces, commas, semicolons and new lines into a list (a report subscription's recipients).
 * data-shape="roster" sends the checked .shift rows as [{weekday, starts, ends}]; data-shape="profile"
 * sends {hired_on, certifications: [...]} from the .cert rows that have a name. On success the page reloads (it renders from the same
 * read model the API answers from); on failure every {loc, msg} of the error's detail goes to the
 * [data-error-for] element of its field, the rest to the form's .form-error.
 * A field with data-path fills the {name} of its name in data-api and stays out of the body
 * (the day calendar's PUT /…/calendar/{day}).
 * form[data-csv] uploads the chosen file as text/csv and lists the per-line errors. */
(function () {
  "use strict";
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  function put(target, path, value) {
    var keys = path.split("."), obj = target;
    for (var i = 0; i < keys.length - 1; i++) { obj = obj[keys[i]] = obj[keys[i]] || {}; }
    obj[keys[keys.length - 1]] = value;
  }

  function build(form) {
    if (form.dataset.shape === "roster") {
      return Array.prototype.filter.call(form.querySelectorAll(".shift"), function (row) {
        return row.querySelector("input[name=on]").checked;
      }).map(function (row) {
        return {weekday: parseInt(row.dataset.weekday, 10), starts: row.querySelector("input[name=starts]").value,
                ends: row.querySelector("input[name=ends]").value};
      });
    }
    if (form.dataset.shape === "profile") {
      return {hired_on: form.querySelector("input[name=hired_on]").value || null,
              certifications: Array.prototype.filter.call(form.querySelectorAll(".cert"), function (row) {
                return row.querySelector("input[name=name]").value.trim() !== "";
              }).map(function (row) {
                var field = function (name) { return row.querySelector("input[name=" + name + "]").value; };
                return {name: field("name"), number: field("number"), issuer: field("issuer"),
                        valid_until: field("valid_until") || null};
              })};
    }
    var body = {};
    form.querySelectorAll("fieldset[data-list]").forEach(function (set) { put(body, set.dataset.list, []); });
    form.querySelectorAll("input[name], select[name], textarea[name]").forEach(function (el) {
      if (el.dataset.path !== undefined) { return; }
      var list = el.closest("fieldset[data-list]");
      if (list && el.type === "checkbox") {
        if (el.checked) { body[list.dataset.list].push(el.value); }
        return;
      }
      var type = el.dataset.type, value = el.value;
      if (type === "bool") { put(body, el.name, el.checked); return; }
      if (value === "" && el.dataset.optional !== undefined) { return; }
      if (type === "int") { value = value === "" ? null : (/^-?\d+$/.test(value) ? parseInt(value, 10) : value); }
      if (type === "list") { value = value.split(/[\s,;，；]+/).filter(function (v) { return v !== ""; }); }
      if (type === "float") { value = value === "" ? null : (isNaN(Number(value)) ? value : Number(value)); }
      put(body, el.name, value);
    });
    return body;
  }

  function clear(form) {
    form.querySelectorAll("[data-error-for]").forEach(function (el) { el.textContent = ""; });
    form.querySelectorAll("[aria-invalid]").forEach(function (el) { el.removeAttribute("aria-invalid"); });
    var general = form.querySelector(".form-error");
    if (general) { general.textContent = ""; general.hidden = true; }
  }

  var words = {};
  try { words = JSON.parse((document.getElementById("form-words") || {dataset: {}}).dataset.words || "{}"); }
  catch (e) { words = {}; }

  /* the page's own words for pydantic's error type; a domain refusal (value_error) keeps its explanation */
  function say(item) {
    var word = words[item.type];
    if (!word) { return item.msg; }
    return item.type === "value_error" ? word + ": " + item.msg.replace(/^Value error, /, "") : word;
  }

  function show(form, error) {
    var general = form.querySelector(".form-error"), rest = [];
    var detail = Array.isArray(error.detail) ? error.detail : [];
    detail.forEach(function (item) {
      var path = (item.loc || []).slice(1).filter(function (p) { return typeof p === "string"; });
      var spot = null;
      for (var n = path.length; n > 0 && !spot; n--) {
        spot = form.querySelector('[data-error-for="' + path.slice(0, n).join(".") + '"]');
      }
      if (spot) {
        spot.textContent = (spot.textContent ? spot.textContent + "; " : "") + say(item);
        spot.title = item.msg;
        var input = form.querySelector('[name="' + path.join(".") + '"]');
        if (input) { input.setAttribute("aria-invalid", "true"); }
      } else { rest.push(say(item)); }
    });
    if (!detail.length) { rest.push(error.message); }
    if (general && rest.length) { general.textContent = rest.join("; "); general.hidden = false; }
    form.dataset.state = "invalid";
  }

  function send(form) {
    clear(form);
    form.dataset.state = "sending";
    var method = form.dataset.method || "POST";
    var init = {method: method, credentials: "same-origin",
                headers: {"Accept": "application/json", "X-CSRF-Token": csrf}};
    if (method !== "DELETE") {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(build(form));
    }
    var url = form.dataset.api.replace(/\{(\w+)\}/g, function (whole, name) {
      var field = form.querySelector('[data-path][name="' + name + '"]');
      return field ? encodeURIComponent(field.value) : whole;
    });
    fetch(url, init).then(function (resp) {
      if (resp.ok) { form.dataset.state = "saved"; window.location.reload(); return null; }
      return resp.json().then(function (body) { show(form, (body && body.error) || {message: resp.statusText}); },
                              function () { show(form, {message: resp.status + " " + resp.statusText}); });
    }, function (err) { show(form, {message: String(err)}); });
  }

  function upload(form) {
    var file = form.querySelector("input[type=file]").files[0];
    var table = document.getElementById("csv-errors"), ok = document.getElementById("csv-result");
    var failed = document.getElementById("csv-failed");
    var words = document.getElementById("csv-messages").content.firstElementChild.dataset;
    var rows = table.querySelector("tbody");
    rows.textContent = ""; table.hidden = true; ok.hidden = true; failed.hidden = true;
    if (!file) { return; }
    form.dataset.state = "sending";
    file.text().then(function (text) {
      return fetch(form.dataset.csv, {method: "POST", credentials: "same-origin", body: text,
        headers: {"Content-Type": "text/csv", "Accept": "application/json", "X-CSRF-Token": csrf}});
    }).then(function (resp) {
      return resp.json().then(function (body) {
        if (resp.ok) {
          ok.textContent = words.ok.replace("{rows}", body.rows).replace("{created}", body.created)
            .replace("{updated}", body.updated);
          ok.hidden = false; form.dataset.state = "saved"; return;
        }
        var error = body.error || {}, detail = Array.isArray(error.detail) ? error.detail : [];
        failed.textContent = words.failed.replace("{n}", detail.length || 1) + " " + (error.message || "");
        failed.hidden = false;
        detail.forEach(function (e) {
          var tr = document.createElement("tr");
          [e.line, e.column, e.message || e.msg].forEach(function (v) {
            var td = document.createElement("td"); td.textContent = v === undefined ? "" : String(v); tr.appendChild(td);
          });
          rows.appendChild(tr);
        });
        table.hidden = !detail.length;
        form.dataset.state = "invalid";
      });
    });
  }

  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (form.dataset.api) { ev.preventDefault(); send(form); }
    else if (form.dataset.csv) { ev.preventDefault(); upload(form); }
  });
  document.addEventListener("change", function (ev) {
    if (ev.target.matches && ev.target.matches("select[data-autosubmit]")) { ev.target.form.submit(); }
  });
}());
