// Back to a pending OpenID Connect authorization: the login page is opened as
// /?return=/oidc/consent/<id>&level=<n>[&fresh=1], and only that same-origin path is
// followed. The session cookie is SameSite=Strict, so it did not reach the consent page on
// the way in from the service's site: if this browser's session already reaches the level
// (and no new login is asked, fresh=1), go back at once (the request from this page
// carries the cookie); else when the login is done.
// Loaded by index.html.
(function () {
  "use strict";
  const q = new URLSearchParams(window.location.search);
  const target = q.get("return");
  const level = Number(q.get("level") || "3");
  const fresh = q.get("fresh") === "1";
  if (!target || !/^\/oidc\/consent\/[A-Za-z0-9_-]{1,64}$/.test(target)) {
    return;
  }
  function follow() {
    const done = document.getElementById("step-done");
    if (done && !done.hidden) {
      window.location.assign(target);
      return true;
    }
    return false;
  }
  document.addEventListener("DOMContentLoaded", async () => {
    if (!fresh) {
      try {
        const r = await fetch("/api/v1/session", { credentials: "same-origin" });
        if (r.ok && (await r.json()).level >= level) {
          window.location.assign(target);
          return;
        }
      } catch (_) { /* not logged in: log in below */ }
    }
    const done = document.getElementById("step-done");
    if (!done || follow()) {
      return;
    }
    new MutationObserver(follow).observe(done, { attributes: true, attributeFilter: ["hidden"] });
  });
})();
