// The reference counter page of lgo: plain JavaScript on the local API, no build step.
//
// Security: the counter token comes from the URL fragment (#token=..., never sent to the server)
// or from a form, is kept in localStorage and is only ever sent with relative /v1/ requests to the
// page's own origin. PINs live in one local variable for the length of one request.
"use strict";

(() => {
  const TOKEN_KEY = "lgo.counterToken";
  const LANG_KEY = "lgo.lang";
  const MAX_EVENTS = 40;
  const $ = (id) => document.getElementById(id);

  const state = {
    token: null,
    lang: "fr",
    readers: { degraded: null, readers: [] },
    session: null,
    patient: null,
    patientCard: null, // the Vitale beneficiary the patient came from (for INSi by card)
    vitale: null,
    rx: null,
    decisions: [],
    commitKey: null,
    outbox: { degraded: false, messages: [] },
    degradedReason: null,
    lastEventId: null,
    handledScans: new Set(),
    tokenWaiters: [],
    sseAbort: null,
    pscLogin: null,
    patientNote: null, // the last INSi outcome for this patient
    sessionNote: null, // why the last session closed, until another opens
    rxLoading: null,
    rxGeneration: 0,
    paper: null, // the paper prescription being typed (degraded mode or paper only)
    cardPeople: null, // the beneficiaries of the last card or apCV read, for "switch patient"
  };

  // ------------------------------------------------------------------ i18n

  function t(key, params) {
    const table = window.LGO_I18N[state.lang] || window.LGO_I18N.fr;
    let text = table[key] ?? window.LGO_I18N.fr[key] ?? key;
    for (const [name, value] of Object.entries(params || {})) {
      text = text.split(`{${name}}`).join(String(value ?? ""));
    }
    return text;
  }

  function applyI18n() {
    document.documentElement.lang = state.lang;
    document.title = t("app.title");
    for (const el of document.querySelectorAll("[data-i18n]")) {
      el.textContent = t(el.dataset.i18n);
    }
    for (const el of document.querySelectorAll("[data-i18n-placeholder]")) {
      el.placeholder = t(el.dataset.i18nPlaceholder);
    }
    for (const el of document.querySelectorAll("[data-i18n-aria-label]")) {
      el.setAttribute("aria-label", t(el.dataset.i18nAriaLabel));
    }
    $("lang-toggle").lang = state.lang === "fr" ? "en" : "fr";
    setConn($("conn").dataset.state);
  }

  function toggleLanguage() {
    state.lang = state.lang === "fr" ? "en" : "fr";
    localStorage.setItem(LANG_KEY, state.lang);
    applyI18n();
    renderAll();
  }

  // ------------------------------------------------------------------ small DOM helpers

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  // Dates are always written the French way (dd/mm/yyyy), whatever the browser's locale: the
  // page never hands a date to toLocale*String or to a native date field, which follow the locale.
  const pad2 = (n) => String(n).padStart(2, "0");

  function frDate(raw) {
    // "19991231" or "1999-12-31" (or an ISO timestamp) → "31/12/1999"; lunar dates keep their zeros.
    if (!raw) return "";
    const digits = String(raw).slice(0, 10).replaceAll("-", "");
    if (!/^\d{8}$/.test(digits)) return String(raw);
    return `${digits.slice(6, 8)}/${digits.slice(4, 6)}/${digits.slice(0, 4)}`;
  }

  function frDay(when) {
    // A timestamp shown as the counter's local day.
    const d = new Date(when);
    return `${pad2(d.getDate())}/${pad2(d.getMonth() + 1)}/${d.getFullYear()}`;
  }

  function parseFrDate(text) {
    // "31/12/2026" (or "31122026", "2026-12-31") → "2026-12-31"; anything else → null.
    const value = String(text || "").trim();
    let m = /^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})$/.exec(value);
    if (!m) m = /^(\d{2})(\d{2})(\d{4})$/.exec(value);
    if (m) return isoDay(Number(m[3]), Number(m[2]), Number(m[1]));
    m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
    return m ? isoDay(Number(m[1]), Number(m[2]), Number(m[3])) : null;
  }

  function isoDay(year, month, day) {
    const d = new Date(Date.UTC(year, month - 1, day));
    if (d.getUTCFullYear() !== year || d.getUTCMonth() !== month - 1 || d.getUTCDate() !== day) return null;
    return `${year}-${pad2(month)}-${pad2(day)}`;
  }

  // Shared with dashboard.js (loaded after this file): one reading of a typed French date.
  window.LGO_DATES = Object.freeze({ frDate, parseFrDate });

  function clock(iso) {
    const when = iso ? new Date(iso) : new Date();
    return `${pad2(when.getHours())}:${pad2(when.getMinutes())}:${pad2(when.getSeconds())}`;
  }

  function focusScan() {
    $("scan-input").focus();
  }

  // ------------------------------------------------------------------ API client

  class ApiError extends Error {
    constructor(status, problem) {
      super(problem.title || `HTTP ${status}`);
      this.status = status;
      this.problem = problem;
    }

    get slug() {
      const type = this.problem.type || "";
      return type.startsWith("urn:lgo:problem:") ? type.slice("urn:lgo:problem:".length) : "";
    }
  }

  function problemText(error) {
    if (!(error instanceof ApiError)) return t("error.network");
    const p = error.problem;
    const parts = [p.title || t("error.generic", { status: error.status })];
    if (p.detail) parts.push(p.detail);
    for (const refusal of p.refusals || []) {
      parts.push(t("problem.line", { n: refusal.line_no, message: refusal.message || refusal.code }));
    }
    for (const item of (p.errors || []).slice(0, 3)) {
      parts.push(`${(item.loc || []).slice(1).join(".")} : ${item.msg}`);
    }
    return parts.join(" — ");
  }

  function problemNode(error) {
    return el("p", { class: "problem", role: "alert", text: problemText(error) });
  }

  async function request(method, path, { body, headers } = {}) {
    // Only relative /v1 paths: the token is never sent anywhere but to this daemon.
    if (!path.startsWith("/v1/")) throw new Error(`refused path ${path}`);
    const sent = { Authorization: `Bearer ${state.token}`, Accept: "application/json", ...headers };
    if (body !== undefined) sent["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, {
        method, headers: sent, cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer",
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (_) {
      throw new ApiError(0, { title: t("error.network") });
    }
    if (response.status === 401) askToken(true);
    const type = response.headers.get("content-type") || "";
    let data = null;
    if (response.status !== 204) {
      data = type.includes("json") ? await response.json().catch(() => null) : await response.text();
    }
    if (!response.ok) {
      const problem = data && typeof data === "object" ? data : {};
      if (!problem.title) problem.title = t("error.generic", { status: response.status });
      throw new ApiError(response.status, problem);
    }
    return { data, headers: response.headers };
  }

  async function api(method, path, body) {
    return (await request(method, path, { body })).data;
  }

  // ------------------------------------------------------------------ token

  function takeTokenFromFragment() {
    const params = new URLSearchParams(location.hash.slice(1));
    const token = params.get("token");
    if (!token) return;
    localStorage.setItem(TOKEN_KEY, token);
    params.delete("token");
    const rest = params.toString();
    history.replaceState(null, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
  }

  function askToken(rejected) {
    localStorage.removeItem(TOKEN_KEY);
    state.token = null;
    if (state.sseAbort) state.sseAbort.abort();
    $("token-error").hidden = !rejected;
    const dialog = $("token-dialog");
    if (!dialog.open) dialog.showModal();
    $("token-input").focus();
  }

  function waitForToken() {
    if (state.token) return Promise.resolve();
    return new Promise((resolve) => state.tokenWaiters.push(resolve));
  }

  function onTokenSubmit(event) {
    event.preventDefault();
    const value = $("token-input").value.trim();
    if (!value) return;
    $("token-input").value = "";
    localStorage.setItem(TOKEN_KEY, value);
    state.token = value;
    $("token-dialog").close();
    for (const resolve of state.tokenWaiters.splice(0)) resolve();
    refreshAll();
    focusScan();
  }

  // ------------------------------------------------------------------ live events (SSE over fetch)

  function setConn(kind) {
    const conn = $("conn");
    conn.dataset.state = kind;
    conn.textContent = t(`conn.${kind}`);
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  async function streamEvents() {
    let backoff = 500;
    for (;;) {
      await waitForToken();
      setConn("connecting");
      const abort = new AbortController();
      state.sseAbort = abort;
      try {
        const headers = { Authorization: `Bearer ${state.token}`, Accept: "text/event-stream" };
        if (state.lastEventId) headers["Last-Event-ID"] = state.lastEventId;
        const response = await fetch("/v1/events", {
          headers, cache: "no-store", credentials: "omit", signal: abort.signal,
        });
        if (response.status === 401) {
          askToken(true);
          continue;
        }
        if (!response.ok || !response.body) throw new Error(`events: ${response.status}`);
        setConn("online");
        backoff = 500;
        refreshAll(); // whatever happened while we were away
        await readSse(response.body, onServerEvent);
      } catch (_) {
        // fall through to the reconnect below
      }
      setConn("offline");
      await sleep(backoff + Math.random() * backoff * 0.5);
      backoff = Math.min(backoff * 2, 15000);
    }
  }

  // A text/event-stream parser (WHATWG HTML §9.2): lines end in CR, LF or CRLF; a blank line
  // dispatches; lines starting with ":" are comments (the daemon's keep-alives).
  async function readSse(body, dispatch) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let pending = { type: "", data: [] };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      for (;;) {
        const match = /\r\n|\r|\n/.exec(buffer);
        if (!match) break;
        if (match[0] === "\r" && match.index === buffer.length - 1) break; // maybe CRLF split
        const line = buffer.slice(0, match.index);
        buffer = buffer.slice(match.index + match[0].length);
        if (line === "") {
          if (pending.data.length) dispatch(pending.type || "message", pending.data.join("\n"));
          pending = { type: "", data: [] };
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let text = colon < 0 ? "" : line.slice(colon + 1);
        if (text.startsWith(" ")) text = text.slice(1);
        if (field === "data") pending.data.push(text);
        else if (field === "event") pending.type = text;
        else if (field === "id" && !text.includes("\0")) state.lastEventId = text;
      }
    }
  }

  function logEvent(text, at) {
    const list = $("events");
    list.prepend(el("li", {}, el("time", { text: clock(at) }), text));
    while (list.children.length > MAX_EVENTS) list.lastChild.remove();
  }

  function cardLabel(kind) {
    return t(`card.${kind || "unknown"}`);
  }

  function onServerEvent(type, raw) {
    let event;
    try {
      event = JSON.parse(raw);
    } catch (_) {
      return;
    }
    const data = event.data || {};
    const handler = EVENT_HANDLERS[type];
    if (handler) handler(data, event.at);
  }

  const EVENT_HANDLERS = {
    "reader.added": (d, at) => { logEvent(t("ev.reader.added", d), at); refreshReaders(); },
    "reader.removed": (d, at) => { logEvent(t("ev.reader.removed", d), at); refreshReaders(); },
    "hardware.degraded": () => { $("banner-hardware").hidden = false; refreshReaders(); },
    "hardware.recovered": () => { $("banner-hardware").hidden = true; refreshReaders(); },
    "card.inserted": (d, at) => {
      logEvent(t("ev.card.inserted", { card: cardLabel(d.kind), reader: d.reader }), at);
      refreshReaders();
      if (isVitale(d.kind)) onVitaleChange(d.reader, "patient.card.inserted");
      if (d.kind === "cps") refreshSession().then(() => {
        if (!state.session?.session && !$("pin-form").hidden) $("pin-input").focus();
      });
    },
    "card.removed": (d, at) => {
      logEvent(t("ev.card.removed", d), at);
      refreshReaders();
      refreshSession();
      if (isVitale(d.kind) || (state.vitale && state.vitale.reader === d.reader)) {
        onVitaleChange(d.reader, "patient.card.removed");
      }
    },
    "vitale.read": (d, at) => { logEvent(t("ev.vitale.read", { n: d.beneficiaries }), at); loadVitale(d.read_id); },
    "vitale.error": (d, at) => {
      const text = t(`vitale.${d.code}`);
      const message = t("ev.vitale.error", { code: text.startsWith("vitale.") ? d.code : text });
      logEvent(message, at);
      renderBeneficiaries(message);
    },
    "session.opened": (_d, at) => { logEvent(t("ev.session.opened"), at); refreshSession(); },
    "session.closed": (d, at) => {
      const reason = t(`session.reason.${d.reason}`);
      logEvent(t("ev.session.closed", { reason }), at);
      state.sessionNote = d.reason;
      refreshSession();
    },
    "scan.received": (d, at) => {
      logEvent(t("ev.scan.received", { kind: t(`kind.${d.kind}`) }), at);
      if (!state.handledScans.has(d.id)) handleScan(d);
    },
    "dispensation.committed": (_d, at) => { logEvent(t("ev.dispensation.committed"), at); refreshOutbox(); refreshOrdonnancier(); },
    "outbox.delivered": (d, at) => { logEvent(t("ev.outbox.delivered", d), at); refreshOutbox(); onDelivered(d.dispensation_id); },
    "outbox.failed": (d, at) => { logEvent(t("ev.outbox.failed", d), at); refreshOutbox(); },
    "outbox.degraded": (d, at) => {
      logEvent(t(d.active ? "ev.outbox.degraded.on" : "ev.outbox.degraded.off"), at);
      state.outbox.degraded = Boolean(d.active);
      state.degradedReason = d.active ? d.reason || null : null;
      renderDegraded();
      refreshOutbox();
    },
    "documents.degraded": (d) => { $("banner-documents").hidden = !d.active; },
    "patient.identity_changed": (d) => {
      if (state.patient && state.patient.id === d.patient_id) reloadPatient();
    },
    "stream.overflow": () => refreshAll(),
  };

  // ------------------------------------------------------------------ the page follows the cards

  function isVitale(kind) {
    return String(kind || "").startsWith("vitale");
  }

  function onVitaleChange(reader, noteKey) {
    // A Vitale card going out or in means another patient may be at the counter: the prescription
    // and the lines in progress go, and so does a patient chosen from the card that left.
    if (state.vitale && state.vitale.source === "vitale" && state.vitale.reader === reader) state.vitale = null;
    if (state.cardPeople && state.cardPeople.reader === reader) state.cardPeople = null;
    if (state.patientCard && state.patientCard.reader === reader) {
      state.patient = null;
      state.patientCard = null;
      state.patientNote = null;
      renderPatient();
    }
    // A swap is a removal then an insertion: the second one finds nothing left and keeps the notice.
    const hadWork = Boolean(state.rx || state.rxLoading || state.paper);
    if (hadWork) clearPrescription();
    renderBeneficiaries(t(noteKey));
    if (hadWork) {
      $("rx").prepend(el("p", { class: "banner warn", id: "rx-cleared", role: "status", text: t("rx.cleared.card") }));
      $("rx").querySelector(".hint")?.remove();
    }
  }

  function clearPrescription() {
    state.rxGeneration += 1; // an answer still on its way belongs to the previous patient
    state.rx = null;
    state.rxLoading = null;
    state.decisions = [];
    state.commitKey = null;
    state.prescriberAcknowledged = false;
    state.paper = null;
    $("commit-result").replaceChildren();
    $("rx").replaceChildren();
    renderRx();
    renderCommit();
  }

  // ------------------------------------------------------------------ readers

  async function refreshReaders() {
    try {
      state.readers = await api("GET", "/v1/readers");
    } catch (error) {
      state.readers = { degraded: problemText(error), readers: [] };
    }
    renderReaders();
  }

  function renderReaders() {
    const list = $("readers");
    list.replaceChildren();
    const { degraded, readers } = state.readers;
    $("banner-hardware").hidden = !degraded;
    if (degraded) list.append(el("li", { class: "error", text: t("readers.degraded", { reason: degraded }) }));
    if (!readers.length && !degraded) list.append(el("li", { class: "hint", text: t("readers.none") }));
    for (const reader of readers) {
      list.append(el("li", { "data-reader": reader.name, "data-card": reader.card_kind || "" },
        el("span", { class: "name", text: reader.name }),
        reader.card_present ? cardLabel(reader.card_kind) : t("readers.empty")));
    }
  }

  // ------------------------------------------------------------------ professional session

  async function refreshSession() {
    try {
      state.session = await api("GET", "/v1/cps/session");
    } catch (error) {
      state.session = { kind: null, session: null, cps_readers: [], error };
    }
    renderSession();
  }

  function renderSession() {
    const view = state.session || { session: null, cps_readers: [] };
    const open = view.session;
    if (open) state.sessionNote = null;
    const note = state.sessionNote
      ? t("session.closed", { reason: t(`session.reason.${state.sessionNote}`) }) : null;
    const stateLine = $("session-state");
    const panel = $("session-panel");
    panel.dataset.session = open ? "open" : "closed";
    if (open) {
      const who = open.professional || {};
      stateLine.className = "state ok";
      stateLine.replaceChildren(
        t("session.open", { kind: open.kind === "ecps" ? "e-CPS" : "CPS", name: `${who.family_name} ${who.given_name}` }),
        el("br"), `${t("session.rpps", { rpps: who.rpps })} · ${t("session.since", { time: clock(open.opened_at) })}`);
    } else {
      stateLine.className = "state";
      stateLine.textContent = note ? `${note} ${t("session.none")}` : t("session.none");
    }
    $("session-close").hidden = !open;
    const cpsReader = (view.cps_readers || [])[0];
    $("pin-form").hidden = Boolean(open) || !cpsReader;
    $("cps-present").textContent = cpsReader ? t("session.cps.present", { reader: cpsReader }) : "";
    $("cps-absent").hidden = Boolean(open) || Boolean(cpsReader);
    $("psc-form").hidden = Boolean(open);
    if (open) {
      $("pin-message").textContent = "";
      $("pin-confirm-row").hidden = true;
      $("pin-confirm").checked = false;
    }
  }

  async function onPinSubmit(event) {
    event.preventDefault();
    const input = $("pin-input");
    const pin = input.value;
    input.value = ""; // cleared at once: never kept in the page
    const reader = (state.session?.cps_readers || [])[0] || null;
    const confirm = $("pin-confirm").checked;
    const message = $("pin-message");
    message.textContent = "";
    try {
      await api("POST", "/v1/cps/session", { kind: "cps", pin, reader, confirm_final_try: confirm });
      await refreshSession();
      focusScan();
    } catch (error) {
      if (error.slug === "cps-pin-incorrect") {
        message.textContent = t("pin.wrong", { n: error.problem.tries_left ?? "?" });
      } else if (error.slug === "cps-pin-final-try") {
        $("pin-confirm-row").hidden = false;
        message.textContent = `${problemText(error)} — ${t("pin.final")}`;
      } else {
        message.textContent = problemText(error);
      }
      input.focus();
    }
  }

  async function closeSession() {
    try {
      await api("DELETE", "/v1/cps/session");
    } catch (error) {
      $("session-state").textContent = problemText(error);
    }
    refreshSession();
  }

  async function onPscSubmit(event) {
    event.preventDefault();
    const hint = $("psc-hint").value.trim();
    const message = $("psc-message");
    try {
      const started = await api("POST", "/v1/cps/session/psc/ciba", { login_hint: hint });
      state.pscLogin = started.login_id;
      message.textContent = t("psc.pending");
      $("psc-cancel").hidden = false;
      pollPsc(started.login_id, Math.max(started.interval, 1));
    } catch (error) {
      message.textContent = problemText(error);
    }
  }

  async function pollPsc(loginId, interval) {
    const message = $("psc-message");
    while (state.pscLogin === loginId) {
      await sleep(interval * 1000);
      if (state.pscLogin !== loginId) return;
      try {
        const outcome = await api("POST", `/v1/cps/session/psc/ciba/${encodeURIComponent(loginId)}/poll`);
        if (outcome.status === "approved") {
          state.pscLogin = null;
          message.textContent = "";
          $("psc-cancel").hidden = true;
          await refreshSession();
          focusScan();
          return;
        }
      } catch (error) {
        state.pscLogin = null;
        message.textContent = problemText(error);
        $("psc-cancel").hidden = true;
        return;
      }
    }
  }

  async function cancelPsc() {
    const loginId = state.pscLogin;
    state.pscLogin = null;
    $("psc-cancel").hidden = true;
    $("psc-message").textContent = "";
    if (loginId) await api("DELETE", `/v1/cps/session/psc/ciba/${encodeURIComponent(loginId)}`).catch(() => null);
  }

  // ------------------------------------------------------------------ patient

  async function loadVitale(readId) {
    try {
      state.vitale = await api("GET", `/v1/readers/vitale/${encodeURIComponent(readId)}`);
      state.vitale.source = "vitale";
    } catch (error) {
      state.vitale = null;
      // 404: the card left before we asked (or an old event replayed on reconnect): nothing to show.
      renderBeneficiaries(error.status === 404 ? "" : problemText(error));
      return;
    }
    offerBeneficiaries();
  }

  async function loadApcv(scanId) {
    // The daemon exchanges the single-use token itself: the page only names the scan.
    renderBeneficiaries(t("scan.kind.apcv"));
    try {
      state.vitale = await api("POST", "/v1/apcv/exchange", { scan_id: scanId });
      state.vitale.source = "apcv";
    } catch (error) {
      state.vitale = null;
      $("beneficiaries").replaceChildren(problemNode(error));
      return;
    }
    offerBeneficiaries();
  }

  async function offerBeneficiaries() {
    // Kept while the card is in (or until the next apCV): the page offers to switch to the
    // prescription's patient when the card has them.
    const people = state.vitale.beneficiaries;
    state.cardPeople = { source: state.vitale.source, reader: state.vitale.reader || null, people };
    refreshCardMatch();
    renderBeneficiaries();
    if (people.length === 1) await chooseBeneficiary(people[0]);
    else renderRx();
  }

  function renderBeneficiaries(note) {
    const box = $("beneficiaries");
    box.replaceChildren();
    if (note) box.append(el("p", { class: "hint", text: note }));
    if (!state.vitale || state.vitale.beneficiaries.length < 2) return;
    if (state.vitale.chosen) {
      // Chosen: the list folds away (the counter screen is small); it comes back on demand.
      box.append(el("p", { class: "row" }, el("button", { type: "button", id: "beneficiaries-again",
        onclick: () => { state.vitale.chosen = false; renderBeneficiaries(); }, text: t("patient.card.again") })));
      return;
    }
    box.append(el("p", { class: "hint", text: t(state.vitale.source === "apcv" ? "patient.apcv" : "patient.card") }));
    const list = el("ul", { class: "results", id: "beneficiary-list" });
    state.vitale.beneficiaries.forEach((person, index) => {
      // Keys 1..9 choose (onKey): the number is shown in front of each beneficiary.
      list.append(el("li", { "data-key": index < 9 ? index + 1 : null },
        el("span", {}, index < 9 ? el("kbd", { text: String(index + 1) }) : null, " ",
          el("strong", { text: `${person.family_name} ${person.given_name}` }),
          ` · ${t("patient.born", { date: frDate(person.birth_date_raw) })} · ${t("patient.rank", { rank: person.rank })}`),
        el("button", { type: "button", onclick: () => chooseBeneficiary(person), text: t("patient.choose") })));
    });
    box.append(list);
    // The focus goes to the list, out of the scan field, so the number keys choose at once (not
    // when the pharmacist is typing elsewhere, e.g. a patient search).
    const active = document.activeElement;
    if (!active || active === document.body || active.id === "scan-input" || box.contains(active)) {
      list.querySelector("button")?.focus();
    }
  }

  function chooseByNumber(event) {
    // 1..9 picks a beneficiary while the list is shown, never from a text field: a digit typed
    // in the scan field is the start of a prescription number (F2 goes back to the field).
    if (!/^[1-9]$/.test(event.key) || event.ctrlKey || event.altKey || event.metaKey) return false;
    if (!state.vitale || state.vitale.chosen || state.vitale.beneficiaries.length < 2) return false;
    const target = event.target;
    const typing = target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement
      || target instanceof HTMLSelectElement || (target instanceof HTMLElement && target.isContentEditable);
    if (typing) return false;
    const person = state.vitale.beneficiaries[Number(event.key) - 1];
    if (!person) return false;
    event.preventDefault();
    chooseBeneficiary(person);
    return true;
  }

  async function chooseBeneficiary(person) {
    const source = state.vitale?.source || state.cardPeople?.source || "vitale";
    const reader = source === "vitale" ? state.vitale?.reader || state.cardPeople?.reader || null : null;
    try {
      const patient = await api("POST", "/v1/patients", {
        birth_name: person.family_name, given_names: person.given_name,
        birth_date: person.birth_date_raw, nir: person.nir, source, rank: person.rank || 1,
      });
      state.patientCard = { ...person, reader };
      if (state.vitale?.source === "apcv") {
        state.vitale = null; // an apCV read is single-use: nothing left to choose from
      } else if (state.vitale) {
        state.vitale.chosen = true;
      }
      renderBeneficiaries();
      setPatient(patient);
      focusScan();
    } catch (error) {
      $("patient-current").replaceChildren(problemNode(error));
    }
  }

  function setPatient(patient) {
    const changed = !state.patient || state.patient.id !== patient.id;
    if (changed) state.patientNote = null;
    state.patient = patient;
    state.commitKey = null;
    $("patient-results").replaceChildren();
    renderPatient();
    // Another patient: the prescription is read again for them (what is already covered for this
    // patient counts in what may be delivered today), and checked against them.
    if (changed && state.rx && !state.rx.degraded) openPrescription(state.rx.prescription_id);
    else {
      if (changed && state.rx) refreshMatch();
      renderRx();
    }
    renderCommit();
  }

  async function reloadPatient() {
    if (!state.patient) return;
    try {
      setPatient(await api("GET", `/v1/patients/${encodeURIComponent(state.patient.id)}`));
    } catch (error) {
      $("patient-current").append(problemNode(error));
    }
  }

  function renderPatient() {
    const note = state.patientNote;
    const box = $("patient-current");
    const panel = $("patient-panel");
    const p = state.patient;
    panel.dataset.patient = p ? p.id : "";
    if (!p) {
      box.replaceChildren(el("p", { class: "hint", text: t("patient.none") }));
      return;
    }
    const name = `${p.used_name && p.used_name !== p.birth_name ? `${p.used_name} (${p.birth_name})` : p.birth_name} ${p.given_names}`;
    box.replaceChildren(el("div", { class: "patient-card", id: "patient-card" },
      el("div", {}, el("span", { class: "name", text: name }),
        ` · ${t("patient.born", { date: frDate(p.birth_date) })}${p.nir ? ` · NIR ${p.nir}` : ""}`),
      el("div", {},
        el("span", { class: "badge", id: "identity-status", "data-status": p.identity_status,
          text: t("patient.status", { label: p.identity_status_label || p.identity_status }) }), " ",
        el("span", { class: `badge ${p.ins_usable ? "good" : "bad"}`,
          text: p.ins_usable ? `${t("patient.ins.usable")} ${p.ins ? p.ins.matricule : ""}` : t("patient.ins.unusable") })),
      el("p", { class: "row" },
        el("button", { type: "button", onclick: () => insCall("retrieve"), text: t("patient.ins.retrieve") }),
        p.ins ? el("button", { type: "button", onclick: () => insCall("verify"), text: t("patient.ins.verify") }) : null,
        el("button", { type: "button", onclick: () => { state.patient = null; state.patientCard = null; state.patientNote = null; renderPatient(); renderRx(); renderCommit(); $("ps-name").focus(); },
          text: t("patient.clear") })),
      documentForm(p),
      note ? el("p", { class: "hint", text: note }) : null));
  }

  const DOCUMENTS = ["cni", "passeport", "titre_sejour", "livret_famille_mineur", "acte_naissance_mineur"];

  function documentForm(p) {
    // The identity document seen at the counter (a high-trust one qualifies a recovered INS).
    // The daemon records its kind, the time and the pharmacist's RPPS.
    const checked = p.document_checked_at
      ? el("p", { class: "hint", id: "doc-checked", text: t("doc.checked", { date: frDay(p.document_checked_at) }) }) : null;
    const select = el("select", { id: "doc-kind" },
      el("option", { value: "", text: t("doc.choose") }),
      DOCUMENTS.map((kind) => el("option", { value: kind, text: t(`doc.${kind}`) })));
    const form = el("form", { id: "doc-form", class: "row", autocomplete: "off", onsubmit: recordDocument },
      el("label", { for: "doc-kind", class: "inline-label", text: t("doc.label") }), select,
      el("button", { type: "submit", text: t("doc.submit") }));
    return el("div", { class: "doc" }, form, checked, el("p", { id: "doc-message", role: "status" }));
  }

  async function recordDocument(event) {
    event.preventDefault();
    const p = state.patient;
    const kind = $("doc-kind").value;
    if (!p) return;
    if (!kind) {
      $("doc-message").replaceChildren(el("span", { class: "error", text: t("doc.need") }));
      return;
    }
    try {
      const view = await api("POST", `/v1/patients/${encodeURIComponent(p.id)}/identity-documents`, { document: kind });
      if (view && view.id) state.patient = view;
      state.patientNote = t("doc.recorded", { document: t(`doc.${kind}`), status: view.identity_status_label || view.identity_status || "" });
      renderPatient();
      renderRx();
      renderCommit();
    } catch (error) {
      $("doc-message").replaceChildren(problemNode(error));
    }
  }

  async function insCall(mode) {
    const p = state.patient;
    if (!p) return;
    const body = { mode };
    const card = state.patientCard;
    if (mode === "retrieve" && card && card.nir) body.vitale = { individual_nir: card.nir, rank: card.rank || 1 };
    try {
      const view = await api("POST", `/v1/patients/${encodeURIComponent(p.id)}/ins`, body);
      state.patient = view.id ? view : state.patient;
      state.patientNote = t("patient.ins.result", { outcome: view.identity_status_label || view.identity_status || "" });
      renderPatient();
    } catch (error) {
      renderPatient();
      $("patient-current").append(problemNode(error));
    }
  }

  async function onPatientSearch(event) {
    event.preventDefault();
    const params = new URLSearchParams();
    const name = $("ps-name").value.trim();
    // Typed as dd/mm/yyyy (the field's hint) or as the API's AAAAMMJJ.
    const typedBirth = $("ps-birth").value.trim();
    const birth = /^\d{8}$/.test(typedBirth) ? typedBirth : (parseFrDate(typedBirth) || typedBirth).replaceAll("-", "");
    const nir = $("ps-nir").value.trim();
    if (name) params.set("name", name);
    if (birth) params.set("birth_date", birth);
    if (nir) params.set("nir", nir);
    params.set("limit", "20");
    const list = $("patient-results");
    try {
      const found = (await api("GET", `/v1/patients?${params}`)).patients;
      list.replaceChildren();
      if (!found.length) list.append(el("li", { class: "hint", text: t("patient.search.none") }));
      for (const p of found) {
        list.append(el("li", {},
          el("span", {}, el("strong", { text: `${p.birth_name} ${p.given_names}` }),
            ` · ${t("patient.born", { date: frDate(p.birth_date) })} · ${p.identity_status_label || p.identity_status}`),
          el("button", { type: "button", onclick: () => { state.patientCard = null; setPatient(p); focusScan(); }, text: t("patient.choose") })));
      }
    } catch (error) {
      list.replaceChildren(el("li", {}, problemNode(error)));
    }
  }

  // ------------------------------------------------------------------ scans

  async function onScanSubmit(event) {
    event.preventDefault();
    const input = $("scan-input");
    const payload = input.value.trim();
    if (!payload) return;
    input.value = "";
    try {
      const record = await api("POST", "/v1/scans", { payload });
      if (!state.handledScans.has(record.id)) handleScan(record);
    } catch (error) {
      showRxProblem(error);
    }
    focusScan();
  }

  function handleScan(record) {
    state.handledScans.add(record.id);
    const fields = record.fields || {};
    switch (record.kind) {
      case "eprescription":
        openPrescription(fields.prescription_id);
        break;
      case "ean13_cip":
        logEvent(t("scan.kind.ean13_cip", { cip: fields.cip13 }));
        fillCip(fields.cip13);
        break;
      case "gs1_datamatrix":
        logEvent(t("scan.kind.gs1_datamatrix", { gtin: fields.gtin }));
        if (fields.gtin && fields.gtin.startsWith("0")) fillCip(fields.gtin.slice(1));
        break;
      case "apcv":
        loadApcv(record.id);
        break;
      default:
        // The daemon says why in French (reason_label); the code itself is for machines.
        logEvent(t(`scan.kind.${record.kind}`, { reason: record.reason_label || record.reason || "" }));
    }
  }

  function fillCip(cip) {
    // A scanned box fills the first undecided line's CIP13 field.
    if (!state.rx || !cip) return;
    const target = state.decisions.find((d) => !d.cip13 && d.intervention !== "not_dispensed");
    if (!target) return;
    target.cip13 = cip;
    renderRx();
  }

  // ------------------------------------------------------------------ prescription

  function showRxProblem(error, rxId) {
    const nodes = [problemNode(error), paperButton()];
    // The e-prescription service is down: the pharmacist types the paper copy (degraded mode).
    if (rxId && ["eprescription-unavailable", "national-service-unavailable", "national-service-timeout"].includes(error.slug)) {
      nodes.push(el("button", { type: "button", id: "paper-open-copy", onclick: () => openPaper(rxId), text: t("paper.open.copy") }));
    }
    $("rx").replaceChildren(...nodes);
  }

  async function openPrescription(id) {
    const rxId = String(id || "").replace(/\s+/g, "").toUpperCase();
    // The page's own scan also comes back as a scan.received event: open each id once at a time.
    if (!rxId || state.rxLoading === rxId) return;
    clearPrescription();
    const generation = state.rxGeneration;
    state.rxLoading = rxId;
    $("rx").replaceChildren(el("p", { class: "hint", id: "rx-loading", text: t("rx.loading") }));
    let rx;
    let matchedFor = null;
    try {
      // With the patient at the counter, the view counts what is already covered for them.
      matchedFor = state.patient?.id || null;
      const who = matchedFor ? `?patient_id=${encodeURIComponent(matchedFor)}` : "";
      rx = await api("GET", `/v1/prescriptions/${encodeURIComponent(rxId)}${who}`);
    } catch (error) {
      if (generation === state.rxGeneration) showRxProblem(error, rxId);
      return;
    } finally {
      if (state.rxLoading === rxId) state.rxLoading = null;
    }
    if (generation !== state.rxGeneration) return; // a card went in or out meanwhile
    rx.matchedFor = matchedFor;
    state.rx = rx;
    state.decisions = rx.lines.map(defaultDecision);
    renderRx();
    renderCommit();
    refreshCardMatch();
    if (state.patient && state.patient.id !== matchedFor) refreshMatch(); // chosen meanwhile
  }

  // What the rules allow today for a line (absent from an older daemon: then nothing is blocked).
  function deliverable(line) {
    return line.deliverable || { allowed: true, max_days: null, reasons: [], overridable: false };
  }

  function needsInput(line) {
    return Boolean(line.posology && line.posology.needs_pharmacist_input);
  }

  function defaultDecision(line) {
    const rules = deliverable(line);
    const refused = !rules.allowed;
    const blocked = refused && !rules.overridable;
    const nothingLeft = line.remaining_days === 0;
    const proposal = refused ? null : line.proposal;
    const pack = proposal?.packs?.[0];
    const cap = rules.max_days ?? Math.min(line.remaining_days, line.duration_days);
    const firstReason = (rules.reasons || [])[0];
    return {
      line_no: line.line_no,
      blocked, // the rules refuse it and nobody may lift that: not dispensed, nothing to choose
      intervention: blocked || nothingLeft ? "not_dispensed" : "unchanged",
      days: proposal?.days ?? (needsInput(line) ? "" : cap),
      cip13: pack?.cip13 ?? (/^\d{13}$/.test(line.product_code) ? line.product_code : ""),
      boxes: proposal ? proposal.packs.reduce((sum, p) => sum + p.count, 0) : null,
      reason: blocked ? (firstReason?.message || t("rx.blocked")) : nothingLeft ? t("rx.warn.nothing_left") : "",
      agreement: "",
      // {code, reason}: a refusal the pharmacist may lift, with a reason recorded with their RPPS.
      override: refused && rules.overridable ? { code: firstReason?.code || "", reason: "" } : null,
      input: needsInput(line) ? { unitsPerDay: "", duration: "" } : null,
      sub: { cip13: "", name: "", form: "", units: "" },
    };
  }

  function renderRx() {
    const rx = state.rx;
    const box = $("rx");
    if (state.paper) {
      box.replaceChildren(paperForm());
      return;
    }
    if (!rx) {
      // A problem, a "cleared" notice or a load in progress stays until something replaces it.
      if (!box.querySelector(".problem, #rx-cleared, #rx-loading")) box.replaceChildren(el("p", { class: "hint", text: t("rx.none") }));
      if (!$("paper-open") && !box.querySelector("#rx-loading")) box.append(paperButton());
      return;
    }
    const table = el("table", { class: "lines", id: "rx-lines" },
      el("thead", {}, el("tr", {},
        ["rx.col.line", "rx.col.product", "rx.col.posology", "rx.col.checks", "rx.col.decision"]
          .map((key) => el("th", { scope: "col", text: t(key) })))),
      el("tbody", {}, rx.lines.map((line, index) => lineRow(line, state.decisions[index]))));
    box.replaceChildren(
      el("p", {}, el("strong", { text: t("rx.header", { id: rx.prescription_id, date: frDate(rx.prescribed_on) }) }),
        " · ", el("span", { class: "hint", text: t("rx.deadline", { date: frDate(rx.first_delivery_deadline), limit: frDate(rx.treatment_limit) }) })),
      rxPeople(rx),
      rx.degraded ? el("p", { class: "banner warn", role: "status", text: t("rx.degraded") }) : "",
      patientMismatch(rx),
      prescriberWarning(rx),
      table);
  }

  function paperButton() {
    return el("p", {}, el("button", { type: "button", id: "paper-open", onclick: () => openPaper(null), text: t("paper.open") }));
  }

  function describePerson(family, given, birth) {
    return `${family} ${given}`.trim() + (birth ? `, ${t("patient.born", { date: frDate(birth) })}` : "");
  }

  function rxPeople(rx) {
    // Who the prescription is for and who wrote it, as the service gives them.
    const p = rx.patient;
    const who = p ? describePerson(p.family_name, givenList(p.given_names).join(" "), p.birth_date) : null;
    const pr = rx.prescriber || {};
    const practitioner = pr.practitioner || {};
    const name = pr.name || [practitioner.family_name, practitioner.given_name].filter(Boolean).join(" ");
    const trade = [label(pr.profession), label(pr.specialty)].filter(Boolean).join(", ");
    return el("div", { class: "rx-people" },
      who ? el("p", { id: "rx-patient" }, el("span", { class: "hint", text: `${t("rx.patient")} ` }), el("strong", { text: who }),
        p.ins ? el("span", { class: "hint", text: ` · INS ${p.ins.nir}` }) : null) : null,
      el("p", { id: "rx-prescriber" }, el("span", { class: "hint", text: `${t("rx.prescriber.label")} ` }),
        name ? el("strong", { text: name }) : null,
        ` · ${t("rx.prescriber", { rpps: pr.rpps || rx.prescriber_rpps })}`,
        trade ? ` · ${trade}` : ""));
  }

  function label(value) {
    if (!value) return "";
    return typeof value === "object" ? value.label || value.display || value.code || "" : String(value);
  }

  function givenList(value) {
    if (Array.isArray(value)) return value;
    return String(value || "").split(/[,\s]+/).filter(Boolean);
  }

  // ---- is the patient at the counter the prescription's patient? The daemon says, by the rule the
  // commit applies (`patient_match` of the view, POST .../patient-match for a card's beneficiaries):
  // the page never decides it itself, it only warns earlier than the commit's refusal.

  function rxMismatch() {
    const rx = state.rx;
    if (!rx || !rx.patient || !state.patient) return false;
    const match = rx.patient_match;
    // Known only for the patient the view was read for (read again when the patient changes).
    return Boolean(match && rx.matchedFor === state.patient.id && !match.matches);
  }

  function cardRightOne(rx) {
    // The card's (or apCV's) beneficiary who is the prescription's patient, as the daemon said.
    const found = state.cardMatch;
    const people = state.cardPeople?.people;
    if (!found || !people || found.people !== people || found.rxId !== rx.prescription_id) return undefined;
    return people[found.index];
  }

  async function refreshCardMatch() {
    const rx = state.rx;
    const people = state.cardPeople?.people;
    if (!rx || !rx.patient || !people?.length) return;
    if (state.cardMatch?.people === people && state.cardMatch.rxId === rx.prescription_id) return;
    const candidates = people.map((b) => ({ family_name: b.family_name, given_names: b.given_name || "", birth_date: b.birth_date_raw }));
    let index = -1;
    try {
      const answer = await api("POST", `/v1/prescriptions/${encodeURIComponent(rx.prescription_id)}/patient-match`, { candidates });
      index = answer.matches.findIndex((m) => m.matches);
    } catch (_) {
      // No switch offered: the pharmacist searches the patient (F3) instead.
    }
    if (state.rx !== rx || state.cardPeople?.people !== people) return; // changed meanwhile
    state.cardMatch = { rxId: rx.prescription_id, people, index };
    renderRx();
  }

  async function refreshMatch() {
    // The patient changed on a degraded copy (not read again, lines kept): only the match is asked.
    const rx = state.rx;
    const who = state.patient?.id;
    if (!rx || !who) return;
    try {
      const view = await api("GET", `/v1/prescriptions/${encodeURIComponent(rx.prescription_id)}?patient_id=${encodeURIComponent(who)}`);
      if (state.rx !== rx || state.patient?.id !== who) return;
      rx.patient_match = view.patient_match;
      rx.matchedFor = who;
    } catch (_) {
      return; // unknown: the commit checks it anyway
    }
    renderRx();
    renderCommit();
  }

  function patientMismatch(rx) {
    if (!state.patient && rx.patient) return chooseRxPatient(rx);
    if (!rxMismatch()) return "";
    const p = rx.patient;
    const current = state.patient;
    const rightOne = cardRightOne(rx);
    return el("div", { class: "banner error", id: "rx-patient-mismatch", role: "alert" },
      el("p", {}, el("strong", { text: t("rx.mismatch.title") })),
      el("p", { text: t("rx.mismatch.detail", {
        rx: describePerson(p.family_name, givenList(p.given_names).join(" "), p.birth_date),
        current: describePerson(current.birth_name, current.given_names, current.birth_date),
      }) }),
      rightOne
        ? el("button", { type: "button", id: "rx-switch-patient", class: "primary", onclick: () => chooseBeneficiary(rightOne),
          text: t("rx.mismatch.switch", { name: `${rightOne.family_name} ${rightOne.given_name}` }) })
        : el("p", { text: t("rx.mismatch.search") }));
  }

  function chooseRxPatient(rx) {
    // No patient chosen yet and the card read has the prescription's patient: one click.
    const rightOne = cardRightOne(rx);
    if (!rightOne) return "";
    return el("p", {}, el("button", { type: "button", id: "rx-choose-patient", onclick: () => chooseBeneficiary(rightOne),
      text: t("rx.choose.patient", { name: `${rightOne.family_name} ${rightOne.given_name}` }) }));
  }

  function prescriberWarning(rx) {
    // A prescriber the Annuaire Santé does not show as practising needs the pharmacist's explicit
    // acknowledgement before the commit (the daemon refuses it otherwise).
    const check = rx.prescriber;
    if (!check || !check.requires_acknowledgement) return "";
    const box = el("input", { type: "checkbox", id: "prescriber-ack" });
    box.checked = Boolean(state.prescriberAcknowledged);
    box.addEventListener("change", () => { state.prescriberAcknowledged = box.checked; });
    return el("div", { class: "banner warn", id: "prescriber-warning", role: "alert" },
      el("p", { text: check.warning || t("rx.prescriber.warning") }),
      el("label", { for: "prescriber-ack" }, box, " ", t("rx.prescriber.ack")));
  }

  function lineChecks(line) {
    const rules = deliverable(line);
    const checks = el("ul", { class: "warn-list" });
    checks.append(el("li", { class: "hint", text: t("rx.remaining", { n: line.remaining_days, total: line.duration_days }) }));
    if (!line.substitutable) {
      const reason = line.non_substitution_reason ? ` (${line.non_substitution_reason})` : "";
      checks.append(el("li", { text: t("rx.substitutable.no", { reason }) }));
    }
    const listed = new Set((rules.reasons || []).map((r) => r.code));
    for (const warning of line.warnings || []) {
      if (!listed.has(warning)) checks.append(el("li", { "data-warning": warning, text: t(`rx.warn.${warning}`) }));
    }
    if (rules.allowed && rules.max_days !== null && rules.max_days !== undefined && rules.max_days < line.remaining_days) {
      checks.append(el("li", { "data-max-days": rules.max_days, text: t("rx.max.days", { n: rules.max_days }) }));
    }
    if (!(line.warnings || []).length && rules.allowed) checks.append(el("li", { class: "ok", text: t("rx.ok") }));
    if (line.proposal && rules.allowed) {
      const packs = line.proposal.packs.map((p) => `${p.count} × ${p.cip13}`).join(", ");
      checks.append(el("li", { class: "hint proposal", text: t("rx.proposal", { packs, days: line.proposal.days }) }));
    }
    return checks;
  }

  function rulesBox(line) {
    // The rules' own French words, and the article of the Code behind them: why the line is
    // refused, or (allowed line) what caps today's delivery. Shown where the decision is made.
    const rules = deliverable(line);
    const reasons = rules.reasons || [];
    // An allowed line whose cap is simply what is left needs no box.
    if (rules.allowed && (!reasons.length || !(rules.max_days < line.remaining_days))) return null;
    const list = el("ul", { class: `rules ${rules.allowed ? "capped" : "refused"}`, id: `line-${line.line_no}-rules` });
    if (!rules.allowed) list.append(el("li", { class: "blocked", text: t(rules.overridable ? "rx.refused.overridable" : "rx.blocked") }));
    for (const reason of reasons) {
      list.append(el("li", { "data-refusal": rules.allowed ? null : reason.code, "data-limit": rules.allowed ? reason.code : null },
        reason.message || t(`rx.warn.${reason.code}`), reason.article ? el("span", { class: "article", text: ` (${reason.article})` }) : null));
    }
    return list;
  }

  function posologyCell(line) {
    // The prescriber's words, verbatim; a figure only where the prescription's structured dosage
    // gives it (never worked out from the quantity of boxes).
    const cell = el("td", { class: "posology" });
    cell.append(line.posology_text
      ? el("q", { class: "posology-text", id: `line-${line.line_no}-posology` }, line.posology_text)
      : el("span", { class: "hint", text: t("rx.posology.none") }));
    const p = line.posology;
    if (p && !p.needs_pharmacist_input && p.units_per_day !== null && p.units_per_day !== undefined) {
      cell.append(el("br"), el("span", { class: "hint", text: t("rx.posology.read", { units: units(p.units_per_day) }) }));
    }
    if (p && p.as_needed) {
      cell.append(el("br"), el("span", { class: "hint", text: p.max_units_per_day ? t("rx.posology.prn.max", { max: units(p.max_units_per_day) }) : t("rx.posology.prn") }));
    }
    if (p && p.needs_pharmacist_input) {
      cell.append(el("br"), el("span", { class: "ask", text: p.reason || t("rx.posology.ask") }));
    }
    cell.append(el("br"), el("span", { class: "hint", text: t("rx.duration", { days: line.duration_days, renewals: line.renewals }) }));
    return cell;
  }

  function lineRow(line, decision) {
    const n = line.line_no;
    const rules = deliverable(line);
    return el("tr", { "data-line": n, "data-blocked": decision.blocked ? "true" : null, "data-refused": rules.allowed ? null : "true" },
      el("td", { text: n }),
      el("td", {}, el("strong", { text: line.designation }), el("br"),
        el("span", { class: "hint", text: `${t(`rx.list.${line.regulatory_list}`)} · ${line.product_code}` })),
      posologyCell(line),
      el("td", {}, lineChecks(line)),
      el("td", { class: "decision-cell" }, rulesBox(line), decisionControls(line, decision)));
  }

  function units(value) {
    const number = Number(value);
    if (!Number.isFinite(number)) return String(value);
    return number.toLocaleString(state.lang === "fr" ? "fr-FR" : "en-GB", { maximumFractionDigits: 2 });
  }

  function field(id, labelKey, input) {
    return el("div", {}, el("label", { for: id, text: t(labelKey) }), input);
  }

  function decisionControls(line, d) {
    const n = line.line_no;
    const rules = deliverable(line);
    const bind = (key, parse) => (event) => { d[key] = parse ? parse(event.target.value) : event.target.value; state.commitKey = null; renderCommit(); };
    // A line the rules refuse for good offers "not dispensed" only.
    const kinds = d.blocked ? ["not_dispensed"] : ["unchanged", "substituted", "modified", "not_dispensed"];
    const select = el("select", { id: `line-${n}-intervention`, disabled: d.blocked, onchange: (event) => { d.intervention = event.target.value; state.commitKey = null; renderRx(); renderCommit(); document.getElementById(`line-${n}-intervention`).focus(); } },
      kinds.map((kind) => el("option", { value: kind, selected: d.intervention === kind, text: t(`iv.${kind}`) })));
    const wrap = el("div", { class: "decision" }, field(`line-${n}-intervention`, "rx.col.decision", select));
    if (d.blocked) return wrap;
    if (d.input && d.intervention !== "not_dispensed") wrap.append(...posologyInputs(line, d));
    if (d.intervention !== "not_dispensed") {
      const maxDays = rules.max_days ?? 366;
      wrap.append(
        field(`line-${n}-days`, "line.days", el("input", { id: `line-${n}-days`, type: "number", min: 0, max: maxDays, value: d.days, oninput: bind("days", Number) })),
        field(`line-${n}-cip`, "line.cip", el("input", { id: `line-${n}-cip`, class: "wide", inputmode: "numeric", maxlength: 13, pattern: "\\d{13}", value: d.cip13, oninput: bind("cip13") })),
        field(`line-${n}-boxes`, "line.boxes", el("input", { id: `line-${n}-boxes`, type: "number", min: 0, max: 999, value: d.boxes ?? "", oninput: bind("boxes", (v) => (v === "" ? null : Number(v))) })));
    }
    if (d.intervention === "substituted") {
      wrap.append(
        field(`line-${n}-sub-cip`, "line.cip", el("input", { id: `line-${n}-sub-cip`, class: "wide", maxlength: 13, value: d.sub.cip13, oninput: (e) => { d.sub.cip13 = e.target.value; } })),
        field(`line-${n}-sub-name`, "line.sub.name", el("input", { id: `line-${n}-sub-name`, class: "wide", maxlength: 200, value: d.sub.name, oninput: (e) => { d.sub.name = e.target.value; } })),
        field(`line-${n}-sub-form`, "line.sub.form", el("input", { id: `line-${n}-sub-form`, maxlength: 64, value: d.sub.form, oninput: (e) => { d.sub.form = e.target.value; } })),
        field(`line-${n}-sub-units`, "line.sub.units", el("input", { id: `line-${n}-sub-units`, type: "number", min: 1, value: d.sub.units, oninput: (e) => { d.sub.units = e.target.value; } })));
    }
    if (d.intervention === "modified" || d.intervention === "not_dispensed") {
      wrap.append(field(`line-${n}-reason`, "line.reason", el("input", { id: `line-${n}-reason`, class: "wide", maxlength: 200, value: d.reason, oninput: bind("reason") })));
    }
    if (d.intervention === "modified") {
      wrap.append(field(`line-${n}-agreement`, "line.agreement", el("input", { id: `line-${n}-agreement`, class: "wide", maxlength: 10, placeholder: t("date.placeholder"), value: d.agreement, oninput: bind("agreement") })));
    }
    if (d.override && d.intervention !== "not_dispensed") {
      const label = el("label", { for: `line-${n}-override`, text: t("line.override", { code: overrideLabel(line, d.override.code) }) });
      wrap.append(el("div", { class: "override" }, label, el("input", {
        id: `line-${n}-override`, class: "wide", minlength: 3, maxlength: 200, value: d.override.reason, required: true,
        oninput: (event) => { d.override.reason = event.target.value; state.commitKey = null; renderCommit(); },
      })));
    }
    return wrap;
  }

  function overrideLabel(line, code) {
    const known = t(`rx.warn.${code}`);
    if (known !== `rx.warn.${code}`) return known;
    const reason = (deliverable(line).reasons || []).find((r) => r.code === code);
    return reason?.message || code;
  }

  function posologyInputs(line, d) {
    // The prescription does not say how much a day or for how long: the pharmacist says it (read
    // from the prescriber's text, or asked of the prescriber), and the days follow the duration.
    const n = line.line_no;
    const cap = deliverable(line).max_days ?? line.remaining_days;
    return [
      field(`line-${n}-upd`, "line.units.per.day", el("input", { id: `line-${n}-upd`, type: "number", min: 0.01, step: "any", max: 100, required: true, value: d.input.unitsPerDay,
        oninput: (e) => { d.input.unitsPerDay = e.target.value; state.commitKey = null; renderCommit(); } })),
      field(`line-${n}-duration`, "line.duration", el("input", { id: `line-${n}-duration`, type: "number", min: 1, max: 366, required: true, value: d.input.duration,
        oninput: (e) => {
          d.input.duration = e.target.value;
          const days = Number(e.target.value);
          if (days > 0) {
            d.days = Math.min(days, cap);
            const daysField = document.getElementById(`line-${n}-days`);
            if (daysField) daysField.value = d.days;
          }
          state.commitKey = null;
          renderCommit();
        } })),
    ];
  }

  function lineBody(d) {
    const body = { line_no: d.line_no, intervention: d.intervention };
    if (d.intervention === "not_dispensed") {
      body.not_dispensed_reason = d.reason || null;
      return body;
    }
    body.days = Number(d.days) || 0;
    // The pharmacist's daily quantity where the dosage gives none (counts the units delivered).
    if (d.input && Number(d.input.unitsPerDay) > 0) body.units_per_day = Number(d.input.unitsPerDay);
    if (d.cip13) body.cip13 = d.cip13;
    if (d.boxes !== null && d.boxes !== undefined) body.boxes = d.boxes;
    if (d.intervention === "modified") {
      body.modification_reason = d.reason || null;
      if (d.agreement) body.prescriber_agreement_on = parseFrDate(d.agreement) || d.agreement;
    }
    if (d.override && d.override.reason.trim().length >= 3) {
      body.override = { code: d.override.code, reason: d.override.reason.trim() };
    }
    if (d.intervention === "substituted") {
      body.substitution = { cip13: d.sub.cip13, name: d.sub.name, form: d.sub.form, units: Number(d.sub.units) || 0 };
    }
    return body;
  }

  function commitBlockers() {
    // Why the commit button is off (each a French sentence shown next to it).
    if (state.paper) return [];
    if (!state.rx) return [];
    const why = [];
    if (!state.patient) why.push(t("commit.need.patient"));
    else if (rxMismatch()) why.push(t("rx.mismatch.title"));
    const live = state.decisions.filter((d) => d.intervention !== "not_dispensed");
    if (state.decisions.length && state.decisions.every((d) => d.blocked)) why.push(t("commit.all.blocked"));
    for (const d of live) {
      if (d.override && d.override.reason.trim().length < 3) why.push(t("commit.need.override", { n: d.line_no }));
      if (d.input && !(Number(d.input.unitsPerDay) > 0 && Number(d.input.duration) > 0)) why.push(t("commit.need.posology", { n: d.line_no }));
    }
    return why;
  }

  function renderCommit() {
    $("commit-form").hidden = !state.rx && !state.paper;
    const button = $("commit");
    checkRecord();
    renderRecordFields();
    const why = [...(state.paper ? paperBlockers() : commitBlockers()), ...((state.rx || state.paper) ? recordBlockers() : [])];
    button.disabled = why.length > 0;
    button.title = why.join(" ");
    $("commit-why").textContent = why.join(" ");
  }

  function newKey() {
    if (crypto.randomUUID) return crypto.randomUUID();
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function commitBody() {
    if (state.paper) return withRecord(paperBody());
    const body = {
      patient_id: state.patient.id,
      prescription_id: state.rx.prescription_id,
      lines: state.decisions.map(lineBody),
    };
    if (state.prescriberAcknowledged) body.prescriber_acknowledged = true;
    return withRecord(body);
  }

  async function onCommit(event) {
    if (event) event.preventDefault();
    const result = $("commit-result");
    if (!state.rx && !state.paper) return;
    if (!state.patient) {
      result.replaceChildren(el("p", { class: "problem", role: "alert", text: t("commit.need.patient") }));
      return;
    }
    if ($("commit").disabled) return; // Ctrl+Enter while something is missing: the reasons are shown
    if (state.recordAsked?.pending) {
      await runRecordCheck(); // the mentions to ask for what is about to be sent
      if ($("commit").disabled) return; // now asked: the fields are shown
    }
    const body = commitBody();
    // One key per distinct request: a retried click (lost answer) replays, a changed decision is new.
    const fingerprint = JSON.stringify(body);
    if (!state.commitKey || state.commitKey.fingerprint !== fingerprint) {
      state.commitKey = { fingerprint, key: newKey() };
    }
    const generation = state.rxGeneration;
    $("commit").disabled = true;
    try {
      const answer = await request("POST", "/v1/dispensations", {
        body, headers: { "Idempotency-Key": state.commitKey.key },
      });
      if (generation !== state.rxGeneration) return;
      const replayed = answer.headers.get("Idempotent-Replayed") === "true";
      // A replay shows the dispensation as it stands now, with the same words as the first answer.
      const shown = replayed ? await currentDispensation(answer.data) : answer.data;
      showCommitResult(shown, replayed);
      refreshOutbox();
      refreshOrdonnancier();
    } catch (error) {
      if (generation !== state.rxGeneration) return;
      offerOverrides(error);
      askRecordFrom(error);
      result.replaceChildren(el("div", { class: "result error" }, problemNode(error)));
    } finally {
      renderCommit();
    }
  }

  async function currentDispensation(first) {
    try {
      return await api("GET", `/v1/dispensations/${encodeURIComponent(first.id)}`);
    } catch (_) {
      return first;
    }
  }

  function offerOverrides(error) {
    if (error.slug === "prescriber-warning-not-acknowledged" && state.rx) {
      // Shown again with its checkbox, in case the prescription was opened before the check ran.
      state.rx.prescriber = { ...(state.rx.prescriber || {}), requires_acknowledgement: true,
        warning: error.problem.detail || error.problem.title };
      renderRx();
      return;
    }
    // A refusal the pharmacist may lift gets a reason field on its line (recorded with their RPPS).
    if (error.slug !== "dispensing-refused") return;
    let added = false;
    for (const refusal of error.problem.refusals || []) {
      const decision = state.decisions.find((d) => d.line_no === refusal.line_no);
      if (refusal.overridable && decision && !decision.override) {
        decision.override = { code: refusal.code, reason: "" };
        added = true;
      }
    }
    if (added) renderRx();
  }

  function showCommitResult(dispensation, replayed) {
    const numbers = dispensation.lines.map((l) => l.ordonnancier_number).filter((n) => n !== null && n !== undefined);
    const sync = dispensation.sync_status === "synced" ? "commit.ok.sync.synced" : "commit.ok.sync.pending";
    $("commit-result").replaceChildren(el("div", { class: "result ok", id: "commit-ok", "data-dispensation": dispensation.id, "data-replayed": replayed ? "true" : null },
      el("strong", { text: t("commit.ok", { id: dispensation.id.slice(0, 8) }) }), " ",
      t(sync),
      dispensation.degraded ? ` ${t("commit.ok.degraded")}` : "",
      numbers.length ? ` ${t("commit.ok.ordo", { numbers: numbers.join(", ") })}` : "",
      replayed ? el("p", { id: "commit-replayed", text: numbers.length ? t("commit.replayed.ordo", { numbers: numbers.join(", ") }) : t("commit.replayed") }) : null));
    $("commit-ok").scrollIntoView({ block: "nearest" });
    state.lastCommit = { id: dispensation.id, replayed };
  }

  // ------------------------------------------------------------------ ordonnancier mentions

  // What the ordonnancier entry needs and the prescription does not give (R.5132-10, and the
  // bearer of a narcotic prescription, R.5132-35) is the daemon's answer, never a guess: the page
  // sends the dispensation as it stands, without these mentions, to POST /v1/dispensations/check
  // and asks exactly what `record_missing` lists (the commit requires the same).
  function recordNeeds() {
    const asked = new Set(state.recordAsked?.data || []);
    return {
      listed: asked.size > 0,
      patientAddress: asked.has("patient_address"),
      prescriberAddress: asked.has("prescriber_address"),
      bearer: asked.has("bearer") || asked.has("bearer_name") || asked.has("bearer_address"),
    };
  }

  function bareBody() {
    // The dispensation without the ordonnancier mentions (null when there is nothing to check).
    if (!state.patient || (!state.rx && !state.paper)) return null;
    if (state.paper) return paperBody();
    return { patient_id: state.patient.id, prescription_id: state.rx.prescription_id, lines: state.decisions.map(lineBody) };
  }

  function checkRecord() {
    // Re-asked when the dispensation changes (debounced: not on every key typed).
    const body = bareBody();
    const signature = body ? JSON.stringify(body) : "";
    if (signature === (state.recordAsked?.signature ?? "")) return;
    if (!body) {
      state.recordAsked = null;
      return;
    }
    state.recordAsked = { signature, data: state.recordAsked?.data || [], pending: true };
    clearTimeout(state.recordTimer);
    state.recordTimer = setTimeout(runRecordCheck, 250);
  }

  async function runRecordCheck() {
    // Also run at once by a commit that comes before the debounce is over.
    clearTimeout(state.recordTimer);
    const asked = state.recordAsked;
    const body = bareBody();
    if (!asked?.pending || !body || JSON.stringify(body) !== asked.signature) return;
    let data = asked.data;
    try {
      data = (await api("POST", "/v1/dispensations/check", body)).record_missing.map((m) => m.datum);
    } catch (_) {
      // Not checkable as it stands (a mismatch, a field still empty...): the commit says why.
    }
    if (state.recordAsked !== asked) return; // changed meanwhile
    state.recordAsked = { signature: asked.signature, data, pending: false };
    renderCommit();
  }

  function askRecordFrom(error) {
    // A commit refused for a missing mention (asked too late, e.g. a check that failed): ask it.
    if (error.slug !== "legal-record-incomplete") return;
    const data = new Set([...(state.recordAsked?.data || []), ...(error.problem.missing || []).map((m) => m.datum)]);
    state.recordAsked = { ...(state.recordAsked || { signature: "" }), data: [...data], pending: false };
  }

  function recordState() {
    // Kept per patient: typing the address again after a re-render would be a trap.
    const id = state.patient?.id || "";
    if (!state.record || state.record.patientId !== id) {
      state.record = { patientId: id, patientAddress: "", prescriberAddress: "", bearer: "", bearerName: "", bearerAddress: "" };
    }
    return state.record;
  }

  function renderRecordFields(force) {
    // Re-drawn only when what is asked changes: never under the pharmacist's typing.
    const box = $("record-fields");
    const needs = recordNeeds();
    const shown = needs.listed && state.patient;
    const signature = shown ? JSON.stringify([needs, recordState().patientId, recordState().bearer, state.lang]) : "";
    if (!force && signature === state.recordSignature) return;
    state.recordSignature = signature;
    if (!shown) {
      box.replaceChildren();
      return;
    }
    const r = recordState();
    const input = (id, key, labelKey) => field(id, labelKey, el("input", { id, class: "wider", maxlength: 300, value: r[key],
      oninput: (e) => { r[key] = e.target.value; state.commitKey = null; renderCommit(); } }));
    const parts = [];
    if (needs.patientAddress) parts.push(input("patient-address", "patientAddress", "record.patient.address"));
    if (needs.prescriberAddress) parts.push(input("prescriber-address", "prescriberAddress", "record.prescriber.address"));
    if (needs.bearer) {
      parts.push(field("bearer-kind", "record.bearer", el("select", { id: "bearer-kind", onchange: (e) => { r.bearer = e.target.value; state.commitKey = null; renderRecordFields(); renderCommit(); } },
        [["", "record.bearer.choose"], ["patient", "record.bearer.patient"], ["other", "record.bearer.other"]]
          .map(([v, key]) => el("option", { value: v, selected: r.bearer === v, text: t(key) })))));
      if (r.bearer === "other") {
        parts.push(input("bearer-name", "bearerName", "record.bearer.name"), input("bearer-address", "bearerAddress", "record.bearer.address"));
      }
    }
    box.replaceChildren(el("fieldset", { class: "record" }, el("legend", { text: t("record.title") }), el("div", { class: "decision" }, ...parts)));
  }

  function recordBlockers() {
    const needs = recordNeeds();
    if (!needs.listed || !state.patient) return [];
    const r = recordState();
    const why = [];
    if (needs.patientAddress && !r.patientAddress.trim()) why.push(t("record.need.patient"));
    if (needs.prescriberAddress && !r.prescriberAddress.trim()) why.push(t("record.need.prescriber"));
    if (needs.bearer && (!r.bearer || (r.bearer === "other" && !(r.bearerName.trim() && r.bearerAddress.trim())))) why.push(t("record.need.bearer"));
    return why;
  }

  function withRecord(body) {
    // Sent only when asked: an older daemon does not know these fields.
    const needs = recordNeeds();
    if (!needs.listed) return body;
    const r = recordState();
    if (needs.patientAddress && r.patientAddress.trim()) body.patient_address = r.patientAddress.trim();
    if (needs.prescriberAddress && r.prescriberAddress.trim()) body.prescriber_address = r.prescriberAddress.trim();
    if (needs.bearer && r.bearer) {
      body.bearer = r.bearer === "patient" ? { is_patient: true }
        : { is_patient: false, name: r.bearerName.trim(), address: r.bearerAddress.trim() };
    }
    return body;
  }

  // ------------------------------------------------------------------ paper prescription (typed)

  function openPaper(prescriptionId) {
    // prescriptionId: the paper copy of an e-prescription whose service is down (degraded mode,
    // the execution is sent when it is back); null: a paper-only prescription.
    clearPrescription();
    state.paper = { prescriptionId, prescribedOn: "", rpps: "", name: "", address: "", lines: [paperLine()] };
    renderRx();
    renderCommit();
    $("paper-date").focus();
  }

  function paperLine() {
    return { designation: "", cip13: "", list: "none", upd: "", duration: "", renewals: "0", nsr: "", boxes: "" };
  }

  function closePaper() {
    clearPrescription();
    focusScan();
  }

  function paperInput(id, labelKey, value, onValue, attrs) {
    const input = el("input", { id, value, ...(attrs || {}), oninput: (e) => { onValue(e.target.value); state.commitKey = null; renderCommit(); } });
    return field(id, labelKey, input);
  }

  function paperSelect(id, labelKey, value, options, onValue) {
    const select = el("select", { id, onchange: (e) => { onValue(e.target.value); state.commitKey = null; renderCommit(); } },
      options.map(([v, key]) => el("option", { value: v, selected: v === value, text: t(key) })));
    return field(id, labelKey, select);
  }

  function paperForm() {
    const paper = state.paper;
    const title = paper.prescriptionId ? t("paper.title.copy", { id: paper.prescriptionId }) : t("paper.title");
    const head = el("div", { class: "decision paper-head" },
      paperInput("paper-date", "paper.date", paper.prescribedOn, (v) => { paper.prescribedOn = v; }, { maxlength: 10, placeholder: t("date.placeholder"), class: "wide" }),
      paperInput("paper-rpps", "paper.rpps", paper.rpps, (v) => { paper.rpps = v.trim(); }, { maxlength: 11, inputmode: "numeric", class: "wide" }),
      paperInput("paper-prescriber", "paper.prescriber", paper.name, (v) => { paper.name = v; }, { maxlength: 200, class: "wide" }),
      paperInput("paper-prescriber-address", "record.prescriber.address", paper.address, (v) => { paper.address = v; }, { maxlength: 300, class: "wider" }));
    const lists = [["none", "rx.list.none"], ["list_i", "rx.list.list_i"], ["list_ii", "rx.list.list_ii"], ["stupefiant", "rx.list.stupefiant"], ["assimile", "rx.list.assimile"]];
    const reasons = [["", "paper.substitutable"], ["MTE", "paper.nsr.MTE"], ["EFG", "paper.nsr.EFG"], ["CIF", "paper.nsr.CIF"]];
    const lines = paper.lines.map((line, index) => {
      const n = index + 1;
      return el("fieldset", { class: "paper-line", "data-paper-line": n },
        el("legend", { text: t("paper.line", { n }) }),
        el("div", { class: "decision" },
          paperInput(`paper-${n}-designation`, "paper.designation", line.designation, (v) => { line.designation = v; }, { maxlength: 200, class: "wider" }),
          paperInput(`paper-${n}-cip`, "line.cip", line.cip13, (v) => { line.cip13 = v.trim(); }, { maxlength: 13, inputmode: "numeric", class: "wide" }),
          paperSelect(`paper-${n}-list`, "paper.list", line.list, lists, (v) => { line.list = v; }),
          paperInput(`paper-${n}-upd`, "line.units.per.day", line.upd, (v) => { line.upd = v; }, { type: "number", min: 0.01, max: 100, step: "any" }),
          paperInput(`paper-${n}-duration`, "line.duration", line.duration, (v) => { line.duration = v; }, { type: "number", min: 1, max: 366 }),
          paperInput(`paper-${n}-renewals`, "paper.renewals", line.renewals, (v) => { line.renewals = v; }, { type: "number", min: 0, max: 12 }),
          paperSelect(`paper-${n}-nsr`, "paper.nsr", line.nsr, reasons, (v) => { line.nsr = v; }),
          paperInput(`paper-${n}-boxes`, "line.boxes", line.boxes, (v) => { line.boxes = v; }, { type: "number", min: 0, max: 999 }),
          paper.lines.length > 1 ? el("button", { type: "button", onclick: () => { paper.lines.splice(index, 1); renderRx(); renderCommit(); }, text: t("paper.line.remove") }) : null));
    });
    return el("div", { id: "paper-form", class: "paper" },
      el("h3", { text: title }),
      el("p", { class: "hint", text: t(paper.prescriptionId ? "paper.help.copy" : "paper.help") }),
      head, ...lines,
      el("p", { class: "row" },
        paper.lines.length < 30 ? el("button", { type: "button", id: "paper-add", onclick: () => { paper.lines.push(paperLine()); renderRx(); renderCommit(); }, text: t("paper.line.add") }) : null,
        el("button", { type: "button", id: "paper-cancel", onclick: closePaper, text: t("paper.cancel") })));
  }

  function paperBlockers() {
    const paper = state.paper;
    const why = [];
    if (!state.patient) why.push(t("commit.need.patient"));
    if (!parseFrDate(paper.prescribedOn)) why.push(t("paper.need.date"));
    if (!/^\d{11}$/.test(paper.rpps)) why.push(t("paper.need.rpps"));
    if (!paper.name.trim()) why.push(t("paper.need.prescriber"));
    paper.lines.forEach((line, index) => {
      if (!line.designation.trim() || !(Number(line.upd) > 0) || !(Number(line.duration) >= 1)) why.push(t("paper.need.line", { n: index + 1 }));
      else if (line.cip13 && !/^\d{13}$/.test(line.cip13)) why.push(t("paper.need.cip", { n: index + 1 }));
    });
    return why;
  }

  function paperBody() {
    const paper = state.paper;
    return {
      patient_id: state.patient.id,
      prescription_id: paper.prescriptionId,
      paper: {
        prescribed_on: parseFrDate(paper.prescribedOn),
        prescriber_rpps: paper.rpps,
        prescriber_name: paper.name.trim(),
        ...(paper.address.trim() ? { prescriber_address: paper.address.trim() } : {}),
        eprescription: Boolean(paper.prescriptionId),
        lines: paper.lines.map((line) => ({
          designation: line.designation.trim(),
          cip13: line.cip13 || null,
          regulatory_list: line.list,
          units_per_day: Number(line.upd),
          duration_days: Number(line.duration),
          renewals: Number(line.renewals) || 0,
          substitutable: !line.nsr,
          non_substitution_reason: line.nsr || null,
        })),
      },
      lines: paper.lines.map((line, index) => {
        const body = { line_no: index + 1, intervention: "unchanged", days: Number(line.duration) };
        if (line.cip13) body.cip13 = line.cip13;
        if (line.boxes !== "") body.boxes = Number(line.boxes);
        return body;
      }),
    };
  }

  function onDelivered(dispensationId) {
    // The result on screen follows its execution report: queued → sent.
    const shown = $("commit-ok");
    if (!shown || shown.dataset.dispensation !== dispensationId) return;
    api("GET", `/v1/dispensations/${encodeURIComponent(dispensationId)}`)
      .then((body) => showCommitResult(body, state.lastCommit?.replayed))
      .catch(() => null);
  }

  // ------------------------------------------------------------------ outbox and degraded mode

  async function refreshOutbox() {
    try {
      state.outbox = await api("GET", "/v1/outbox?limit=20");
    } catch (error) {
      $("outbox").replaceChildren(el("li", {}, problemNode(error)));
      return;
    }
    renderOutbox();
    renderDegraded();
  }

  function renderOutbox() {
    const list = $("outbox");
    list.replaceChildren();
    if (!state.outbox.messages.length) list.append(el("li", { class: "hint", text: t("outbox.empty") }));
    for (const m of state.outbox.messages) {
      list.append(el("li", { "data-status": m.status, "data-id": m.id },
        el("span", {}, t("outbox.item", { id: m.id, kind: outboxKind(m.kind), status: t(`outbox.status.${m.status}`), attempts: m.attempts }),
          m.last_error && m.status !== "delivered" ? el("span", { class: "outbox-reason", text: ` — ${outboxReason(m.last_error)}` }) : null),
        m.status === "failed"
          ? el("button", { type: "button", onclick: () => retryMessage(m.id), text: t("outbox.retry") })
          : null));
    }
  }

  function outboxReason(raw) {
    // The worker stores a problem code ("prescription-patient-mismatch"), possibly prefixed
    // ("too_many_attempts:national-service-timeout", "invalid_message:ValidationError").
    const text = String(raw);
    const colon = text.indexOf(":");
    const head = colon < 0 ? text : text.slice(0, colon);
    const rest = colon < 0 ? "" : text.slice(colon + 1);
    const known = (code) => { const v = t(`outbox.error.${code}`); return v === `outbox.error.${code}` ? null : v; };
    if (head === "too_many_attempts") return t("outbox.error.too_many_attempts", { reason: known(rest) || t("outbox.error.unknown") });
    if (head === "invalid_message") return t("outbox.error.invalid_message");
    return known(text) || t("outbox.error.unknown");
  }

  function outboxKind(kind) {
    const text = t(`outbox.kind.${kind}`);
    return text.startsWith("outbox.kind.") ? kind : text;
  }

  async function retryMessage(id) {
    try {
      await api("POST", `/v1/outbox/${id}/retry`);
    } catch (error) {
      $("outbox").prepend(el("li", {}, problemNode(error)));
      return;
    }
    refreshOutbox();
  }

  function renderDegraded() {
    const banner = $("banner-degraded");
    banner.hidden = !state.outbox.degraded;
    const reason = state.degradedReason;
    const known = reason ? t(`reason.${reason}`) : "";
    $("banner-degraded-reason").textContent = reason
      ? t("banner.degraded.reason", { reason: known === `reason.${reason}` ? reason : known }) : "";
  }

  // ------------------------------------------------------------------ ordonnancier

  function localDay() {
    const now = new Date();
    const pad = (n) => String(n).padStart(2, "0");
    return `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`;
  }

  function ordoParams() {
    const params = new URLSearchParams();
    // Typed as dd/mm/yyyy; a date that does not parse is sent as typed, for the API's own message.
    for (const [id, name] of [["ordo-from", "from"], ["ordo-to", "to"]]) {
      const typed = $(id).value.trim();
      if (typed) params.set(name, parseFrDate(typed) || typed);
    }
    if ($("ordo-product").value.trim()) params.set("product_code", $("ordo-product").value.trim());
    params.set("order", $("ordo-order").value);
    return params;
  }

  async function refreshOrdonnancier(event) {
    if (event) event.preventDefault();
    const params = ordoParams();
    // Unfiltered, the panel shows today's register, latest entry first.
    if (!params.has("from") && !params.has("to")) params.set("from", localDay());
    params.set("limit", "1000");
    const list = $("ordo");
    try {
      const entries = await api("GET", `/v1/ordonnancier?${params}`);
      list.replaceChildren();
      if (!entries.length) list.append(el("li", { class: "hint", text: t("ordo.none") }));
      for (const entry of entries.slice(-50).reverse()) {
        list.append(el("li", { "data-number": entry.number },
          el("span", { text: t("ordo.entry", {
            number: entry.number, date: frDay(entry.recorded_at),
            designation: entry.designation, units: entry.quantity_units,
          }) })));
      }
    } catch (error) {
      list.replaceChildren(el("li", {}, problemNode(error)));
    }
  }

  async function exportOrdonnancier(format) {
    // A plain link cannot carry the token: fetch the export, then hand the browser a local blob.
    const params = ordoParams();
    params.set("format", format);
    let response;
    try {
      response = await fetch(`/v1/ordonnancier/export?${params}`, {
        headers: { Authorization: `Bearer ${state.token}` }, cache: "no-store", credentials: "omit",
      });
    } catch (_) {
      $("ordo").prepend(el("li", { class: "problem", text: t("error.network") }));
      return;
    }
    if (!response.ok) {
      const problem = await response.json().catch(() => ({}));
      $("ordo").prepend(el("li", {}, problemNode(new ApiError(response.status, problem))));
      return;
    }
    const url = URL.createObjectURL(await response.blob());
    const link = el("a", { href: url, download: format === "csv" ? `ordonnancier-${params.get("order")}.csv` : null, target: format === "html" ? "_blank" : null, rel: "noopener" });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  }

  // ------------------------------------------------------------------ wiring

  function refreshAll() {
    if (!state.token) return;
    refreshReaders();
    refreshSession();
    refreshOutbox();
    refreshOrdonnancier();
  }

  function renderAll() {
    renderReaders();
    renderSession();
    renderPatient();
    renderBeneficiaries();
    renderRx();
    renderCommit();
    renderOutbox();
    renderDegraded();
  }

  function onKey(event) {
    if ($("token-dialog").open) return;
    if (chooseByNumber(event)) return;
    if (event.key === "F2" || (event.key === "Escape" && !event.defaultPrevented)) {
      event.preventDefault();
      focusScan();
    } else if (event.key === "F3") {
      event.preventDefault();
      $("ps-name").focus();
    } else if (event.key === "F4") {
      event.preventDefault();
      if (!$("pin-form").hidden) $("pin-input").focus();
      else if (!$("psc-form").hidden) $("psc-hint").focus();
    } else if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      onCommit();
    }
  }

  function start() {
    state.lang = localStorage.getItem(LANG_KEY) === "en" ? "en" : "fr";
    takeTokenFromFragment();
    state.token = localStorage.getItem(TOKEN_KEY);
    applyI18n();
    renderAll();
    $("lang-toggle").addEventListener("click", toggleLanguage);
    $("token-form").addEventListener("submit", onTokenSubmit);
    // Without a token the page can do nothing: Esc does not dismiss the token form.
    $("token-dialog").addEventListener("cancel", (event) => { if (!state.token) event.preventDefault(); });
    $("scan-form").addEventListener("submit", onScanSubmit);
    $("pin-form").addEventListener("submit", onPinSubmit);
    $("psc-form").addEventListener("submit", onPscSubmit);
    $("psc-cancel").addEventListener("click", cancelPsc);
    $("session-close").addEventListener("click", closeSession);
    $("patient-search").addEventListener("submit", onPatientSearch);
    $("commit-form").addEventListener("submit", onCommit);
    $("ordo-form").addEventListener("submit", refreshOrdonnancier);
    $("ordo-html").addEventListener("click", () => exportOrdonnancier("html"));
    $("ordo-csv").addEventListener("click", () => exportOrdonnancier("csv"));
    document.addEventListener("keydown", onKey);
    if (!state.token) askToken(false);
    else focusScan();
    streamEvents();
  }

  document.addEventListener("DOMContentLoaded", start);
})();
