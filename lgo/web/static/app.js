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

  function frDate(raw) {
    // "19991231" or "1999-12-31" → "31/12/1999"; lunar dates keep their zeros.
    if (!raw) return "";
    const digits = String(raw).replaceAll("-", "");
    if (!/^\d{8}$/.test(digits)) return String(raw);
    const text = `${digits.slice(6, 8)}/${digits.slice(4, 6)}/${digits.slice(0, 4)}`;
    return state.lang === "fr" ? text : `${digits.slice(0, 4)}-${digits.slice(4, 6)}-${digits.slice(6, 8)}`;
  }

  function clock(iso) {
    const when = iso ? new Date(iso) : new Date();
    return when.toLocaleTimeString(state.lang === "fr" ? "fr-FR" : "en-GB");
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
      parts.push(`ligne ${refusal.line_no} : ${refusal.message || refusal.code}`);
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
      if (d.kind === "cps") refreshSession().then(() => {
        if (!state.session?.session && !$("pin-form").hidden) $("pin-input").focus();
      });
    },
    "card.removed": (d, at) => {
      logEvent(t("ev.card.removed", d), at);
      refreshReaders();
      refreshSession();
      if (state.vitale && state.vitale.reader === d.reader) {
        state.vitale = null;
        renderBeneficiaries(t("patient.card.removed"));
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
    renderBeneficiaries();
    const people = state.vitale.beneficiaries;
    if (people.length === 1) await chooseBeneficiary(people[0]);
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
    renderBeneficiaries();
    const people = state.vitale.beneficiaries;
    if (people.length === 1) await chooseBeneficiary(people[0]);
  }

  function renderBeneficiaries(note) {
    const box = $("beneficiaries");
    box.replaceChildren();
    if (note) box.append(el("p", { class: "hint", text: note }));
    if (!state.vitale || state.vitale.beneficiaries.length < 2) return;
    box.append(el("p", { class: "hint", text: t(state.vitale.source === "apcv" ? "patient.apcv" : "patient.card") }));
    const list = el("ul", { class: "results", id: "beneficiary-list" });
    for (const person of state.vitale.beneficiaries) {
      list.append(el("li", {},
        el("span", {}, el("strong", { text: `${person.family_name} ${person.given_name}` }),
          ` · ${t("patient.born", { date: frDate(person.birth_date_raw) })} · ${t("patient.rank", { rank: person.rank })}`),
        el("button", { type: "button", onclick: () => chooseBeneficiary(person), text: t("patient.choose") })));
    }
    box.append(list);
  }

  async function chooseBeneficiary(person) {
    try {
      const patient = await api("POST", "/v1/patients", {
        birth_name: person.family_name, given_names: person.given_name,
        birth_date: person.birth_date_raw, nir: person.nir, source: state.vitale?.source || "vitale",
      });
      state.patientCard = person;
      if (state.vitale?.source === "apcv") {
        state.vitale = null; // an apCV read is single-use: nothing left to choose from
        renderBeneficiaries();
      }
      setPatient(patient);
    } catch (error) {
      $("patient-current").replaceChildren(problemNode(error));
    }
  }

  function setPatient(patient) {
    if (!state.patient || state.patient.id !== patient.id) state.patientNote = null;
    state.patient = patient;
    state.commitKey = null;
    $("patient-results").replaceChildren();
    renderPatient();
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
      el("div", { class: "name", text: name }),
      el("div", { text: `${t("patient.born", { date: frDate(p.birth_date) })}${p.nir ? ` · NIR ${p.nir}` : ""}` }),
      el("div", {},
        el("span", { class: "badge", id: "identity-status", "data-status": p.identity_status,
          text: t("patient.status", { label: p.identity_status_label || p.identity_status }) }), " ",
        el("span", { class: `badge ${p.ins_usable ? "good" : "bad"}`,
          text: p.ins_usable ? `${t("patient.ins.usable")} ${p.ins ? p.ins.matricule : ""}` : t("patient.ins.unusable") })),
      el("p", { class: "row" },
        el("button", { type: "button", onclick: () => insCall("retrieve"), text: t("patient.ins.retrieve") }),
        p.ins ? el("button", { type: "button", onclick: () => insCall("verify"), text: t("patient.ins.verify") }) : null,
        el("button", { type: "button", onclick: () => { state.patient = null; state.patientCard = null; state.patientNote = null; renderPatient(); renderCommit(); $("ps-name").focus(); },
          text: t("patient.clear") })),
      note ? el("p", { class: "hint", text: note }) : null));
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
    const birth = $("ps-birth").value.trim();
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
        logEvent(t(`scan.kind.${record.kind}`, { reason: record.reason || "" }));
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

  function showRxProblem(error) {
    $("rx").replaceChildren(problemNode(error));
  }

  async function openPrescription(id) {
    const rxId = String(id || "").replace(/\s+/g, "").toUpperCase();
    // The page's own scan also comes back as a scan.received event: open each id once at a time.
    if (!rxId || state.rxLoading === rxId) return;
    state.rxLoading = rxId;
    $("rx").replaceChildren(el("p", { class: "hint", text: t("rx.loading") }));
    $("commit-result").replaceChildren();
    state.rx = null;
    state.commitKey = null;
    state.prescriberAcknowledged = false;
    renderCommit();
    try {
      state.rx = await api("GET", `/v1/prescriptions/${encodeURIComponent(rxId)}`);
    } catch (error) {
      showRxProblem(error);
      return;
    } finally {
      if (state.rxLoading === rxId) state.rxLoading = null;
    }
    state.decisions = state.rx.lines.map(defaultDecision);
    renderRx();
    renderCommit();
  }

  function defaultDecision(line) {
    const pack = line.proposal?.packs?.[0];
    const nothingLeft = line.remaining_days === 0;
    return {
      line_no: line.line_no,
      intervention: nothingLeft ? "not_dispensed" : "unchanged",
      days: line.proposal?.days ?? Math.min(line.remaining_days, line.duration_days),
      cip13: pack?.cip13 ?? (/^\d{13}$/.test(line.product_code) ? line.product_code : ""),
      boxes: line.proposal ? line.proposal.packs.reduce((sum, p) => sum + p.count, 0) : null,
      reason: nothingLeft ? t("rx.warn.nothing_left") : "",
      agreement: "",
      override: null, // {code, reason} once the rules refused something the pharmacist may lift
      sub: { cip13: "", name: "", form: "", units: "" },
    };
  }

  function renderRx() {
    const rx = state.rx;
    const box = $("rx");
    if (!rx) {
      box.replaceChildren(el("p", { class: "hint", text: t("rx.none") }));
      return;
    }
    const table = el("table", { class: "lines", id: "rx-lines" },
      el("thead", {}, el("tr", {},
        ["rx.col.line", "rx.col.product", "rx.col.posology", "rx.col.checks", "rx.col.decision"]
          .map((key) => el("th", { scope: "col", text: t(key) })))),
      el("tbody", {}, rx.lines.map((line, index) => lineRow(line, state.decisions[index]))));
    box.replaceChildren(
      el("p", {}, el("strong", { text: t("rx.header", { id: rx.prescription_id, date: frDate(rx.prescribed_on) }) }),
        ` · ${t("rx.prescriber", { rpps: rx.prescriber_rpps })}`),
      el("p", { class: "hint", text: t("rx.deadline", { date: frDate(rx.first_delivery_deadline), limit: frDate(rx.treatment_limit) }) }),
      rx.degraded ? el("p", { class: "banner warn", role: "status", text: t("rx.degraded") }) : "",
      prescriberWarning(rx),
      table);
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

  function lineRow(line, decision) {
    const n = line.line_no;
    const checks = el("ul", { class: "warn-list" });
    checks.append(el("li", { class: "hint", text: t("rx.remaining", { n: line.remaining_days, total: line.duration_days }) }));
    if (!line.substitutable) {
      const reason = line.non_substitution_reason ? ` (${line.non_substitution_reason})` : "";
      checks.append(el("li", { text: t("rx.substitutable.no", { reason }) }));
    }
    for (const warning of line.warnings) checks.append(el("li", { "data-warning": warning, text: t(`rx.warn.${warning}`) }));
    if (!line.warnings.length) checks.append(el("li", { class: "ok", text: t("rx.ok") }));
    if (line.proposal) {
      const packs = line.proposal.packs.map((p) => `${p.count} × ${p.cip13}`).join(", ");
      checks.append(el("li", { class: "hint", text: t("rx.proposal", { packs, days: line.proposal.days }) }));
    }
    return el("tr", { "data-line": n },
      el("td", { text: n }),
      el("td", {}, el("strong", { text: line.designation }), el("br"),
        el("span", { class: "hint", text: `${t(`rx.list.${line.regulatory_list}`)} · ${line.product_code}` })),
      el("td", { text: t("rx.posology", { units: units(line.units_per_day), days: line.duration_days, renewals: line.renewals }) }),
      el("td", {}, checks),
      el("td", { class: "decision-cell" }, decisionControls(line, decision)));
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
    const bind = (key, parse) => (event) => { d[key] = parse ? parse(event.target.value) : event.target.value; state.commitKey = null; };
    const select = el("select", { id: `line-${n}-intervention`, onchange: (event) => { d.intervention = event.target.value; state.commitKey = null; renderRx(); document.getElementById(`line-${n}-intervention`).focus(); } },
      ["unchanged", "substituted", "modified", "not_dispensed"].map((kind) =>
        el("option", { value: kind, selected: d.intervention === kind, text: t(`iv.${kind}`) })));
    const wrap = el("div", { class: "decision" }, field(`line-${n}-intervention`, "rx.col.decision", select));
    if (d.intervention !== "not_dispensed") {
      wrap.append(
        field(`line-${n}-days`, "line.days", el("input", { id: `line-${n}-days`, type: "number", min: 0, max: 366, value: d.days, oninput: bind("days", Number) })),
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
      wrap.append(field(`line-${n}-agreement`, "line.agreement", el("input", { id: `line-${n}-agreement`, class: "wide", type: "date", value: d.agreement, oninput: bind("agreement") })));
    }
    if (d.override) {
      const label = el("label", { for: `line-${n}-override`, text: t("line.override", { code: t(`rx.warn.${d.override.code}`) }) });
      wrap.append(el("div", { class: "override" }, label, el("input", {
        id: `line-${n}-override`, class: "wide", minlength: 3, maxlength: 200, value: d.override.reason,
        oninput: (event) => { d.override.reason = event.target.value; state.commitKey = null; },
      })));
    }
    return wrap;
  }

  function lineBody(d) {
    const body = { line_no: d.line_no, intervention: d.intervention };
    if (d.intervention === "not_dispensed") {
      body.not_dispensed_reason = d.reason || null;
      return body;
    }
    body.days = Number(d.days) || 0;
    if (d.cip13) body.cip13 = d.cip13;
    if (d.boxes !== null && d.boxes !== undefined) body.boxes = d.boxes;
    if (d.intervention === "modified") {
      body.modification_reason = d.reason || null;
      if (d.agreement) body.prescriber_agreement_on = d.agreement;
    }
    if (d.override && d.override.reason.trim().length >= 3) {
      body.override = { code: d.override.code, reason: d.override.reason.trim() };
    }
    if (d.intervention === "substituted") {
      body.substitution = { cip13: d.sub.cip13, name: d.sub.name, form: d.sub.form, units: Number(d.sub.units) || 0 };
    }
    return body;
  }

  function renderCommit() {
    $("commit-form").hidden = !state.rx;
    const button = $("commit");
    button.disabled = !state.patient;
    button.title = state.patient ? "" : t("commit.need.patient");
  }

  function newKey() {
    if (crypto.randomUUID) return crypto.randomUUID();
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function onCommit(event) {
    if (event) event.preventDefault();
    const result = $("commit-result");
    if (!state.rx) return;
    if (!state.patient) {
      result.replaceChildren(el("p", { class: "problem", role: "alert", text: t("commit.need.patient") }));
      return;
    }
    const body = {
      patient_id: state.patient.id,
      prescription_id: state.rx.prescription_id,
      lines: state.decisions.map(lineBody),
    };
    if (state.prescriberAcknowledged) body.prescriber_acknowledged = true;
    // One key per distinct request: a retried click (lost answer) replays, a changed decision is new.
    const fingerprint = JSON.stringify(body);
    if (!state.commitKey || state.commitKey.fingerprint !== fingerprint) {
      state.commitKey = { fingerprint, key: newKey() };
    }
    $("commit").disabled = true;
    try {
      const answer = await request("POST", "/v1/dispensations", {
        body, headers: { "Idempotency-Key": state.commitKey.key },
      });
      showCommitResult(answer.data, answer.headers.get("Idempotent-Replayed") === "true");
      refreshOutbox();
      refreshOrdonnancier();
    } catch (error) {
      offerOverrides(error);
      result.replaceChildren(el("div", { class: "result error" }, problemNode(error)));
    } finally {
      renderCommit();
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
    $("commit-result").replaceChildren(el("div", { class: "result ok", id: "commit-ok", "data-dispensation": dispensation.id },
      el("strong", { text: t("commit.ok", { id: dispensation.id.slice(0, 8) }) }), " ",
      t(sync),
      dispensation.degraded ? ` ${t("commit.ok.degraded")}` : "",
      numbers.length ? ` ${t("commit.ok.ordo", { numbers: numbers.join(", ") })}` : "",
      replayed ? el("p", { text: t("commit.replayed") }) : null));
    $("commit-ok").scrollIntoView({ block: "nearest" });
    state.lastCommit = { id: dispensation.id, replayed };
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
        el("span", { text: t("outbox.item", { id: m.id, kind: outboxKind(m.kind), status: t(`outbox.status.${m.status}`), attempts: m.attempts }) }),
        m.status === "failed"
          ? el("button", { type: "button", onclick: () => retryMessage(m.id), text: t("outbox.retry") })
          : null));
    }
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
    if ($("ordo-from").value) params.set("from", $("ordo-from").value);
    if ($("ordo-to").value) params.set("to", $("ordo-to").value);
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
            number: entry.number, date: new Date(entry.recorded_at).toLocaleDateString(state.lang === "fr" ? "fr-FR" : "en-GB"),
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
