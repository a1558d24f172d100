// Desktop side of docs/protocol.md §2: show the QR, rotate it, long-poll, take the code.
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

  function show(step) {
    for (const s of ["step-qr", "step-code", "step-done"]) {
      $(s).hidden = s !== step;
    }
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
      r = await api("POST", API);
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
    const img = document.createElement("img");
    img.alt = "QR";
    img.src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(r.json.qr_svg);
    $("qr").replaceChildren(img);
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
      state = "consumed";
      $("who").textContent = r.json.identity.given_name + " " + r.json.identity.surname;
      show("step-done");
      say("");
      return;
    }
    const e = r.json || {};
    say(e.message_it || "Errore", e.message);
    $("code").value = "";
    if (e.error === "too_many_attempts" || (e.error === "wrong_code" && e.tries_left === 0)
        || e.error === "expired" || e.error === "wrong_state") {
      setTimeout(restart, 3000);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("code-form").addEventListener("submit", submitCode);
    newQr();
  });
})();
