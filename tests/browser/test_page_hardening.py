"""The pages' security headers, in a real browser (issue 14).

A real `companion-server` (the binary, SQLite in a temporary folder, the OpenID Provider on)
on loopback; Debian's Chromium, headless, driven by Playwright, with the page's
Content-Security-Policy in force (no `bypass_csp`). For each page (the desktop login page,
the QR landing page, the provider's error and logout pages) and every response the page
loads (its script, style sheet, API answers): each security header with its value, a CSP
that forbids inline script and framing, every Set-Cookie `Secure; HttpOnly; SameSite`; every
request the page makes stays on the server's origin (anything else is aborted and fails the
test); no CSP violation (`securitypolicyviolation` events and the console's errors). The page
still works: the desktop page shows its QR and long-polls it, the residents-abroad form
submits and shows the server's answer. And a page of another origin that frames the login
page gets nothing: the frame is blocked, its script never runs (no rendezvous is created).

Run by scripts/browser-test.sh (env: SERVER_BIN, CARD_CA, CHROMIUM). Needs no bindings.
"""

import http.server
import os
import sys
import tempfile
import threading
import time
import unittest
from urllib.parse import urlsplit

sys.path.insert(0, os.path.dirname(__file__))

from in_chromium import InChromium  # noqa: E402

# What src/headers.rs puts on every response, written out again here.
COMMON = {
    "strict-transport-security": "max-age=63072000; includeSubDomains",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=(), "
                          "serial=(), hid=(), midi=(), display-capture=(), "
                          "publickey-credentials-get=(), clipboard-read=(), browsing-topics=()",
}

# Reports each violation to the test through a binding (Playwright's, outside the page's
# CSP): installed before any of the page's own script runs.
VIOLATION_LISTENER = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolation(e.violatedDirective + " blocked " + (e.blockedURI || "inline")
    + " at " + e.sourceFile + ":" + e.lineNumber);
});
"""

PIN_CF = "RSSMRA80A01H501U"


def header_problems(url, headers):
    """What is wrong with one response's headers (`headers`: (name, value) pairs)."""
    values = {}
    for name, value in headers:
        values.setdefault(name.lower(), []).append(value)
    out = []
    for name, want in COMMON.items():
        if values.get(name) != [want]:
            out.append(f"{url}: {name} {values.get(name)!r}, want {want!r}")
    csp = values.get("content-security-policy", [])
    if len(csp) != 1:
        out.append(f"{url}: content-security-policy {csp!r}, want one")
    else:
        out.extend(f"{url}: {p}" for p in csp_problems(csp[0]))
    for cookie in values.get("set-cookie", []):
        attrs = [a.strip() for a in cookie.split(";")]
        if ("Secure" not in attrs or "HttpOnly" not in attrs
                or not ({"SameSite=Strict", "SameSite=Lax"} & set(attrs))):
            out.append(f"{url}: cookie {cookie!r} lacks Secure, HttpOnly or SameSite")
    return out


def csp_problems(csp):
    """No framing, no <base>, nothing by default, no inline or evaluated script and nothing
    from elsewhere (images may be data: URLs, forms may post to a relying party)."""
    directives = {}
    for part in csp.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    out = []
    for name in ("default-src", "frame-ancestors", "base-uri"):
        if directives.get(name) != ["'none'"]:
            out.append(f"CSP {csp!r}: want {name} 'none'")
    for name, sources in directives.items():
        for s in sources:
            if not (s in ("'self'", "'none'") or (name == "img-src" and s == "data:")
                    or (name == "form-action" and s.startswith("https://"))):
                out.append(f"CSP {csp!r}: {name} allows {s}")
    return out


class Framer:
    """A page of another origin (plain HTTP on another loopback port) framing `target`."""

    def __init__(self, target):
        page = (f'<!doctype html><title>framer</title>'
                f'<iframe id="victim" src="{target}" width="600" height="600"></iframe>').encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Visit:
    """One browser context watching everything a page does."""

    def __init__(self, browser, origin):
        self.origin = origin
        self.ctx = browser.new_context(ignore_https_errors=True, locale="it-IT")
        self.requests = []      # (method, url) of every request
        self.off_origin = []    # requests to elsewhere (aborted)
        self.problems = []      # header problems of every response from the server
        self.violations = []    # CSP violations and console errors
        self.ctx.expose_binding("__cspViolation", lambda _src, text: self.violations.append(text))
        self.ctx.add_init_script(VIOLATION_LISTENER)
        self.ctx.route("**/*", self._route)
        self.page = self.ctx.new_page()
        self.page.on("request", lambda r: self.requests.append((r.method, r.url)))
        self.page.on("response", self._response)
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.violations.append(f"page error: {e}"))

    def _route(self, route):
        url = route.request.url
        parts = urlsplit(url)
        if parts.scheme == "data" or f"{parts.scheme}://{parts.netloc}" == self.origin:
            route.continue_()
        else:
            self.off_origin.append(url)
            route.abort()

    def _response(self, response):
        if response.url.startswith(self.origin):
            self.problems.extend(header_problems(
                response.url, [(h["name"], h["value"]) for h in response.headers_array()]))

    def _console(self, msg):
        # Errors, and any word of a policy (CSP, Permissions-Policy) at any level.
        text = msg.text
        if msg.type == "error" or "Policy" in text or "policy" in text:
            # A refused API call (4xx) is the page working, not a violation.
            if "Failed to load resource: the server responded with a status of 4" in text:
                return
            self.violations.append(f"console {msg.type}: {text}")

    def goto(self, path):
        return self.page.goto(self.origin + path)

    def close(self):
        self.ctx.close()


class PageHardeningInChromium(InChromium):

    @classmethod
    def server_extra(cls):
        # The OpenID Provider on (its key created in a temporary folder), for its pages.
        cls.key_dir = tempfile.TemporaryDirectory()
        return ("--oidc-key", os.path.join(cls.key_dir.name, "op.pem"))

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.key_dir.cleanup()

    def setUp(self):
        self.visit = Visit(self.browser, self.server.origin)

    def tearDown(self):
        self.visit.close()

    def assert_clean(self, min_responses=1):
        v = self.visit
        self.assertEqual(v.off_origin, [], "requests left the server's origin")
        self.assertEqual(v.problems, [], "responses without the security headers")
        self.assertEqual(v.violations, [], "CSP violations or console errors")
        on_origin = [u for _, u in v.requests if u.startswith(v.origin)]
        self.assertGreaterEqual(len(on_origin), min_responses, v.requests)

    def test_desktop_page_shows_its_qr_and_polls_under_its_headers(self):
        v = self.visit
        resp = v.goto("/")
        self.assertEqual(resp.status, 200)
        csp = resp.header_value("content-security-policy")
        self.assertIn("script-src 'self';", csp)
        v.page.wait_for_selector("#qr img", timeout=15000)
        # The QR is the server's SVG as a data: image (what img-src allows beside 'self').
        self.assertTrue(v.page.locator("#qr img").get_attribute("src").startswith(
            "data:image/svg+xml"))
        qr = v.page.locator("#qr-text").text_content()
        self.assertTrue(qr.startswith(self.server.origin + "/q#v1."), qr)
        # The page long-polls its rendezvous.
        rid = qr.split("#v1.")[1].split(".")[0]
        deadline = time.time() + 10
        while not any(m == "GET" and f"/api/v1/desktop/rendezvous/{rid}?after=" in u
                      for m, u in v.requests):
            self.assertLess(time.time(), deadline, f"no poll of {rid}: {v.requests}")
            v.page.wait_for_timeout(100)
        # The rendezvous' binding cookie came with the page's first call, and is HttpOnly:
        # the page's own script cannot read it.
        cookies = {c["name"]: c for c in v.ctx.cookies()}
        self.assertIn("cc_bind", cookies)
        self.assertTrue(cookies["cc_bind"]["httpOnly"] and cookies["cc_bind"]["secure"])
        self.assertEqual(cookies["cc_bind"]["sameSite"], "Strict")
        self.assertNotIn("cc_bind", v.page.evaluate("document.cookie"))
        # app.js, oidc-return.js, app.css, the rendezvous, its poll.
        self.assert_clean(min_responses=5)

    def test_abroad_login_form_submits_and_shows_the_answer(self):
        v = self.visit
        v.goto("/")
        v.page.wait_for_selector("#pin-form", state="visible", timeout=15000)
        v.page.fill("#pin-cf", PIN_CF)
        v.page.fill("#pin", "ABCD1234EFGH5678")
        with v.page.expect_response(lambda r: r.url.endswith("/api/v1/abroad/login")) as got:
            v.page.click("#pin-login")
        answer = got.value
        # No PIN was issued to this codice fiscale: refused, and the page says so.
        self.assertGreaterEqual(answer.status, 400)
        self.assertEqual(answer.request.method, "POST")
        message = answer.json()["message_it"]
        deadline = time.time() + 10
        while message not in (v.page.locator("#status").text_content() or ""):
            self.assertLess(time.time(), deadline, "the page did not show the answer")
            v.page.wait_for_timeout(100)
        self.assert_clean(min_responses=5)

    def test_other_pages_under_their_headers(self):
        v = self.visit
        for path, status in [
            ("/q", 200),                    # where the QR leads a phone without the app
            ("/oidc/authorization", 400),   # the provider's error page
            ("/oidc/consent/nope", 400),
            ("/oidc/logout", 400),          # the provider's logout, without a request
        ]:
            resp = v.goto(path)
            self.assertEqual(resp.status, status, path)
            # Each page is styled by the one sheet: it loaded under the policy.
            self.assertEqual(v.page.locator("main").evaluate(
                "m => getComputedStyle(m).maxWidth"), "512px", path)
        self.assert_clean(min_responses=8)

    def test_a_page_of_another_origin_cannot_frame_the_login_page(self):
        v = self.visit
        framer = Framer(self.server.origin + "/")
        try:
            # The framing page is another origin: let the visit's route through to it.
            v.ctx.unroute("**/*")
            v.ctx.route("**/*", lambda route: (
                route.continue_() if route.request.url.startswith(framer.origin)
                else v._route(route)))
            v.page.goto(framer.origin + "/")
            v.page.wait_for_selector("#victim")
            v.page.wait_for_timeout(1500)
            frame = v.page.frame_locator("#victim")
            # The login page is not rendered in the frame: no QR, not its heading (the
            # frame holds the browser's own error page instead)…
            self.assertEqual(frame.locator("#qr").count(), 0)
            self.assertEqual(frame.locator("#pin-form").count(), 0)
            self.assertNotIn("Accedi", frame.locator("body").inner_text())
            child = [f for f in v.page.frames if f != v.page.main_frame]
            self.assertEqual(len(child), 1)
            self.assertTrue(child[0].url.startswith("chrome-error:"), child[0].url)
            # …and its script never ran: no rendezvous was created for the framer.
            made = [u for m, u in v.requests if m == "POST" and "/rendezvous" in u]
            self.assertEqual(made, [])
            # The browser says why: frame-ancestors.
            self.assertTrue(any("frame-ancestors" in t for t in v.violations), v.violations)
            # The document itself was served (with its headers) and refused by the browser.
            self.assertTrue(any(u == self.server.origin + "/" for _, u in v.requests))
            self.assertEqual(v.problems, [])
            self.assertEqual(v.off_origin, [])
        finally:
            framer.stop()


if __name__ == "__main__":
    unittest.main()
