"""Our provider federated under the official reference software (PyPI `spid-cie-oidc`,
Django): its Trust Anchor and Relying Party run on loopback (tests/oidc/reference), our
server is registered as the Trust Anchor's descendant (the official validator fetches and
checks our entity configuration), and the official Relying Party logs users in through us:
it resolves our trust chain, sends a signed request object, we resolve its chain in turn
(automatic registration), and the user's part is done in Debian's Chromium (headless,
Playwright) on our pages, with the core's Python bindings as the phone:

- SpidL1: a resident abroad's PIN alone on the login page (level 1);
- SpidL2: the desktop QR approved by a phone enrolled with the virtual CIE (its device key,
  level 2);
- SpidL3: the login page offers only the QR, approved with the virtual CIE (level 3).

The user consents in Chromium, and the Relying Party redeems the code with private_key_jwt,
checks the ID token (signature by our federation-published keys, at_hash, iss), opens the
UserInfo JWE and shows the user's attributes: exactly the claims it asked that we hold, and
the `acr` achieved. SpidL3 asked: the phone's key is refused before any login
(`CardRequired`), the card then logs in. Refused with `access_denied` at the Relying Party
and no token: a refused consent. Before the
Trust Anchor registers the Relying Party, it is refused (`invalid_client`).

Environment: SERVER_BIN, CARD_CA, BINDINGS_DIR (the core's Python bindings), CHROMIUM,
BROWSER_SITE (site-packages with Playwright and Pillow, appended to the path); REF_PYTHON
(the virtualenv's python with spid-cie-oidc), which runs this file too."""

import ast
import asyncio
import base64
import concurrent.futures
import json
import os
import re
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
# Playwright and Pillow from the browser tests' virtualenv, after this one's packages.
sys.path.append(os.environ["BROWSER_SITE"])
sys.path.insert(0, os.environ["BINDINGS_DIR"])
sys.path.insert(0, os.path.join(HERE, "..", "bindings"))
sys.path.insert(0, os.path.join(HERE, "..", "browser"))
import card_sim  # noqa: E402
import cie_core  # noqa: E402
from companion_server import Server, free_port  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402
from test_bindings import PySigner, SimTransport  # noqa: E402
from in_chromium import CHROMIUM_ARGS  # noqa: E402
from test_desktop_qr import luma_of  # noqa: E402

REFERENCE = os.path.join(HERE, "reference")
PYTHON = os.environ.get("REF_PYTHON", sys.executable)
TEST_CF = "TSTTST80A01H501X"
CARD_PIN = "12345678"
ABROAD_CF = "RSSMRA80A01H501U"
NEW_PIN = "K7W9X2QZ"
SPID = "https://www.spid.gov.it/SpidL"
# What the Relying Party asks in UserInfo and we hold (it asks for email too: we have
# none), plus the JWT's own claims; nothing else (no birth date, no document).
USERINFO = {"given_name", "family_name", "https://attributes.eid.gov.it/fiscal_number",
            "iss", "sub", "aud", "iat", "exp"}


def claims_of(jws):
    payload = jws.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


class ReferenceFederation(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        tmp = cls.tmp.name
        port = free_port()
        cls.ref = f"http://127.0.0.1:{port}"
        cls.ta = cls.ref + "/"
        cls.rp = cls.ta + "oidc/rp/"
        cls.env = dict(os.environ, REF_ORIGIN=cls.ref, REF_DB=os.path.join(tmp, "ref.sqlite"),
                       DJANGO_SETTINGS_MODULE="settings", PYTHONPATH=REFERENCE,
                       OP_ISSUER="https://placeholder.invalid")
        cls.django("-m", "django", "migrate", "-v0")
        ta_jwks = os.path.join(tmp, "ta-jwks.json")
        cls.django("setup_federation.py", "init", ta_jwks)
        # Our server, under that Trust Anchor (its keys pinned from the file).
        cls.server = Server(extra=[
            "--oidc-key", os.path.join(tmp, "oidc.pem"),
            "--federation-key", os.path.join(tmp, "federation.pem"),
            "--trust-anchor", cls.ta, "--trust-anchor-jwks", ta_jwks,
            "--organization-name", "cie-companion (prova)",
            "--require-trust-mark", cls.ta + "openid_relying_party/public/",
            "--federation-loopback-http"])
        cls.origin = cls.server.origin
        cls.env["OP_ISSUER"] = cls.origin
        # This test's browser trusts the certificate our server generated at start.
        cls.cert = os.path.join(tmp, "server.pem")
        with open(cls.cert, "w") as f:
            f.write(ssl.get_server_certificate(("127.0.0.1", cls.server.port)))
        cls.log = open(os.path.join(tmp, "django.log"), "w+")
        cls.django_proc = subprocess.Popen(
            [PYTHON, "-m", "django", "runserver", "--noreload", f"127.0.0.1:{port}"],
            cwd=REFERENCE, env=cls.env, stdin=subprocess.DEVNULL, stdout=cls.log,
            stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while True:
            try:
                if requests.get(cls.ta + ".well-known/openid-federation").ok:
                    break
            except requests.ConnectionError:
                pass
            if cls.django_proc.poll() is not None or time.time() > deadline:
                cls.log.seek(0)
                raise RuntimeError("reference software did not start:\n" + cls.log.read())
            time.sleep(0.2)
        ours = requests.get(cls.origin + "/.well-known/openid-federation", verify=cls.cert)
        op_jwks = os.path.join(tmp, "op-federation-jwks.json")
        with open(op_jwks, "w") as f:
            json.dump(claims_of(ours.text)["jwks"], f)
        cls.django("setup_federation.py", "register-op", cls.origin, op_jwks)
        cls.pw = sync_playwright().start()
        cls.chromium = cls.pw.chromium.launch(
            executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
            headless=True, args=CHROMIUM_ARGS)

    @classmethod
    def django(cls, *args):
        out = subprocess.run([PYTHON, *args], cwd=REFERENCE, env=cls.env, capture_output=True,
                             text=True, stdin=subprocess.DEVNULL)
        if out.returncode != 0:
            raise RuntimeError(f"{args}: {out.stdout}\n{out.stderr}")

    @classmethod
    def tearDownClass(cls):
        cls.chromium.close()
        cls.pw.stop()
        cls.django_proc.terminate()
        cls.django_proc.wait(10)
        cls.log.close()
        cls.server.stop()
        cls.tmp.cleanup()

    def reference_log(self, tail=20000):
        """The reference software's log (its last `tail` characters; None: all)."""
        self.log.seek(0)
        text = self.log.read()
        return text if tail is None else text[-tail:]

    def browser(self):
        browser = requests.Session()
        browser.verify = self.cert
        browser.trust_env = False  # else REQUESTS_CA_BUNDLE would win over `verify`
        return browser

    def begin(self, browser, acr=None):
        """The Relying Party's login button (asking `acr`): it resolves our trust chain and
        sends its request object to us; our answer."""
        params = {"provider": self.origin}
        if acr:
            params["acr_values"] = acr
        r = browser.get(self.rp + "authorization", params=params, allow_redirects=False)
        self.assertEqual(r.status_code, 302, r.text + self.reference_log())
        authz = r.headers["location"]
        self.assertTrue(authz.startswith(self.origin + "/oidc/authorization?"), authz)
        return browser.get(authz, allow_redirects=False)

    def reference_db(self, sql):
        with sqlite3.connect(self.env["REF_DB"]) as db:
            return db.execute(sql).fetchall()

    def test_1_relying_party_outside_the_federation_is_refused(self):
        """Before the Trust Anchor registers it, the Relying Party has no chain to it (nor
        the trust mark we require): we answer `invalid_client` on a page (no redirect, no
        pending request)."""
        r = self.begin(self.browser())
        self.assertEqual(r.status_code, 400, r.text)
        self.assertIn("invalid_client", r.text)
        self.assertNotIn("set-cookie", r.headers)

    # -- the user's part: Chromium on our pages, the core's bindings as the phone ----------

    def phone(self, coro):
        """Run the core's async call on its own loop (Playwright's sync API owns this one)."""
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, coro).result(timeout=120)

    def app(self):
        return cie_core.CompanionClient([self.origin], [self.server.pin], None)

    def start(self, level):
        """A new browser; the Relying Party's login button asking SpidL`level`: it resolves
        our chain and sends its request object to us; we resolve its chain and, as it asks
        `prompt=consent login`, send the browser to our login page for a new login. The
        browser context, the page, and the methods the login page offers beside the QR."""
        ctx = self.chromium.new_context(ignore_https_errors=True, locale="it-IT")
        page = ctx.new_page()
        page.goto(self.rp + "authorization?" + urllib.parse.urlencode(
            {"provider": self.origin, "acr_values": f"{SPID}{level}"}))
        page.wait_for_selector("#qr img", timeout=30000)
        url = urllib.parse.urlsplit(page.url)
        self.assertEqual(f"{url.scheme}://{url.netloc}", self.origin, page.url)
        query = dict(urllib.parse.parse_qsl(url.query))
        self.assertTrue(query["return"].startswith("/oidc/consent/"), page.url)
        self.assertEqual((query["level"], query["fresh"]), (str(level), "1"))
        offered = {s for s in ("step-app", "step-otp", "step-pin")
                   if page.locator("#" + s).is_visible()}
        # Only a login after the request counts (prompt=login; logins are timed to the second).
        page.wait_for_timeout(1100)
        return ctx, page, offered

    def scan(self, page):
        """The page's QR, read from a screenshot by the core's scanner."""
        w, h, stride, plane = luma_of(page.locator("#qr").screenshot())
        text = cie_core.scan_qr_frame(w, h, stride, plane)
        self.assertIsNotNone(text, "the core could not read the page's QR")
        return text

    def type_code(self, page, code):
        page.wait_for_selector("#code", state="visible", timeout=30000)
        page.fill("#code", code.code)
        page.click("#submit")

    def login_with_card(self, page):
        """Level 3: the QR approved with the virtual CIE."""
        qr = self.scan(page)

        async def go():
            session = await self.app().claim_desktop_qr(qr, "Python phone", None)
            self.assertEqual(session.context().level, 3)
            return await session.approve_with_card(
                SimTransport(card_sim.SimCard.cie()), CARD_PIN, None)
        self.type_code(page, self.phone(go()))

    def enrolled_phone(self):
        """A phone enrolled with the virtual CIE through the core (once): (device id, key)."""
        cls = type(self)
        if getattr(cls, "device", None) is None:
            signer = PySigner("der", secret=0x5EED)

            async def go():
                session = await self.app().start_device_enrollment(
                    self.origin, signer, "Python phone")
                return await session.tap(SimTransport(card_sim.SimCard.cie()), CARD_PIN, None)
            enrolled = self.phone(go())
            self.assertEqual(enrolled.identity.codice_fiscale, TEST_CF)
            cls.device = (enrolled.device_id, signer)
        return cls.device

    def login_with_phone(self, page):
        """Level 2: the QR approved with the enrolled phone's device key."""
        device_id, signer = self.enrolled_phone()
        qr = self.scan(page)

        async def go():
            session = await self.app().claim_desktop_qr(qr, "Python phone", device_id)
            return await session.approve_with_device(device_id, signer)
        self.type_code(page, self.phone(go()))

    def pin(self, *args):
        """`companion-server pin …` on the running server's database: its stdout."""
        database = "sqlite:" + os.path.join(self.server.dir.name, "db.sqlite")
        return subprocess.run([os.environ["SERVER_BIN"], "pin", *args, "--database", database],
                              check=True, capture_output=True, text=True, timeout=60).stdout

    def login_with_pin(self, page):
        """Level 1: a resident abroad's PIN (issued here, its halves from the outboxes), the
        forced change of the first login."""
        self.pin("issue", "--codice-fiscale", ABROAD_CF, "--email", "mario.rossi@example.org",
                 "--address", "Calle Florida 100, Buenos Aires",
                 "--given-name", "MARIO", "--surname", "ROSSI")
        halves = [json.loads(self.pin("outbox", "--channel", c))["half"]
                  for c in ("digital", "postal")]
        page.fill("#pin-cf", ABROAD_CF)
        page.fill("#pin", "".join(halves))
        page.click("#pin-login")
        page.wait_for_selector("#pin-change-form", state="visible", timeout=15000)
        page.fill("#new-pin", NEW_PIN)
        page.fill("#new-pin2", NEW_PIN)
        page.click("#pin-change")

    def consent(self, page, decision):
        """Back on our consent page after the login (oidc-return.js): `decision` clicked."""
        page.wait_for_url(re.compile(re.escape(self.origin) + r"/oidc/consent/"),
                          timeout=30000)
        text = page.locator("main").text_content()
        self.assertIn("Relying Party di riferimento", text)
        self.assertIn("Codice fiscale", text)
        page.click(f"button[value={decision}]")

    def tokens(self):
        (n,), = self.reference_db(
            "SELECT COUNT(*) FROM spid_cie_oidc_relying_party_oidcauthenticationtoken")
        return n

    def refused(self, page, tokens_before):
        """The Relying Party's callback got `access_denied` (its error page), and no code:
        it holds no new token."""
        page.wait_for_url(re.compile(re.escape(self.rp) + r"callback\?"), timeout=30000)
        back = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(page.url).query))
        self.assertEqual(back["error"], "access_denied", page.url)
        self.assertEqual(back["iss"], self.origin)
        self.assertNotIn("code", back)
        self.assertIn("access_denied", page.content())
        self.assertEqual(self.tokens(), tokens_before)

    def logged_in(self, page, level, achieved, who):
        """The Relying Party redeemed the code, checked the tokens, read UserInfo and shows
        the user `who` (first name, last name, codice fiscale); the ID token it kept says
        `achieved`."""
        page.wait_for_url(re.compile(re.escape(self.rp) + "echo_attributes"), timeout=30000)
        html = page.content()
        shown = dict(re.findall(r"<dt>\s*(.*?):\s*</dt>\s*<dd>\s*(.*?)\s*</dd>", html))
        first, last, cf = who
        self.assertEqual(
            (shown.get("first_name"), shown.get("last_name"), shown.get("fiscal_number")),
            (first, last, f"TINIT-{cf}"), html)
        # The UserInfo it logged: exactly what it asked and we hold.
        logged = re.findall(r"^Userinfo endpoint result: (\{.*\})$",
                            self.reference_log(None), re.MULTILINE)
        self.assertTrue(logged, self.reference_log())
        self.assertEqual(set(ast.literal_eval(logged[-1])), USERINFO)
        # What it asked, and the ID token it accepted and kept.
        (data,), = self.reference_db(
            "SELECT data FROM spid_cie_oidc_relying_party_oidcauthentication"
            " ORDER BY id DESC LIMIT 1")
        self.assertEqual(json.loads(data)["acr_values"], f"{SPID}{level}")
        (id_token,), = self.reference_db(
            "SELECT id_token FROM spid_cie_oidc_relying_party_oidcauthenticationtoken"
            " ORDER BY id DESC LIMIT 1")
        claims = claims_of(id_token)
        self.assertEqual(claims["acr"], f"{SPID}{achieved}")
        self.assertEqual(claims["iss"], self.origin)
        self.assertEqual(claims["aud"], self.rp)

    def test_2_reference_relying_party_logs_in_through_us_at_each_level(self):
        """SpidL1 with the PIN alone, SpidL2 with the enrolled phone, SpidL3 with the card:
        each `acr` is the level achieved, and the SpidL3 login page offers only the QR."""
        # Registered with a profile: the Trust Anchor's statement about it carries the
        # trust mark we require (the Relying Party's own configuration does not).
        self.django("setup_federation.py", "register-rp")
        runs = [(1, self.login_with_pin, ("MARIO", "ROSSI", ABROAD_CF)),
                (2, self.login_with_phone, ("MARIA", "TESTER", TEST_CF)),
                (3, self.login_with_card, ("MARIA", "TESTER", TEST_CF))]
        for level, login, who in runs:
            with self.subTest(level=level):
                ctx, page, offered = self.start(level)
                try:
                    if level == 3:
                        self.assertEqual(offered, set(), "level 3: the card's QR only")
                    else:
                        self.assertTrue({"step-app", "step-pin"} <= offered, offered)
                    login(page)
                    self.consent(page, "accept")
                    self.logged_in(page, level, level, who)
                finally:
                    ctx.close()

    def test_3_level_3_takes_the_card_and_refused_consent_reaches_the_relying_party(self):
        """SpidL3 asked: the phone learns it before deciding (the QR's context says 3, its key
        is not offered) and its key, used anyway, is refused (`CardRequired`) — the claim
        stays, and the same phone approves with the card: level 3. (A level-2 session reaching
        a SpidL3 request is `access_denied`: server/tests/oidc.rs `refusals_after_login`.)
        A refused consent: `access_denied` at the Relying Party, no token."""
        ctx, page, _ = self.start(3)
        try:
            device_id, signer = self.enrolled_phone()
            qr = self.scan(page)

            async def go():
                session = await self.app().claim_desktop_qr(qr, "Python phone", device_id)
                self.assertEqual(session.context().level, 3)
                self.assertFalse(session.device_approval_allowed())
                with self.assertRaises(cie_core.FlowError.Server) as cm:
                    await session.approve_with_device(device_id, signer)
                self.assertEqual(cm.exception.code, cie_core.ErrorCode.CARD_REQUIRED)
                self.assertEqual(cm.exception.status, 403)
                return await session.approve_with_card(
                    SimTransport(card_sim.SimCard.cie()), CARD_PIN, None)
            self.type_code(page, self.phone(go()))
            self.consent(page, "accept")
            self.logged_in(page, 3, 3, ("MARIA", "TESTER", TEST_CF))
        finally:
            ctx.close()
        before = self.tokens()
        ctx, page, _ = self.start(2)
        try:
            self.login_with_phone(page)
            self.consent(page, "refuse")
            self.refused(page, before)
        finally:
            ctx.close()

if __name__ == "__main__":
    unittest.main()
