// Desktop side of docs/protocol.md §2 (show the QR, rotate it, long-poll, take the code) and
// §3 ("Entra con l'app": ask for a codice fiscale, show the number, long-poll the request).
"use strict";

(function () {
  const API = "/api/v1/desktop/rendezvous";
  let rid = null;
  let state = null;
  let rotateTimer = null;
  let generation = 0; // a poll started for an old QR stops when a new one exists

  const $ = (id) => document.getElementById(id);

  function say(it, en) {
    $("status").textContent = en ? it + " — " + en : it;
  }

  // A service's login (OpenID, /?return=…&level=N) offers only the methods that can reach
  // the level it asks: level 3 is the card, so only the QR (approved with the CIE).
  const asked = Number(new URLSearchParams(window.location.search).get("level") || "0");

  function show(step) {
    // The other logins (level 1–2) sit beside the QR.
    const beside = asked >= 3 ? [] : ["step-app", "step-otp", "step-pin"];
    for (const s of ["step-qr", "step-app", "step-otp", "step-pin", "step-code", "step-done"]) {
      $(s).hidden = s !== step && !(beside.includes(s) && step === "step-qr");
    }
  }

  // A server-drawn QR (SVG) as an image in element `id`.
  function showQr(id, svg) {
    const img = document.createElement("img");
    img.alt = "QR";
    img.src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(svg);
    $(id).replaceChildren(img);
  }

  async function api(method, url, body) {
    const resp = await fetch(url, {
      method,
      credentials: "same-origin",
      headers: body ? { "Content-Type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    let json = null;
    try { json = await resp.json(); } catch (_) { /* empty body */ }
    return { ok: resp.ok, status: resp.status, json };
  }

  async function newQr() {
    clearTimeout(rotateTimer);
    let r;
    try {
      // The level the service asks travels with the QR: the phone shows it and, at 3,
      // offers only the card (the server refuses the phone's key then).
      r = await api("POST", API, asked >= 1 && asked <= 3 ? { level: asked } : undefined);
    } catch (_) {
      say("Server non raggiungibile: nuovo tentativo tra poco.", "Server unreachable: retrying shortly.");
      rotateTimer = setTimeout(newQr, 5000);
      return;
    }
    if (!r.ok) {
      const wait = (r.json && r.json.retry_after) || 10;
      say((r.json && r.json.message_it) || "Errore", r.json && r.json.message);
      rotateTimer = setTimeout(newQr, wait * 1000);
      return;
    }
    rid = r.json.rid;
    state = "created";
    generation += 1;
    showQr("qr", r.json.qr_svg);
    $("qr-text").textContent = r.json.qr;
    say("");
    const ms = Math.max(1, r.json.rotate_at - Math.floor(Date.now() / 1000)) * 1000;
    rotateTimer = setTimeout(() => { if (state === "created") newQr(); }, Math.min(ms, 30000));
    poll(generation);
  }

  async function poll(gen) {
    while (gen === generation) {
      let r;
      try {
        r = await api("GET", API + "/" + encodeURIComponent(rid) + "?after=" + state);
      } catch (_) {
        await new Promise((ok) => setTimeout(ok, 2000));
        continue;
      }
      if (gen !== generation) return;
      if (!r.ok) {
        say((r.json && r.json.message_it) || "Errore", r.json && r.json.message);
        return;
      }
      if (r.json.state === state) continue;
      state = r.json.state;
      switch (state) {
        case "claimed":
          clearTimeout(rotateTimer);
          say("Codice inquadrato: conferma sul telefono.", "Scanned: confirm on your phone.");
          break;
        case "approved":
          show("step-code");
          say("");
          $("code").focus();
          break;
        case "denied":
          say("Accesso negato dal telefono.", "Denied on the phone.");
          setTimeout(restart, 3000);
          return;
        case "consumed":
          return;
        case "aborted":
        case "expired":
          say("Codice annullato o scaduto: eccone uno nuovo.", "Code cancelled or expired: here is a new one.");
          restart();
          return;
      }
    }
  }

  function restart() {
    show("step-qr");
    newQr();
  }

  async function submitCode(ev) {
    ev.preventDefault();
    const code = $("code").value.trim();
    let r;
    try {
      r = await api("POST", API + "/" + encodeURIComponent(rid) + "/code", { code });
    } catch (_) {
      say("Server non raggiungibile: riprova.", "Server unreachable: try again.");
      return;
    }
    if (r.ok) {
      generation += 1;
      approvalGen += 1;
      state = "consumed";
      $("who").textContent = r.json.identity.given_name + " " + r.json.identity.surname;
      showLevel(r.json.level);
      show("step-done");
      say("");
      showSession();
      return;
    }
    const e = r.json || {};
    if (e.error === "wrong_code" && typeof e.tries_left === "number" && e.tries_left > 0) {
      const n = e.tries_left;
      say((e.message_it || "Codice errato") + (n === 1 ? " Resta 1 tentativo." : " Restano " + n + " tentativi."),
          (e.message || "Wrong code") + (n === 1 ? " 1 try left." : " " + n + " tries left."));
    } else {
      say(e.message_it || "Errore", e.message);
    }
    $("code").value = "";
    if (e.error === "too_many_attempts" || (e.error === "wrong_code" && e.tries_left === 0)
        || e.error === "expired" || e.error === "wrong_state") {
      setTimeout(restart, 3000);
    }
  }

  // §3: number matching with the enrolled phone.
  const APPROVALS = "/api/v1/approvals";
  let approvalGen = 0; // a poll for an older request stops when a new one is made

  function endApproval() {
    $("app-wait").hidden = true;
    $("number").textContent = "";
  }

  async function appLogin(ev) {
    ev.preventDefault();
    const cf = $("cf").value.trim().toUpperCase();
    let r;
    try {
      r = await api("POST", APPROVALS, { codice_fiscale: cf });
    } catch (_) {
      say("Server non raggiungibile: riprova.", "Server unreachable: try again.");
      return;
    }
    if (!r.ok) {
      const e = r.json || {};
      say(e.message_it || "Errore", e.message);
      return;
    }
    approvalGen += 1;
    $("number").textContent = String(r.json.number);
    $("app-wait").hidden = false;
    say("Apri l'app sul telefono e scegli il numero mostrato qui.",
        "Open the app on your phone and pick the number shown here.");
    pollApproval(r.json.request_id, approvalGen);
  }

  async function pollApproval(id, gen) {
    let st = "pending";
    while (gen === approvalGen) {
      let r;
      try {
        r = await api("GET", APPROVALS + "/" + encodeURIComponent(id) + "?after=" + st);
      } catch (_) {
        await new Promise((ok) => setTimeout(ok, 2000));
        continue;
      }
      if (gen !== approvalGen) return;
      if (!r.ok) {
        say((r.json && r.json.message_it) || "Errore", r.json && r.json.message);
        endApproval();
        return;
      }
      st = r.json.state;
      switch (st) {
        case "consumed":
          await appLoggedIn();
          return;
        case "denied":
          say("Accesso negato dal telefono.", "Denied on the phone.");
          endApproval();
          return;
        case "aborted":
          say("Richiesta annullata (numero errato o nuova richiesta): riprova.",
              "Request cancelled (wrong number or a newer request): try again.");
          endApproval();
          return;
        case "expired":
          say("Richiesta scaduta: riprova.", "Request expired: try again.");
          endApproval();
          return;
        default: // pending, approved: keep waiting
          continue;
      }
    }
  }

  async function appLoggedIn() {
    generation += 1; // the QR's poll stops
    clearTimeout(rotateTimer);
    state = "consumed";
    endApproval();
    pinFormsReset();
    await showSession();
    show("step-done");
    say("");
  }

  // The account view: who, the level and how it was reached, the active factors, and the
  // enrolment of a second factor for a PIN account (a level-1 session may enrol one only
  // while none is active: the server refuses otherwise).
  const FACTORS = {
    cie: ["CIE", "CIE"],
    pin: ["PIN", "PIN"],
    app: ["app", "app"],
    otp: ["codice OTP", "OTP code"],
    "pin+app": ["PIN + app", "PIN + app"],
    "pin+otp": ["PIN + codice OTP", "PIN + OTP code"],
  };
  const named = (k, i) => (FACTORS[k] ? FACTORS[k][i] : k);

  async function showSession() {
    let r;
    try {
      r = await api("GET", "/api/v1/session");
    } catch (_) {
      return; // the session exists; this view is only a courtesy
    }
    if (!r.ok) return;
    const j = r.json;
    $("who").textContent = j.identity.given_name + " " + j.identity.surname;
    showLevel(j.level);
    const list = (i) => j.factors.map((f) => named(f, i)).join(", ");
    $("factors").textContent =
      "Accesso con " + named(j.method, 0) + " · Fattori attivi: " + list(0)
      + " — Logged in with " + named(j.method, 1) + " · Active factors: " + list(1);
    const second = j.factors.includes("app") || j.factors.includes("otp");
    $("enrol").hidden = !(j.factors.includes("pin") && (j.level >= 2 || !second));
  }

  // §3 OTP fallback: codice fiscale and the app's offline 6-digit code.
  async function otpLogin(ev) {
    ev.preventDefault();
    const cf = $("otp-cf").value.trim().toUpperCase();
    const code = $("otp-code").value.trim();
    let r;
    try {
      r = await api("POST", "/api/v1/otp/login", { codice_fiscale: cf, code });
    } catch (_) {
      say("Server non raggiungibile: riprova.", "Server unreachable: try again.");
      return;
    }
    $("otp-code").value = "";
    if (r.ok) {
      generation += 1; // the QR's poll stops
      approvalGen += 1;
      clearTimeout(rotateTimer);
      state = "consumed";
      $("who").textContent = r.json.identity.given_name + " " + r.json.identity.surname;
      showLevel(r.json.level);
      show("step-done");
      say("");
      showSession();
      return;
    }
    codeRefusal(r.json || {});
  }

  // A refused one-time code: the server's message, then the wait or the tries left.
  function codeRefusal(e) {
    let it = e.message_it || "Errore";
    let en = e.message || "Error";
    if (typeof e.retry_after === "number" && e.retry_after > 0) {
      if (!/\d/.test(it)) {
        it += " Attendi " + e.retry_after + " s.";
        en += " Wait " + e.retry_after + " s.";
      }
    } else if (e.error === "wrong_code" && typeof e.tries_left === "number" && e.tries_left > 0) {
      it += e.tries_left === 1 ? " Resta 1 tentativo." : " Restano " + e.tries_left + " tentativi.";
      en += e.tries_left === 1 ? " 1 try left." : " " + e.tries_left + " tries left.";
    }
    say(it, en);
  }

  // The session's assurance level, as the server reports it to the service.
  const LEVELS = {
    1: ["1 (PIN)", "1 (PIN)"],
    2: ["2 (telefono registrato)", "2 (enrolled phone)"],
    3: ["3 (CIE)", "3 (CIE)"],
  };

  function showLevel(level) {
    const l = LEVELS[level];
    $("level").textContent = l ? "Livello di accesso " + l[0] + " — Assurance level " + l[1] : "";
  }

  // Residents abroad (docs/abroad-pin.md): codice fiscale + PIN, the forced change at the
  // first login. The check here only spares a round trip: the server's is authoritative.
  const CF_ODD = [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23];
  const CF_FORMAT = /^[A-Z]{6}[0-9LMNPQRSTUV]{2}[ABCDEHLMPRST][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]$/;

  function cfProblem(cf) {
    const digit = (c) => (c >= "0" && c <= "9" ? c.charCodeAt(0) - 48 : "LMNPQRSTUV".indexOf(c));
    const day = digit(cf[9]) * 10 + digit(cf[10]);
    if (!CF_FORMAT.test(cf) || !((day >= 1 && day <= 31) || (day >= 41 && day <= 71))) {
      return ["Il codice fiscale ha 16 caratteri (lettere e cifre): controlla di averlo scritto per intero.",
        "The codice fiscale has 16 characters (letters and digits): check that you typed it in full."];
    }
    let sum = 0;
    for (let i = 0; i < 15; i++) {
      const c = cf.charCodeAt(i);
      const v = c <= 57 ? c - 48 : c - 65;
      sum += i % 2 === 0 ? CF_ODD[v] : v;
    }
    if (cf.charCodeAt(15) !== 65 + (sum % 26)) {
      return ["L'ultima lettera del codice fiscale non corrisponde: controlla di averlo digitato correttamente.",
        "The codice fiscale's last letter does not match: check that you typed it correctly."];
    }
    return null;
  }

  const clean = (v) => v.replace(/\s+/g, "").toUpperCase();

  function refusal(e) {
    let it = e.message_it || "Errore";
    let en = e.message || "Error";
    // The server's messages already say the seconds; the header-less case still gets them.
    if (typeof e.retry_after === "number" && e.retry_after > 0 && !/\d/.test(it)) {
      it += " Attendi " + e.retry_after + " s.";
      en += " Wait " + e.retry_after + " s.";
    }
    say(it, en);
  }

  function pinLoggedIn(info) {
    generation += 1; // the QR's poll stops
    approvalGen += 1;
    clearTimeout(rotateTimer);
    state = "consumed";
    $("who").textContent = info.identity.given_name + " " + info.identity.surname;
    showLevel(info.level);
    pinFormsReset();
    show("step-done");
    say("");
    return showSession(); // the factors, and the upgrade by the app or an OTP code
  }

  function pinFormsReset() {
    $("pin-otp-form").hidden = true;
    $("pin-otp-code").value = "";
    $("pin-change-form").hidden = true;
    $("pin-form").hidden = false;
  }

  // A right PIN of a holder with an enrolled phone: the phone approves (number matching),
  // as for "Entra con l'app"; the session is then level 2.

  // With an OTP the page asks for its code; with both, either completes the login.
  function pinSecondFactor(j) {
    if (j.otp_required) {
      $("pin-form").hidden = true;
      $("pin-otp-form").hidden = false;
      $("pin-otp-code").focus();
    }
    if (j.approval) {
      approvalGen += 1;
      $("number").textContent = String(j.approval.number);
      $("app-wait").hidden = false;
      pollApproval(j.approval.request_id, approvalGen);
    }
    if (j.approval && j.otp_required) {
      say("PIN corretto: digita il codice OTP, oppure scegli sul telefono il numero mostrato qui.",
        "Right PIN: type the OTP code, or pick the number shown here on your phone.");
    } else if (j.approval) {
      say("PIN corretto: apri l'app sul telefono e scegli il numero mostrato qui.",
        "Right PIN: open the app on your phone and pick the number shown here.");
    } else {
      say("PIN corretto: digita il codice OTP.", "Right PIN: type the OTP code.");
    }
  }

  async function pinOtp(ev) {
    ev.preventDefault();
    const code = $("pin-otp-code").value.trim();
    if (!/^[0-9]{6}$/.test(code)) {
      say("Digita le 6 cifre mostrate dall'app di autenticazione.",
        "Type the 6 digits your authenticator app shows.");
      return;
    }
    const r = await pinCall("/api/v1/abroad/login/otp", { code });
    if (!r) return;
    $("pin-otp-code").value = "";
    if (!r.ok) {
      const e = r.json || {};
      codeRefusal(e);
      if (e.error === "not_found") pinFormsReset(); // the right PIN is too old: type it again
      return;
    }
    approvalGen += 1; // the phone is no longer asked
    endApproval();
    await pinLoggedIn(r.json);
  }

  async function otpEnrolStart() {
    const r = await pinCall("/api/v1/abroad/otp/enrol", {});
    if (!r) return;
    if (!r.ok) {
      refusal(r.json || {});
      return;
    }
    showQr("otp-enrol-qr", r.json.qr_svg);
    $("otp-enrol-secret").textContent = r.json.secret.replace(/(.{4})/g, "$1 ").trim();
    $("otp-enrol-uri").textContent = r.json.uri;
    $("otp-enrol-show").hidden = false;
    say("");
    $("otp-enrol-code").focus();
  }

  async function otpEnrolConfirm(ev) {
    ev.preventDefault();
    const code = $("otp-enrol-code").value.trim();
    const r = await pinCall("/api/v1/abroad/otp/confirm", { code });
    if (!r) return;
    $("otp-enrol-code").value = "";
    if (!r.ok) {
      codeRefusal(r.json || {});
      return;
    }
    $("otp-enrol-show").hidden = true;
    $("otp-enrol-qr").replaceChildren();
    $("otp-enrol-secret").textContent = "";
    $("otp-enrol-uri").textContent = "";
    await showSession();
    say(r.json.message_it, r.json.message);
  }

  async function enrolStart() {
    const r = await pinCall("/api/v1/abroad/enrol", {});
    if (!r) return;
    if (!r.ok) {
      refusal(r.json || {});
      return;
    }
    showQr("enrol-qr", r.json.qr_svg);
    $("enrol-code").textContent = r.json.code;
    $("enrol-show").hidden = false;
    say("");
  }

  async function pinCall(url, body) {
    try {
      return await api("POST", url, body);
    } catch (_) {
      say("Server non raggiungibile: riprova.", "Server unreachable: try again.");
      return null;
    }
  }

  async function pinLogin(ev) {
    ev.preventDefault();
    const cf = clean($("pin-cf").value);
    const problem = cfProblem(cf);
    if (problem) {
      say(problem[0], problem[1]);
      $("pin-cf").focus();
      return;
    }
    const pin = clean($("pin").value);
    if (!/^[A-Z0-9]{8}$|^[A-Z0-9]{16}$/.test(pin)) {
      say("Il PIN ha 8 caratteri tra lettere e cifre (16 al primo accesso).",
        "The PIN has 8 characters, letters and digits (16 at the first login).");
      $("pin").focus();
      return;
    }
    const r = await pinCall("/api/v1/abroad/login", { codice_fiscale: cf, pin });
    if (!r) return;
    if (!r.ok) {
      $("pin").value = "";
      refusal(r.json || {});
      return;
    }
    if (r.json.pin_change_required) {
      // The typed PIN stays in the field for the change (it is the old PIN).
      $("pin-form").hidden = true;
      $("pin-change-form").hidden = false;
      say("Primo accesso: scegli il tuo nuovo PIN di 8 caratteri.",
        "First login: choose your new 8-character PIN.");
      $("new-pin").focus();
      return;
    }
    $("pin").value = "";
    if (r.json.approval || r.json.otp_required) {
      pinSecondFactor(r.json);
      return;
    }
    pinLoggedIn(r.json);
  }

  async function pinChange(ev) {
    ev.preventDefault();
    const cf = clean($("pin-cf").value);
    const oldPin = clean($("pin").value);
    const newPin = clean($("new-pin").value);
    if (newPin !== clean($("new-pin2").value)) {
      say("I due nuovi PIN non coincidono: digitali di nuovo.", "The two new PINs differ: type them again.");
      $("new-pin").value = "";
      $("new-pin2").value = "";
      $("new-pin").focus();
      return;
    }
    const r = await pinCall("/api/v1/abroad/pin", { codice_fiscale: cf, old_pin: oldPin, new_pin: newPin });
    if (!r) return;
    if (!r.ok) {
      const e = r.json || {};
      refusal(e);
      $("new-pin").value = "";
      $("new-pin2").value = "";
      if (e.error !== "bad_request") {
        // The old PIN was refused (wrong, or a wait): start over from the login form.
        $("pin").value = "";
        $("pin-change-form").hidden = true;
        $("pin-form").hidden = false;
      }
      return;
    }
    // Changed: log in with the new PIN at once.
    $("pin").value = "";
    $("new-pin").value = "";
    $("new-pin2").value = "";
    $("pin-change-form").hidden = true;
    $("pin-form").hidden = false;
    const l = await pinCall("/api/v1/abroad/login", { codice_fiscale: cf, pin: newPin });
    if (!l) return;
    if (!l.ok || l.json.pin_change_required) {
      refusal(l.json || {});
      return;
    }
    if (l.json.approval || l.json.otp_required) {
      pinSecondFactor(l.json);
      return;
    }
    pinLoggedIn(l.json);
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("pin-form").addEventListener("submit", pinLogin);
    $("pin-change-form").addEventListener("submit", pinChange);
    $("enrol-start").addEventListener("click", enrolStart);
    $("pin-otp-form").addEventListener("submit", pinOtp);
    $("otp-enrol-start").addEventListener("click", otpEnrolStart);
    $("otp-enrol-form").addEventListener("submit", otpEnrolConfirm);
    $("code-form").addEventListener("submit", submitCode);
    $("app-form").addEventListener("submit", appLogin);
    $("otp-form").addEventListener("submit", otpLogin);
    show("step-qr"); // with the logins that reach the level asked
    newQr();
  });
})();
