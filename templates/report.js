(function () {
  "use strict";
  var el = document.getElementById("report-data");
  if (!el) return;
  var data = JSON.parse(el.textContent);
  var F = data.f, R = data.r;
  var V = ["compliant", "noncompliant", "unfiled", "unknown"];
  var VZ = ["合规 compliant", "不合规 noncompliant", "未备案 unfiled", "无法判断 unknown"];
  var PAGE = 100, page = 0, view = R, sortKey = 1, sortDir = 1;
  var q = document.getElementById("f-text"), fv = document.getElementById("f-verdict"),
      fp = document.getElementById("f-province"), tbody = document.getElementById("rows"),
      info = document.getElementById("pager-info"), shown = document.getElementById("shown");
  var provs = {};
  for (var i = 0; i < R.length; i++) provs[R[i][2]] = 1;
  Object.keys(provs).sort().forEach(function (p) {
    var o = document.createElement("option"); o.value = p; o.textContent = p || "—"; fp.appendChild(o);
  });
  function codes(r) { return r[5].map(function (k) { return F[k][0]; }).join(" "); }
  function apply() {
    var t = q.value.trim().toLowerCase(), v = fv.value, p = fp.value;
    view = R.filter(function (r) {
      if (v !== "" && String(r[1]) !== v) return false;
      if (p !== "*" && r[2] !== p) return false;
      if (t && (r[0] + " " + r[3] + " " + codes(r)).toLowerCase().indexOf(t) < 0) return false;
      return true;
    });
    var k = sortKey, d = sortDir;
    view.sort(function (a, b) {
      var x = k === 5 ? a[5].length : a[k], y = k === 5 ? b[5].length : b[k];
      if (x < y) return -d; if (x > y) return d;
      return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
    });
    page = 0; draw();
  }
  function cell(tr, text, cls) {
    var td = document.createElement("td"); if (cls) td.className = cls;
    if (text !== null) td.textContent = text; tr.appendChild(td); return td;
  }
  function lines(td, items) {
    items.forEach(function (s) { var d = document.createElement("div"); d.textContent = s; td.appendChild(d); });
  }
  // Chinese first (when the policy gave it), the English below it.
  function both(td, items) {
    items.forEach(function (p) {
      var d = document.createElement("div"); d.textContent = p[0] || p[1] || "—";
      if (p[0] && p[1]) { var e = document.createElement("div"); e.className = "muted small"; e.textContent = p[1]; d.appendChild(e); }
      td.appendChild(d);
    });
  }
  function draw() {
    var pages = Math.max(1, Math.ceil(view.length / PAGE));
    if (page >= pages) page = pages - 1;
    var frag = document.createDocumentFragment();
    view.slice(page * PAGE, page * PAGE + PAGE).forEach(function (r) {
      var tr = document.createElement("tr");
      cell(tr, r[0]);
      var b = document.createElement("span"); b.className = "badge b-" + V[r[1]]; b.textContent = VZ[r[1]];
      var td = cell(tr, null); td.appendChild(b);
      if (r[4]) { var s = document.createElement("div"); s.className = "muted small"; s.textContent = r[4]; td.appendChild(s); }
      cell(tr, r[2] || "—"); cell(tr, r[3] || "—");
      var fs = r[5].map(function (k) { return F[k]; });
      lines(cell(tr, null, "f"), fs.map(function (f) { return f[0] + " · " + f[1] + (f[4] && f[4] !== "confirmed" ? " (" + f[4] + ")" : ""); }));
      both(cell(tr, null), fs.map(function (f) { return [f[5], f[2]]; }));
      both(cell(tr, null), fs.map(function (f) { return [f[6], f[3]]; }));
      frag.appendChild(tr);
    });
    tbody.textContent = ""; tbody.appendChild(frag);
    info.textContent = "第 " + (page + 1) + " / " + pages + " 页 · page " + (page + 1) + " of " + pages;
    shown.textContent = view.length + " / " + R.length;
    document.getElementById("prev").disabled = page === 0;
    document.getElementById("next").disabled = page >= pages - 1;
  }
  q.addEventListener("input", apply); fv.addEventListener("change", apply); fp.addEventListener("change", apply);
  document.getElementById("prev").addEventListener("click", function () { page--; draw(); });
  document.getElementById("next").addEventListener("click", function () { page++; draw(); });
  Array.prototype.forEach.call(document.querySelectorAll("th button[data-k]"), function (b) {
    b.addEventListener("click", function () {
      var k = Number(b.getAttribute("data-k"));
      if (sortKey === k) sortDir = -sortDir; else { sortKey = k; sortDir = 1; }
      Array.prototype.forEach.call(document.querySelectorAll("th[aria-sort]"), function (th) { th.setAttribute("aria-sort", "none"); });
      b.parentNode.setAttribute("aria-sort", sortDir > 0 ? "ascending" : "descending");
      apply();
    });
  });
  document.getElementById("controls").hidden = false;
  document.getElementById("pager").hidden = false;
  document.getElementById("server-note").hidden = true;
  apply();
  document.documentElement.setAttribute("data-ready", "1");
})();
