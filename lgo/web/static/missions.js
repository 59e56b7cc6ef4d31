// Vaccination and rapid tests (TROD) at the counter (missions part): two forms in a collapsible
// section under the counter's columns. Separate from app.js: it shares only the counter token and
// language kept in localStorage, and reads the patient chosen on the page from
// #patient-panel[data-patient]. Text goes in with textContent, never as HTML.
"use strict";

(() => {
  const TOKEN_KEY = "lgo.counterToken";
  const $ = (id) => document.getElementById(id);
  // Dates as dd/mm/yyyy whatever the browser's locale (app.js's reading, loaded first).
  const frDate = (raw) => window.LGO_DATES.frDate(raw);

  const TEXT = {
    fr: {
      title: "Vaccination et tests rapides (TROD)",
      tab_vacc: "Vaccination", tab_trod: "Test rapide (TROD)",
      no_patient: "Choisissez d'abord le patient (carte Vitale, apCV ou recherche).",
      patient: "Patient : {id}",
      vaccine: "Vaccin", datamatrix: "DataMatrix de la dose (scanner ici)", last_scan: "Dernier scan",
      no_scan: "Aucun DataMatrix de médicament parmi les derniers scans.",
      scan_used: "Scan du {at} utilisé (lot {lot}, péremption {expiry}).",
      dose: "Rang de la dose", act: "Acte", route: "Voie", site: "Site",
      "primo-vaccination": "primo-vaccination", rappel: "rappel", vaccination: "vaccination",
      immuno: "Personne immunodéprimée", severe: "Antécédent de réaction allergique sévère à un vaccin",
      mss: "Envoyer la note au médecin (adresse MSSanté, facultatif)",
      product_label: "Nom du vaccin (s'il n'est pas au catalogue)", cis_code: "Code CIS (s'il n'est pas au catalogue)",
      check: "Vérifier l'éligibilité", record: "Enregistrer la vaccination",
      eligible: "Éligible à la vaccination par le pharmacien ({age}).",
      not_eligible: "Non éligible :", warning: "Attention :",
      recorded: "Vaccination enregistrée : {vaccine}, lot {lot} (péremption {expiry}).",
      note_queued: "Note de vaccination mise en file pour le DMP.",
      note_skipped: "Pas de note de vaccination : {reason}.",
      trod_doc_skipped: "Pas de document du résultat (BIO-TROD) : {reason}.",
      "ins-not-qualified": "INS du patient non qualifiée",
      test: "Test", kit_maker: "Fabricant du kit", kit_ref: "Référence", kit_lot: "Lot du kit",
      kit_expiry: "Péremption du kit", readings: "Résultat",
      bad_expiry: "Péremption du kit : date attendue au format jj/mm/aaaa.",
      positif: "positif", negatif: "négatif", indetermine: "indéterminé",
      "echantillon-insatisfaisant": "échantillon insatisfaisant",
      temperature: "Température (°C)", no_cough: "Absence de toux", nodes: "Adénopathies cervicales sensibles",
      tonsils: "Amygdales augmentées ou exsudat", exclusions: "Critères d'exclusion",
      episodes: "Cystites dans les 12 derniers mois", allergy: "Allergie", weight: "Poids (kg, enfant)",
      aucune: "aucune", penicillines: "pénicillines", betalactamines: "toutes bêtalactamines",
      record_trod: "Enregistrer le test",
      trod_recorded: "Test enregistré : {result}.", positive: "positif", negative: "négatif",
      score: "Score de Mac Isaac : {score}.",
      next_dispense: "Dans les critères du protocole : délivrer l'antibiotique (pharmacien prescripteur).",
      next_refer: "Hors des critères du protocole : orienter vers un médecin.",
      next_none: "Pas d'antibiotique : conseils au patient.",
      next_dispensed: "Antibiotique délivré.",
      regimen: "Traitement", box: "Boîte délivrée (CIP13, scanner ici)", unit_mg: "Dosage d'une unité (mg, si besoin)",
      dispense: "Délivrer sous protocole", address: "Adresse du patient (ordonnancier)", referral: "Imprimer la lettre d'orientation",
      dispensed: "Antibiotique délivré : {units} unité(s), {boxes} boîte(s), ordonnancier n° {number}.",
      result_trod: "Résultat du test",
      error: "Erreur",
    },
    en: {
      title: "Vaccination and rapid tests (TROD)",
      tab_vacc: "Vaccination", tab_trod: "Rapid test (TROD)",
      no_patient: "Choose the patient first (Vitale card, apCV or search).",
      patient: "Patient: {id}",
      vaccine: "Vaccine", datamatrix: "Dose DataMatrix (scan here)", last_scan: "Last scan",
      no_scan: "No medicine DataMatrix among the last scans.",
      scan_used: "Scan of {at} used (lot {lot}, expiry {expiry}).",
      dose: "Dose number", act: "Act", route: "Route", site: "Site",
      "primo-vaccination": "first series", rappel: "booster", vaccination: "vaccination",
      immuno: "Immunocompromised person", severe: "History of severe allergic reaction to a vaccine",
      mss: "Send the note to the doctor (MSSanté address, optional)",
      product_label: "Vaccine name (when not in the catalogue)", cis_code: "CIS code (when not in the catalogue)",
      check: "Check eligibility", record: "Record the vaccination",
      eligible: "Eligible for vaccination by the pharmacist ({age}).",
      not_eligible: "Not eligible:", warning: "Warning:",
      recorded: "Vaccination recorded: {vaccine}, lot {lot} (expiry {expiry}).",
      note_queued: "Vaccination note queued for the DMP.",
      note_skipped: "No vaccination note: {reason}.",
      trod_doc_skipped: "No result document (BIO-TROD): {reason}.",
      "ins-not-qualified": "patient's INS not qualified",
      test: "Test", kit_maker: "Kit maker", kit_ref: "Reference", kit_lot: "Kit lot",
      kit_expiry: "Kit expiry", readings: "Result",
      bad_expiry: "Kit expiry: a date as dd/mm/yyyy is expected.",
      positif: "positive", negatif: "negative", indetermine: "indeterminate",
      "echantillon-insatisfaisant": "unsatisfactory sample",
      temperature: "Temperature (°C)", no_cough: "No cough", nodes: "Tender cervical nodes",
      tonsils: "Tonsil swelling or exudate", exclusions: "Exclusion criteria",
      episodes: "Cystitis episodes in the last 12 months", allergy: "Allergy", weight: "Weight (kg, child)",
      aucune: "none", penicillines: "penicillins", betalactamines: "all beta-lactams",
      record_trod: "Record the test",
      trod_recorded: "Test recorded: {result}.", positive: "positive", negative: "negative",
      score: "Mac Isaac score: {score}.",
      next_dispense: "Within the protocol: dispense the antibiotic (pharmacist as prescriber).",
      next_refer: "Outside the protocol: refer to a doctor.",
      next_none: "No antibiotic: advice to the patient.",
      next_dispensed: "Antibiotic dispensed.",
      regimen: "Regimen", box: "Box dispensed (CIP13, scan here)", unit_mg: "Unit strength (mg, if needed)",
      dispense: "Dispense under protocol", address: "Patient's address (ordonnancier)", referral: "Print the referral letter",
      dispensed: "Antibiotic dispensed: {units} unit(s), {boxes} box(es), ordonnancier no. {number}.",
      result_trod: "Test result",
      error: "Error",
    },
  };
  const ROUTES = ["intramusculaire", "sous-cutanee", "intradermique", "orale", "inhalee"];
  const SITES = ["", "deltoide-gauche", "deltoide-droit", "cuisse-gauche", "cuisse-droite"];
  const ANALYTES = {
    angine: ["streptocoque-a"], cystite: ["leucocytes", "nitrites"],
    "covid-19": ["sars-cov-2"], grippe: ["grippe-a", "grippe-b"],
  };
  const EXCLUSIONS = {
    angine: ["grossesse", "immunodepression", "antibiotique-en-cours", "episode-recent",
      "signes-de-complication", "retour-pays-tropical", "troubles-digestifs-enfant", "symptomes-plus-de-8-jours"],
    cystite: ["grossesse", "immunodepression", "antibiotique-en-cours", "douleur-lombaire",
      "anomalie-urinaire", "sonde-urinaire", "insuffisance-renale-severe"],
  };
  const OUTCOMES = ["negatif", "positif", "indetermine", "echantillon-insatisfaisant"];
  // Labels of the API's codes (routes, sites, analytes, exclusion criteria, tests).
  const LABELS = {
    fr: {
      intramusculaire: "intramusculaire", "sous-cutanee": "sous-cutanée", intradermique: "intradermique",
      orale: "orale", inhalee: "inhalée", "": "—", "deltoide-gauche": "deltoïde gauche",
      "deltoide-droit": "deltoïde droit", "cuisse-gauche": "cuisse gauche", "cuisse-droite": "cuisse droite",
      angine: "angine (streptocoque A)", cystite: "cystite (bandelette urinaire)", "covid-19": "Covid-19",
      grippe: "grippe", "streptocoque-a": "streptocoque A", leucocytes: "leucocytes", nitrites: "nitrites",
      "sars-cov-2": "SARS-CoV-2", "grippe-a": "grippe A", "grippe-b": "grippe B",
      grossesse: "grossesse", immunodepression: "immunodépression", "antibiotique-en-cours": "antibiotique en cours",
      "episode-recent": "épisode semblable < 15 jours", "signes-de-complication": "signes de complication",
      "retour-pays-tropical": "retour de pays tropical", "troubles-digestifs-enfant": "troubles digestifs (enfant)",
      "symptomes-plus-de-8-jours": "symptômes > 8 jours", "douleur-lombaire": "douleur lombaire",
      "anomalie-urinaire": "anomalie urinaire", "sonde-urinaire": "sonde urinaire",
      "insuffisance-renale-severe": "insuffisance rénale sévère",
    },
    en: {
      intramusculaire: "intramuscular", "sous-cutanee": "subcutaneous", intradermique: "intradermal",
      orale: "oral", inhalee: "inhaled", "": "—", "deltoide-gauche": "left deltoid",
      "deltoide-droit": "right deltoid", "cuisse-gauche": "left thigh", "cuisse-droite": "right thigh",
      angine: "sore throat (strep A)", cystite: "cystitis (urine dipstick)", "covid-19": "Covid-19",
      grippe: "influenza", "streptocoque-a": "strep A", leucocytes: "leukocytes", nitrites: "nitrites",
      "sars-cov-2": "SARS-CoV-2", "grippe-a": "influenza A", "grippe-b": "influenza B",
      grossesse: "pregnancy", immunodepression: "immunodepression", "antibiotique-en-cours": "antibiotic ongoing",
      "episode-recent": "similar episode < 15 days", "signes-de-complication": "signs of complication",
      "retour-pays-tropical": "back from a tropical country", "troubles-digestifs-enfant": "digestive troubles (child)",
      "symptomes-plus-de-8-jours": "symptoms > 8 days", "douleur-lombaire": "lumbar pain",
      "anomalie-urinaire": "urinary tract abnormality", "sonde-urinaire": "urinary catheter",
      "insuffisance-renale-severe": "severe renal failure",
    },
  };
  const label = (code) => LABELS[lang()][code] ?? code;
  const state = { vaccines: [], trod: null };

  const lang = () => (document.documentElement.lang === "en" ? "en" : "fr");
  const tr = (key, vars = {}) =>
    (TEXT[lang()][key] ?? TEXT.fr[key] ?? key).replace(/\{(\w+)\}/g, (_, n) => String(vars[n] ?? ""));

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "text") node.textContent = String(value);
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : value);
    }
    node.append(...children.filter(Boolean));
    return node;
  }
  const field = (id, labelKey, input) =>
    el("div", { class: "m-field" }, el("label", { for: id, "data-m": labelKey, text: tr(labelKey) }), input);
  const codeField = (id, code, input) =>
    el("div", { class: "m-field" }, el("label", { for: id, text: label(code) }), input);
  const check = (id, labelKey) =>
    el("p", { class: "check" }, el("input", { id, type: "checkbox" }),
      el("label", { for: id, "data-m": labelKey, text: tr(labelKey) }));
  const options = (values, label = (v) => v) => values.map((v) => el("option", { value: v, text: label(v) }));

  async function call(method, path, body, extraHeaders = {}) {
    const token = localStorage.getItem(TOKEN_KEY);
    const headers = { Authorization: `Bearer ${token}`, ...extraHeaders };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const type = response.headers.get("content-type") || "";
    const data = type.includes("json") ? await response.json() : await response.text();
    if (!response.ok) throw Object.assign(new Error((data && data.title) || `HTTP ${response.status}`), { problem: data });
    return data;
  }

  function patientId() {
    const panel = $("patient-panel");
    return panel ? panel.dataset.patient || "" : "";
  }

  function show(target, kind, lines) {
    const box = $(target);
    box.replaceChildren(...lines.filter(Boolean).map((line) =>
      typeof line === "string" ? el("p", { text: line }) : line));
    box.className = `m-result ${kind}`;
  }

  function showError(target, error) {
    const problem = error.problem || {};
    const items = (problem.refusals || []).map((r) => el("li", { text: r.message }));
    const fields = (problem.errors || []).map((e) => el("li", { text: `${(e.loc || []).slice(1).join(".")} : ${e.msg}` }));
    show(target, "error", [
      el("p", { text: problem.title || error.message, "data-testid": "m-error-title" }),
      problem.detail ? el("p", { text: problem.detail }) : null,
      items.length || fields.length ? el("ul", {}, ...items, ...fields) : null,
    ]);
  }

  // Why an act's document was not produced: the INS (translated here) or the API's French problem.
  function skippedReason(act) {
    const slug = act.document_skipped || "error";
    return slug === "ins-not-qualified" || !act.document_problem ? tr(slug) : act.document_problem.title;
  }

  // The CI-SIS rules a refused document failed, as the kit words them (French).
  function failedRules(act) {
    const rules = (act.document_problem && act.document_problem.failed_rules) || [];
    return rules.length ? [el("ul", { "data-testid": "m-failed-rules" }, ...rules.map((r) => el("li", { text: r })))] : [];
  }

  function requirePatient(target) {
    const id = patientId();
    if (!id) show(target, "error", [tr("no_patient")]);
    return id;
  }

  const newKey = () => (crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`.replace(".", ""));

  // ------------------------------------------------------------------ vaccination

  function vaccinationForm() {
    const form = el("form", { id: "vacc-form", class: "m-form", autocomplete: "off" },
      field("vacc-vaccine", "vaccine", el("select", { id: "vacc-vaccine" })),
      el("div", { class: "m-field wide" },
        el("label", { for: "vacc-dm", "data-m": "datamatrix", text: tr("datamatrix") }),
        el("div", { class: "row" },
          el("input", { id: "vacc-dm", type: "text", maxlength: "200", spellcheck: "false" }),
          el("button", { type: "button", id: "vacc-last-scan", "data-m": "last_scan", text: tr("last_scan"), onclick: useLastScan }))),
      field("vacc-dose", "dose", el("input", { id: "vacc-dose", type: "number", min: "1", max: "10", value: "1" })),
      field("vacc-act", "act", el("select", { id: "vacc-act" })),
      field("vacc-route", "route", el("select", { id: "vacc-route" })),
      field("vacc-site", "site", el("select", { id: "vacc-site" })),
      field("vacc-label", "product_label", el("input", { id: "vacc-label", type: "text", maxlength: "200" })),
      field("vacc-cis", "cis_code", el("input", { id: "vacc-cis", type: "text", inputmode: "numeric", pattern: "[0-9]{8}", maxlength: "8" })),
      check("vacc-immuno", "immuno"), check("vacc-severe", "severe"),
      field("vacc-mss", "mss", el("input", { id: "vacc-mss", type: "email", maxlength: "254" })),
      el("p", { class: "row" },
        el("button", { type: "button", id: "vacc-check", "data-m": "check", text: tr("check"), onclick: checkEligibility }),
        el("button", { type: "submit", id: "vacc-record", class: "primary", "data-m": "record", text: tr("record") })),
      el("div", { id: "vacc-result", class: "m-result", role: "status", "aria-live": "polite" }));
    form.addEventListener("submit", (event) => { event.preventDefault(); recordVaccination(); });
    return form;
  }

  function fillSelect(id, values, text, fallback) {
    const select = $(id);
    const current = select.value || fallback;
    select.replaceChildren(...options(values, text));
    select.value = current;
  }

  function fillActs() {
    fillSelect("vacc-act", ["primo-vaccination", "rappel", "vaccination"], (v) => tr(v), "rappel");
    fillSelect("vacc-route", ROUTES, label, "intramusculaire");
    fillSelect("vacc-site", SITES, label, "");
  }

  async function loadVaccines() {
    try {
      state.vaccines = await call("GET", "/v1/vaccinations/vaccines");
      $("vacc-vaccine").replaceChildren(...state.vaccines.map((v) => el("option", { value: v.code, text: v.label })));
    } catch (error) {
      showError("vacc-result", error);
    }
  }

  async function useLastScan() {
    try {
      const scans = await call("GET", "/v1/scans");
      const scan = scans.find((s) => s.kind === "gs1_datamatrix");
      if (!scan) { show("vacc-result", "error", [tr("no_scan")]); return; }
      $("vacc-dm").value = "";
      $("vacc-dm").dataset.scanId = scan.id;
      show("vacc-result", "info", [tr("scan_used", { at: new Date(scan.at).toLocaleTimeString(), lot: scan.fields.batch || "?", expiry: scan.fields.expiry ? frDate(scan.fields.expiry) : "?" })]);
    } catch (error) {
      showError("vacc-result", error);
    }
  }

  async function checkEligibility() {
    const patient = requirePatient("vacc-result");
    if (!patient) return;
    const params = new URLSearchParams({
      patient, vaccine: $("vacc-vaccine").value,
      immunocompromised: $("vacc-immuno").checked, severe_reaction_history: $("vacc-severe").checked,
    });
    try {
      const result = await call("GET", `/v1/vaccinations/eligibility?${params}`);
      const age = result.age_min === result.age_max ? `${result.age_min} ans` : `${result.age_min}–${result.age_max} ans`;
      show("vacc-result", result.eligible ? "ok" : "error", [
        result.eligible ? tr("eligible", { age }) : tr("not_eligible"),
        ...result.refusals.map((r) => `• ${r.message}`),
        ...result.warnings.map((w) => `${tr("warning")} ${w.message}`),
      ]);
    } catch (error) {
      showError("vacc-result", error);
    }
  }

  async function recordVaccination() {
    const patient = requirePatient("vacc-result");
    if (!patient) return;
    const dm = $("vacc-dm");
    const body = {
      patient_id: patient, vaccine: $("vacc-vaccine").value, act: $("vacc-act").value,
      route: $("vacc-route").value, dose_number: Number($("vacc-dose").value) || null,
      immunocompromised: $("vacc-immuno").checked, severe_reaction_history: $("vacc-severe").checked,
    };
    if (dm.value.trim()) body.datamatrix = dm.value.trim();
    else if (dm.dataset.scanId) body.scan_id = dm.dataset.scanId;
    else body.datamatrix = "";
    if ($("vacc-site").value) body.site = $("vacc-site").value;
    if ($("vacc-mss").value.trim()) body.mss_recipient = $("vacc-mss").value.trim();
    // Used by the daemon only when the scanned CIP is not in the catalogue (BDPM import).
    if ($("vacc-label").value.trim()) body.product_label = $("vacc-label").value.trim();
    if ($("vacc-cis").value.trim()) body.cis_code = $("vacc-cis").value.trim();
    try {
      const act = await call("POST", "/v1/vaccinations", body, { "Idempotency-Key": newKey() });
      dm.value = "";
      delete dm.dataset.scanId;
      show("vacc-result", "ok", [
        el("p", { "data-testid": "vacc-recorded", text: tr("recorded", { vaccine: act.vaccine_label, lot: act.product.lot, expiry: frDate(act.product.expiry) }) }),
        act.document_id ? tr("note_queued") : tr("note_skipped", { reason: skippedReason(act) }),
        ...failedRules(act),
        ...act.eligibility.warnings.map((w) => `${tr("warning")} ${w.message}`),
      ]);
    } catch (error) {
      showError("vacc-result", error);
    }
  }

  // ------------------------------------------------------------------ TROD

  function trodForm() {
    const form = el("form", { id: "trod-form", class: "m-form", autocomplete: "off" },
      field("trod-test", "test", el("select", { id: "trod-test", onchange: renderTrodParts },
        ...options(Object.keys(ANALYTES), label))),
      field("trod-maker", "kit_maker", el("input", { id: "trod-maker", type: "text", maxlength: "100", required: true })),
      field("trod-ref", "kit_ref", el("input", { id: "trod-ref", type: "text", maxlength: "64", required: true })),
      field("trod-lot", "kit_lot", el("input", { id: "trod-lot", type: "text", maxlength: "20", required: true })),
      field("trod-expiry", "kit_expiry", el("input", { id: "trod-expiry", type: "text", inputmode: "numeric", placeholder: "jj/mm/aaaa", maxlength: "10" })),
      el("fieldset", { id: "trod-readings", class: "m-group" }),
      field("trod-temp", "temperature", el("input", { id: "trod-temp", type: "number", step: "0.1", min: "34", max: "43" })),
      el("fieldset", { id: "trod-signs", class: "m-group" },
        check("trod-no-cough", "no_cough"), check("trod-nodes", "nodes"), check("trod-tonsils", "tonsils")),
      el("fieldset", { id: "trod-exclusions", class: "m-group" }),
      field("trod-episodes", "episodes", el("input", { id: "trod-episodes", type: "number", min: "0", max: "50", value: "0" })),
      field("trod-allergy", "allergy", el("select", { id: "trod-allergy" })),
      field("trod-weight", "weight", el("input", { id: "trod-weight", type: "number", step: "0.1", min: "1", max: "300" })),
      el("p", { class: "row" },
        el("button", { type: "submit", id: "trod-record", class: "primary", "data-m": "record_trod", text: tr("record_trod") })),
      el("div", { id: "trod-result", class: "m-result", role: "status", "aria-live": "polite" }),
      el("div", { id: "trod-next" }));
    form.addEventListener("submit", (event) => { event.preventDefault(); recordTrod(); });
    return form;
  }

  function renderTrodParts() {
    const test = $("trod-test").value;
    const readings = $("trod-readings");
    readings.replaceChildren(el("legend", { "data-m": "readings", text: tr("readings") }),
      ...ANALYTES[test].map((analyte) => codeField(`trod-r-${analyte}`, analyte,
        el("select", { id: `trod-r-${analyte}`, "data-analyte": analyte }, ...options(OUTCOMES, (v) => tr(v))))));
    const exclusions = EXCLUSIONS[test] || [];
    $("trod-exclusions").replaceChildren(el("legend", { "data-m": "exclusions", text: tr("exclusions") }),
      ...exclusions.map((code) => el("p", { class: "check" },
        el("input", { id: `trod-x-${code}`, type: "checkbox", "data-exclusion": code }),
        el("label", { for: `trod-x-${code}`, text: label(code) }))));
    $("trod-exclusions").hidden = exclusions.length === 0;
    $("trod-signs").hidden = test !== "angine";
    $("trod-episodes").parentElement.hidden = test !== "cystite";
    $("trod-allergy").replaceChildren(...options(["aucune", "penicillines", "betalactamines"], (v) => tr(v)));
  }

  async function recordTrod() {
    const patient = requirePatient("trod-result");
    if (!patient) return;
    const test = $("trod-test").value;
    const readings = {};
    for (const select of document.querySelectorAll("#trod-readings select")) readings[select.dataset.analyte] = select.value;
    const criteria = {
      no_cough: $("trod-no-cough").checked, tender_nodes: $("trod-nodes").checked,
      tonsil_swelling: $("trod-tonsils").checked, allergy: $("trod-allergy").value,
      exclusions: [...document.querySelectorAll("#trod-exclusions input:checked")].map((i) => i.dataset.exclusion),
      previous_episodes_12_months: Number($("trod-episodes").value) || 0,
    };
    if ($("trod-temp").value) criteria.temperature_c = $("trod-temp").value;
    if ($("trod-weight").value) criteria.weight_kg = $("trod-weight").value;
    const kit = { manufacturer: $("trod-maker").value, reference: $("trod-ref").value, lot: $("trod-lot").value };
    const expiry = $("trod-expiry").value.trim();
    if (expiry) {
      kit.expiry = window.LGO_DATES.parseFrDate(expiry);
      if (!kit.expiry) return show("trod-result", "error", [tr("bad_expiry")]);
    }
    $("trod-next").replaceChildren();
    try {
      state.trod = await call("POST", "/v1/trod", { patient_id: patient, test, kit, readings, criteria },
        { "Idempotency-Key": newKey() });
      renderTrodOutcome();
    } catch (error) {
      showError("trod-result", error);
    }
  }

  function renderTrodOutcome() {
    const t = state.trod;
    const protocol = t.protocol;
    const next = protocol.next;
    show("trod-result", next === "refer" ? "error" : "ok", [
      el("p", { "data-testid": "trod-recorded", text: tr("trod_recorded", { result: t.positive ? tr("positive") : tr("negative") }) }),
      protocol.score !== null && protocol.score !== undefined ? tr("score", { score: protocol.score }) : null,
      el("p", { "data-testid": "trod-next", "data-next": next, text: tr(`next_${next}`) }),
      ...protocol.refusals.map((r) => `• ${r.message}`),
      t.document_skipped ? tr("trod_doc_skipped", { reason: skippedReason(t) }) : null,
      ...failedRules(t),
    ]);
    const area = $("trod-next");
    if (next === "dispense") {
      area.replaceChildren(el("form", { id: "trod-dispense", class: "m-form", autocomplete: "off", onsubmit: dispense },
        field("trod-regimen", "regimen", el("select", { id: "trod-regimen" },
          ...protocol.regimens.map((r) => el("option", { value: r.code, text: r.label })))),
        field("trod-box", "box", el("input", { id: "trod-box", type: "text", inputmode: "numeric", pattern: "[0-9]{13}", maxlength: "13", required: true })),
        field("trod-unit", "unit_mg", el("input", { id: "trod-unit", type: "number", min: "1", max: "5000" })),
        el("div", { class: "m-field wide" }, el("label", { for: "trod-address", text: tr("address") }),
          el("input", { id: "trod-address", type: "text", maxlength: "300", required: true })),
        el("p", { class: "row" }, el("button", { type: "submit", id: "trod-dispense-submit", class: "primary", text: tr("dispense") }))));
    } else if (next === "refer") {
      area.replaceChildren(el("p", { class: "row" },
        el("button", { type: "button", id: "trod-referral", text: tr("referral"), onclick: openReferral })));
    } else {
      area.replaceChildren();
    }
  }

  async function dispense(event) {
    event.preventDefault();
    const body = { regimen: $("trod-regimen").value, cip13: $("trod-box").value.trim() };
    if ($("trod-unit").value) body.unit_mg = $("trod-unit").value;
    body.patient_address = $("trod-address").value.trim();
    try {
      const result = await call("POST", `/v1/trod/${encodeURIComponent(state.trod.id)}/dispensation`, body);
      const line = result.lines[0];
      $("trod-dispense-submit").disabled = true;  // one antibiotic per test
      $("trod-dispense").append(el("p", { class: "m-result ok", "data-testid": "trod-dispensed",
        text: tr("dispensed", { units: line.units, boxes: line.boxes, number: line.ordonnancier_number ?? "—" }) }));
    } catch (error) {
      showError("trod-result", error);
    }
  }

  async function openReferral() {
    const token = localStorage.getItem(TOKEN_KEY);
    const response = await fetch(`/v1/trod/${encodeURIComponent(state.trod.id)}/referral`,
      { headers: { Authorization: `Bearer ${token}` } });
    if (!response.ok) { showError("trod-result", new Error(`HTTP ${response.status}`)); return; }
    const url = URL.createObjectURL(await response.blob());
    const link = el("a", { href: url, target: "_blank", rel: "noopener", id: "trod-referral-link" });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  }

  // ------------------------------------------------------------------ section

  function applyTexts() {
    for (const node of document.querySelectorAll("#missions [data-m]")) node.textContent = tr(node.dataset.m);
    fillActs();
    if ($("trod-test")) {
      fillSelect("trod-test", Object.keys(ANALYTES), label, "angine");
      const current = { allergy: $("trod-allergy").value };
      renderTrodParts();
      $("trod-allergy").value = current.allergy || "aucune";
    }
  }

  function selectTab(name) {
    for (const tab of document.querySelectorAll("#missions [role=tab]")) {
      const on = tab.dataset.tab === name;
      tab.setAttribute("aria-selected", String(on));
      $(`missions-${tab.dataset.tab}`).hidden = !on;
    }
  }

  function init() {
    const root = $("missions");
    if (!root) return;
    const tab = (name, key) => el("button", { type: "button", role: "tab", "data-tab": name, id: `missions-tab-${name}`,
      "aria-controls": `missions-${name}`, "data-m": key, text: tr(key), onclick: () => selectTab(name) });
    root.replaceChildren(
      el("summary", {}, el("h2", { "data-m": "title", text: tr("title") })),
      el("div", { role: "tablist", class: "m-tabs" }, tab("vacc", "tab_vacc"), tab("trod", "tab_trod")),
      el("section", { id: "missions-vacc", role: "tabpanel" }, vaccinationForm()),
      el("section", { id: "missions-trod", role: "tabpanel" }, trodForm()));
    fillActs();
    renderTrodParts();
    selectTab("vacc");
    root.addEventListener("toggle", () => { if (root.open && !state.vaccines.length) loadVaccines(); });
    // The page's FR/EN switch changes <html lang>: follow it.
    new MutationObserver(applyTexts).observe(document.documentElement, { attributes: true, attributeFilter: ["lang"] });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
