// Back to a pending OpenID Connect authorization once the desktop login succeeded: the
// login page is opened as /?return=/oidc/consent/<id>; only that same-origin path is
// followed. Loaded by index.html; it watches the "done" step become visible.
(function () {
  "use strict";
  const target = new URLSearchParams(window.location.search).get("return");
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
  document.addEventListener("DOMContentLoaded", () => {
    const done = document.getElementById("step-done");
    if (!done || follow()) {
      return;
    }
    new MutationObserver(follow).observe(done, { attributes: true, attributeFilter: ["hidden"] });
  });
})();
