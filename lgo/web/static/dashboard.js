// Services-socles dashboard of the counter page (stats part): GET /v1/stats as a table and one small
// chart per service, plus the CSV export. Separate from app.js; it only shares the counter token
// and the language the page keeps in localStorage. Text goes in with textContent, never as HTML.
"use strict";

(() => {
  const TOKEN_KEY = "lgo.counterToken";
  const LANG_KEY = "lgo.lang";
  const SVG = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);

  const TEXT = {
    fr: {
      title: "Tableau de bord des services socles",
      from: "Du", to: "Au", by: "Par", day: "jour", month: "mois",
      show: "Afficher", csv: "Export CSV", total: "Total", figure: "Indicateur",
      failures: "Échecs par erreur", backlog: "Files d'envoi (maintenant)", none: "aucun",
      queue: "File", pending: "En attente", failed: "En échec", oldest: "Plus ancien en attente",
      source: "Source", error: "Erreur", count: "Nombre",
      loading: "Chargement…", no_token: "Jeton du poste absent : enregistrez-le d'abord.",
      failed_load: "Tableau de bord indisponible ({status}).",
      bad_date: "Date « {value} » invalide : saisir une date réelle au format jj/mm/aaaa.",
      chart: "{service} : {main} (barres) et échecs (rouge) par période",
    },
    en: {
      title: "National services dashboard",
      from: "From", to: "To", by: "By", day: "day", month: "month",
      show: "Show", csv: "CSV export", total: "Total", figure: "Figure",
      failures: "Failures by error", backlog: "Queues (now)", none: "none",
      queue: "Queue", pending: "Waiting", failed: "Failed", oldest: "Oldest waiting",
      source: "Source", error: "Error", count: "Count",
      loading: "Loading…", no_token: "No counter token: save it first.",
      failed_load: "Dashboard unavailable ({status}).",
      bad_date: "Date “{value}” is not valid: type a real date as dd/mm/yyyy.",
      chart: "{service}: {main} (bars) and failures (red) per period",
    },
  };
  // English names of the figures (the API gives the French labels).
  const FIGURE_EN = {
    "eprescription.dispensed": "e-prescriptions executed",
    "eprescription.degraded": "of which in degraded mode",
    "paper.dispensed": "paper prescriptions",
    "eprescription.reports_delivered": "executions reported",
    "eprescription.reports_failed": "executions failed for good",
    "patients.vitale": "patients served (Vitale card)",
    "patients.apcv": "patients served (apCV)",
    "patients.other": "patients served (typed)",
    "patients.new_vitale": "new patients (Vitale card)",
    "patients.new_apcv": "new patients (apCV)",
    "apcv.exchanges": "apCV reads (national service)",
    "ins.insi_calls": "INSi calls",
    "ins.found": "INS found",
    "ins.qualified": "identities qualified",
    "ins.failed": "INSi calls without INS (not found, error)",
    "dmp.delivered": "documents sent to the DMP",
    "dmp.failed": "DMP submissions failed",
    "mss.delivered": "MSSanté messages sent",
    "mss.failed": "MSSanté messages failed",
    "signins.cps": "CPS sign-ins",
    "signins.ecps": "e-CPS sign-ins",
    "vaccinations.recorded": "vaccinations given",
    "vaccination_notes.delivered": "vaccination notes sent to the DMP",
    "vaccination_notes.failed": "vaccination notes failed (DMP)",
    "trod.recorded": "rapid tests (TROD) done",
    "trod.protocol_dispensed": "antibiotics dispensed under protocol (TROD)",
    "trod_results.delivered": "TROD results sent to the DMP",
    "trod_results.failed": "TROD results failed (DMP)",
    "national.calls": "national service calls",
    "national.failed": "national service calls failed",
  };
  // One chart per service: its main figure and its failure figure.
  const SERVICES = [
    { name: "e-prescription", main: "eprescription.dispensed", failed: "eprescription.reports_failed" },
    { name: "apCV / Vitale", main: "patients.vitale", failed: null, second: "patients.apcv" },
    { name: "INSi", main: "ins.qualified", failed: "ins.failed" },
    { name: "DMP", main: "dmp.delivered", failed: "dmp.failed" },
    { name: "MSSanté", main: "mss.delivered", failed: "mss.failed" },
    { name: "CPS / e-CPS", main: "signins.cps", failed: null, second: "signins.ecps" },
    { name: "Vaccination", main: "vaccination_notes.delivered", failed: "vaccination_notes.failed" },
    { name: "TROD", main: "trod_results.delivered", failed: "trod_results.failed" },
    { name: "Services nationaux", main: "national.calls", failed: "national.failed" },
  ];

  const lang = () =>
    (document.documentElement.lang || localStorage.getItem(LANG_KEY)) === "en" ? "en" : "fr";
  const tr = (key, vars = {}) =>
    TEXT[lang()][key].replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ""));

  function el(tag, text, attrs = {}) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
    return node;
  }

  // Dates are typed and shown dd/mm/yyyy whatever the browser's locale (a native date field shows
  // mm/dd/yyyy in an en-US browser); the API takes ISO days.
  const pad = (n) => String(n).padStart(2, "0");

  function frDay(d) {
    return `${pad(d.getDate())}/${pad(d.getMonth() + 1)}/${d.getFullYear()}`;
  }

  function frPeriod(period) {
    // "2026-12-03" → "03/12/2026", "2026-12" → "12/2026".
    const [year, month, day] = String(period).split("-");
    return day ? `${day}/${month}/${year}` : month ? `${month}/${year}` : String(period);
  }

  function frDateTime(iso) {
    const d = new Date(iso);
    return `${frDay(d)} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
  }

  function isoOf(id) {
    // The typed day as ISO, "" when empty; an invalid date throws the French message.
    const typed = $(id).value.trim();
    if (!typed) return "";
    const iso = window.LGO_DATES.parseFrDate(typed);
    if (!iso) throw new Error(tr("bad_date", { value: typed }));
    return iso;
  }

  function query() {
    const params = new URLSearchParams({ by: $("dash-by").value });
    const from = isoOf("dash-from");
    const to = isoOf("dash-to");
    if (from) params.set("from", from);
    if (to) params.set("to", to);
    return params.toString();
  }

  async function get(path) {
    const token = localStorage.getItem(TOKEN_KEY);
    if (!token) throw new Error(tr("no_token"));
    const response = await fetch(path, { headers: { Authorization: `Bearer ${token}` } });
    if (!response.ok) {
      let detail = String(response.status);
      try { detail = (await response.json()).title || detail; } catch (_e) { /* not JSON */ }
      throw new Error(tr("failed_load", { status: detail }));
    }
    return response;
  }

  async function load() {
    const status = $("dash-status");
    status.textContent = tr("loading");
    try {
      const report = await (await get(`/v1/stats?${query()}`)).json();
      render(report);
      status.textContent = "";
    } catch (error) {
      status.textContent = error.message;
    }
  }

  async function exportCsv() {
    const status = $("dash-status");
    try {
      const response = await get(`/v1/stats/export.csv?${query()}`);
      const url = URL.createObjectURL(await response.blob());
      const link = el("a", null, { href: url, download: `lgo-stats-${isoOf("dash-from") || "mois"}.csv` });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 1000);
    } catch (error) {
      status.textContent = error.message;
    }
  }

  function label(figure) {
    return lang() === "en" ? FIGURE_EN[figure.name] || figure.name : figure.label;
  }

  let lastReport = null;

  function render(report) {
    lastReport = report;
    $("dash-charts").replaceChildren(...SERVICES.map((s) => chart(s, report)));
    $("dash-table").replaceChildren(figuresTable(report));
    $("dash-failures").replaceChildren(failuresTable(report), backlogTable(report));
  }

  function figuresTable(report) {
    const table = el("table", null, { class: "dash-table", "data-testid": "dash-figures" });
    const head = el("tr");
    head.append(el("th", tr("figure"), { scope: "col" }));
    for (const bucket of report.buckets) head.append(el("th", frPeriod(bucket.period), { scope: "col" }));
    head.append(el("th", tr("total"), { scope: "col" }));
    const thead = el("thead");
    thead.append(head);
    const tbody = el("tbody");
    for (const figure of report.figures) {
      const row = el("tr", null, { "data-figure": figure.name });
      row.append(el("th", label(figure), { scope: "row" }));
      for (const bucket of report.buckets) row.append(el("td", bucket.figures[figure.name]));
      row.append(el("td", report.totals[figure.name], { class: "total" }));
      tbody.append(row);
    }
    table.append(thead, tbody);
    return table;
  }

  function simpleTable(caption, columns, rows) {
    const table = el("table", null, { class: "dash-table" });
    table.append(el("caption", caption));
    const head = el("tr");
    for (const c of columns) head.append(el("th", c, { scope: "col" }));
    table.append(head);
    for (const cells of rows) {
      const row = el("tr");
      for (const cell of cells) row.append(el("td", cell));
      table.append(row);
    }
    return table;
  }

  function failuresTable(report) {
    const rows = report.failures.map((f) => [f.source, f.error, f.count]);
    if (!rows.length) rows.push(["—", tr("none"), 0]);
    return simpleTable(tr("failures"), [tr("source"), tr("error"), tr("count")], rows);
  }

  function backlogTable(report) {
    const rows = report.backlog.map((q) => [
      q.queue, q.pending, q.failed,
      q.oldest_pending_at ? frDateTime(q.oldest_pending_at) : "—",
    ]);
    return simpleTable(tr("backlog"), [tr("queue"), tr("pending"), tr("failed"), tr("oldest")], rows);
  }

  // A small bar chart: the service's main figure per period (plus a second one stacked, lighter),
  // its failures as red bars beside it.
  function chart(service, report) {
    const width = 180, height = 60, n = Math.max(report.buckets.length, 1);
    const value = (b, name) => (name ? b.figures[name] || 0 : 0);
    const max = Math.max(1, ...report.buckets.map((b) =>
      Math.max(value(b, service.main) + value(b, service.second), value(b, service.failed))));
    const figure = el("figure", null, { class: "dash-chart", "data-service": service.name });
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("role", "img");
    const mainLabel = label(report.figures.find((f) => f.name === service.main) || { name: service.main });
    svg.setAttribute("aria-label", tr("chart", { service: service.name, main: mainLabel }));
    const slot = width / n, bar = Math.max(1, slot * (service.failed ? 0.4 : 0.8));
    report.buckets.forEach((b, i) => {
      let top = height;
      for (const [name, cls] of [[service.main, "main"], [service.second, "second"]]) {
        const h = (value(b, name) / max) * (height - 2);
        if (h > 0) {
          top -= h;
          svg.append(rect(i * slot, top, bar, h, cls, `${frPeriod(b.period)}: ${value(b, name)}`));
        }
      }
      const f = (value(b, service.failed) / max) * (height - 2);
      if (f > 0) svg.append(rect(i * slot + bar, height - f, bar, f, "failed", `${frPeriod(b.period)}: ${value(b, service.failed)}`));
    });
    const total = report.totals[service.main] + (service.second ? report.totals[service.second] : 0);
    const failed = service.failed ? report.totals[service.failed] : 0;
    figure.append(svg, el("figcaption", `${service.name} — ${total}${failed ? ` / ✗ ${failed}` : ""}`));
    return figure;
  }

  function rect(x, y, w, h, cls, title) {
    const node = document.createElementNS(SVG, "rect");
    for (const [k, v] of Object.entries({ x, y, width: w, height: h, class: cls })) node.setAttribute(k, String(v));
    const tip = document.createElementNS(SVG, "title");
    tip.textContent = title;
    node.append(tip);
    return node;
  }

  function applyTexts() {
    for (const node of document.querySelectorAll("#dashboard [data-dash]")) {
      node.textContent = tr(node.getAttribute("data-dash"));
    }
  }

  function init() {
    const root = $("dashboard");
    if (!root) return;
    const today = new Date();
    $("dash-from").value = frDay(new Date(today.getFullYear(), today.getMonth(), 1));
    $("dash-to").value = frDay(today);
    applyTexts();
    $("dash-form").addEventListener("submit", (event) => { event.preventDefault(); load(); });
    $("dash-csv").addEventListener("click", exportCsv);
    root.addEventListener("toggle", () => { if (root.open) { applyTexts(); load(); } });
    // app.js switches the page language by setting <html lang>: follow it without a reload.
    new MutationObserver(() => {
      applyTexts();
      if (lastReport) render(lastReport);
    }).observe(document.documentElement, { attributes: true, attributeFilter: ["lang"] });
  }

  document.addEventListener("DOMContentLoaded", init);
})();
