"""Residents abroad (issue 11): codice fiscale + PIN on the desktop page, in a real browser.

A real `companion-server` (the binary, SQLite in a temporary folder); the operator issues a
PIN with the same binary's `pin issue` on that database; the delivery hook's part is played
by `pin outbox` (digital and postal: one half each) and `pin ack`. Debian's Chromium,
headless, driven by Playwright, types the codice fiscale and the two halves, is led to the
forced change, chooses a new PIN (one refused by the policy first) and ends up logged in at
level 1; a later login with the new PIN does the same; a wrong PIN shows the error. Then
the second factors: the level-1 page sets up an OTP code (the otpauth URI read from the
page, the codes computed by the core through the Python bindings), confirmed with a code;
the next PIN login asks for the code and ends at level 2 "PIN + OTP". From that level-2
session the page shows a one-time enrolment code, the core (a Python P-256 signer as the
phone's key) enrols the phone with it, and the next PIN login offers both: the phone's
approval (number matching) ends it at level 2 "PIN + app".

Run by scripts/browser-test.sh (env: SERVER_BIN, BINDINGS_DIR, CARD_CA, CHROMIUM).
"""

import asyncio
import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bindings"))
sys.path.insert(0, os.path.dirname(__file__))

from test_desktop_qr import InChromium, wait_text  # noqa: E402
import cie_core  # noqa: E402  (test_desktop_qr put the bindings on the path)
from test_bindings import PySigner  # noqa: E402

CF = "RSSMRA80A01H501U"
NEW_PIN = "K7W9X2QZ"


def otp_code(uri, at):
    """The authenticator's code for `uri` at Unix time `at` (the core, through the bindings)."""
    return cie_core.otp_code_for_uri(uri, int(at)).code


class AbroadPinInChromium(InChromium):
    otp_uri = None  # set by test_3

    @classmethod
    def server_extra(cls):
        # The key that seals OTP seeds at rest: without it the server offers no OTP.
        cls.key_dir = tempfile.TemporaryDirectory()
        key = os.path.join(cls.key_dir.name, "otp.key")
        with open(key, "wb") as f:
            f.write(os.urandom(32))
        cls.key_path = key
        return ("--otp-key-file", key)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.database = "sqlite:" + os.path.join(cls.server.dir.name, "db.sqlite")

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.key_dir.cleanup()

    def pin_command(self, *args):
        """`companion-server pin …` on the running server's database and OTP key file (codici
        fiscali are looked up under a key derived from it): its stdout."""
        out = subprocess.run(
            [os.environ["SERVER_BIN"], "pin", *args, "--database", self.database,
             "--otp-key-file", self.key_path],
            check=True, capture_output=True, text=True, timeout=60)
        return out.stdout

    def deliver(self, channel):
        """The delivery hook: the one pending row of `channel`, acknowledged (erased)."""
        rows = [json.loads(line) for line in self.pin_command("outbox", "--channel", channel)
                .splitlines()]
        self.assertEqual(len(rows), 1, rows)
        row = rows[0]
        self.assertEqual(row["codice_fiscale"], CF)
        self.assertEqual(len(row["half"]), 8)
        self.pin_command("ack", "--channel", channel, "--id", str(row["id"]))
        self.assertEqual(self.pin_command("outbox", "--channel", channel), "")
        return row

    def open_page(self):
        ctx = self.browser.new_context(ignore_https_errors=True, locale="it-IT")
        page = ctx.new_page()
        page.goto(self.server.origin + "/")
        page.wait_for_selector("#pin-form", state="visible", timeout=15000)
        return ctx, page

    def pin_login(self, page, cf, pin):
        page.fill("#pin-cf", cf)
        page.fill("#pin", pin)
        page.click("#pin-login")

    def assert_level_1(self, page):
        wait_text(page, "#who", lambda t: "ROSSI" in t)
        self.assertIn("MARIO", page.locator("#who").text_content())
        self.assertIn("Livello di accesso 1 (PIN)", page.locator("#level").text_content())
        session = page.request.get(self.server.origin + "/api/v1/session").json()
        self.assertEqual(session["level"], 1)
        self.assertEqual(session["method"], "pin")
        self.assertEqual(session["identity"]["surname"], "ROSSI")
        return wait_text(page, "#factors", lambda t: "Fattori attivi" in t)

    def assert_level_2(self, page, method_it, factors):
        wait_text(page, "#who", lambda t: "ROSSI" in t)
        self.assertIn("Livello di accesso 2", page.locator("#level").text_content())
        wait_text(page, "#factors", lambda t: "Accesso con " + method_it + " ·" in t)
        session = page.request.get(self.server.origin + "/api/v1/session").json()
        self.assertEqual(session["level"], 2)
        self.assertEqual(session["factors"], factors)
        return session

    def test_1_issue_first_login_forced_change_then_login_with_the_new_pin(self):
        out = self.pin_command("issue", "--codice-fiscale", CF,
                               "--email", "mario.rossi@example.org",
                               "--address", "Calle Florida 100, Buenos Aires",
                               "--given-name", "MARIO", "--surname", "ROSSI")
        self.assertIn("PIN issued", out)
        digital = self.deliver("digital")
        postal = self.deliver("postal")
        self.assertEqual(digital["recipient"], "mario.rossi@example.org")
        self.assertEqual(postal["recipient"], "Calle Florida 100, Buenos Aires")
        initial = digital["half"] + postal["half"]
        # The operator's output never holds the PIN.
        self.assertNotIn(digital["half"], out)
        self.assertNotIn(postal["half"], out)

        ctx, page = self.open_page()
        try:
            # A mistyped codice fiscale is caught on the page, with what to check.
            self.pin_login(page, CF[:-1] + "A", initial)
            text = wait_text(page, "#status", lambda t: "ultima lettera" in t)
            self.assertIn("last letter", text)
            self.assertTrue(page.locator("#pin-change-form").is_hidden())

            # The initial PIN (lower case and with blanks is fine) → the forced change.
            self.pin_login(page, CF.lower(), initial.lower())
            page.wait_for_selector("#pin-change-form", state="visible", timeout=15000)
            self.assertIn("esattamente 8 caratteri", page.locator("#pin-policy").text_content())
            self.assertEqual(page.locator("#who").text_content(), "")

            # A new PIN against the policy: the server's reason, the form stays.
            page.fill("#new-pin", "X1234QZW")
            page.fill("#new-pin2", "X1234QZW")
            page.click("#pin-change")
            wait_text(page, "#status", lambda t: "consecutivi" in t)
            self.assertTrue(page.locator("#pin-change-form").is_visible())

            page.fill("#new-pin", NEW_PIN)
            page.fill("#new-pin2", NEW_PIN.lower())
            page.click("#pin-change")
            self.assert_level_1(page)
        finally:
            ctx.close()

        # Later logins use the new PIN.
        ctx, page = self.open_page()
        try:
            self.pin_login(page, CF, NEW_PIN)
            self.assert_level_1(page)
            cookies = {c["name"]: c for c in ctx.cookies()}
            self.assertTrue(cookies["cc_session"]["httpOnly"])
        finally:
            ctx.close()

    def test_2_a_wrong_pin_shows_the_error(self):
        ctx, page = self.open_page()
        try:
            self.pin_login(page, CF, "K7W9X2QA")
            text = wait_text(page, "#status", lambda t: "errato" in t)
            self.assertIn("Codice fiscale o PIN errato", text)
            self.assertIn("Wrong codice fiscale or PIN", text)
            self.assertEqual(page.locator("#who").text_content(), "")
            self.assertEqual(page.locator("#pin").input_value(), "")
            r = page.request.get(self.server.origin + "/api/v1/session")
            self.assertEqual(r.status, 404, r.text())
            # The third wrong PIN in a row brings the first wait; the page says how long.
            for _ in range(2):
                self.pin_login(page, CF, "K7W9X2QA")
                page.wait_for_timeout(300)
            text = wait_text(page, "#status", lambda t: "secondo" in t)
            self.assertIn("riprova tra 1 secondo", text)
            self.assertIn("try again in 1 second", text)
        finally:
            ctx.close()

    def phone(self, coro):
        """Run the core's async call on its own loop: Playwright's sync API owns this one."""
        with concurrent.futures.ThreadPoolExecutor(1) as t:
            return t.submit(asyncio.run, coro).result(timeout=60)

    def test_3_otp_set_up_from_the_pin_session_then_pin_logins_need_the_code(self):
        time.sleep(2)  # test_2's wrong PINs left a 1-second wait
        ctx, page = self.open_page()
        try:
            self.pin_login(page, CF, NEW_PIN)
            factors = self.assert_level_1(page)
            self.assertIn("Fattori attivi: PIN", factors)
            self.assertIn("Active factors: PIN", factors)
            page.click("#otp-enrol-start")
            uri = wait_text(page, "#otp-enrol-uri", lambda t: t.startswith("otpauth://"))
            page.wait_for_selector("#otp-enrol-qr img", state="visible", timeout=5000)
            self.assertIn("algorithm=SHA1", uri)
            self.assertNotIn(CF, uri)
            secret = page.locator("#otp-enrol-secret").text_content().replace(" ", "")
            self.assertIn("secret=" + secret, uri)
            # A wrong confirmation code activates nothing.
            wrong = "000000" if otp_code(uri, time.time()) != "000000" else "111111"
            page.fill("#otp-enrol-code", wrong)
            page.click("#otp-enrol-confirm")
            wait_text(page, "#status", lambda t: "Codice errato" in t)
            session = page.request.get(self.server.origin + "/api/v1/session").json()
            self.assertEqual(session["factors"], ["pin"])
            # The code the app showed a moment ago (the previous step: within the window).
            page.fill("#otp-enrol-code", otp_code(uri, time.time() - 30))
            page.click("#otp-enrol-confirm")
            text = wait_text(page, "#status", lambda t: "Codice OTP attivo" in t)
            self.assertIn("OTP code active", text)
            wait_text(page, "#factors", lambda t: "codice OTP" in t)
            self.assertIn("Active factors: PIN, OTP code", page.locator("#factors").text_content())
            # This level-1 session may enrol nothing more: the page stops offering it.
            self.assertTrue(page.locator("#enrol").is_hidden())
            self.assertTrue(page.locator("#otp-enrol-show").is_hidden())
            r = page.request.post(self.server.origin + "/api/v1/abroad/enrol")
            self.assertEqual(r.status, 409, r.text())
        finally:
            ctx.close()
        type(self).otp_uri = uri

        # Now the PIN alone opens nothing: the page asks for the code.
        ctx, page = self.open_page()
        try:
            self.pin_login(page, CF, NEW_PIN)
            page.wait_for_selector("#pin-otp-form", state="visible", timeout=15000)
            wait_text(page, "#status", lambda t: "digita il codice OTP" in t)
            self.assertEqual(page.locator("#who").text_content(), "")
            self.assertTrue(page.locator("#app-wait").is_hidden())
            self.assertEqual(
                page.request.get(self.server.origin + "/api/v1/session").status, 404)
            page.fill("#pin-otp-code", otp_code(uri, time.time()))
            page.click("#pin-otp-submit")
            session = self.assert_level_2(page, "PIN + codice OTP", ["pin", "otp"])
            self.assertEqual(session["method"], "pin+otp")
        finally:
            ctx.close()

    def test_4_phone_enrolled_from_pin_and_code_then_either_completes_a_pin_login(self):
        uri = self.otp_uri
        self.assertIsNotNone(uri, "test_3 set up the OTP")
        app = cie_core.CompanionClient([self.server.origin], [self.server.pin], None)
        signer = PySigner("der", secret=0x5EED)
        ctx, page = self.open_page()
        try:
            self.pin_login(page, CF, NEW_PIN)
            page.wait_for_selector("#pin-otp-form", state="visible", timeout=15000)
            # test_3 spent this step's code: the next one (within the window) is fresh.
            page.fill("#pin-otp-code", otp_code(uri, time.time() + 30))
            page.click("#pin-otp-submit")
            self.assert_level_2(page, "PIN + codice OTP", ["pin", "otp"])
            # Level 2: the page offers to enrol the phone.
            page.click("#enrol-start")
            code = wait_text(page, "#enrol-code", lambda t: len(t) > 20)
            page.wait_for_selector("#enrol-qr img", state="visible", timeout=5000)
            device = self.phone(app.enroll_device_with_code(
                self.server.origin, code, signer, "Python phone"))
            self.assertEqual(device.identity.codice_fiscale, CF)
            # The code is single use.
            with self.assertRaises(Exception):
                self.phone(app.enroll_device_with_code(
                    self.server.origin, code, PySigner("der", secret=0xBAD), "other"))
        finally:
            ctx.close()

        # A right PIN now offers the code and the phone; the phone answers first here.
        ctx, page = self.open_page()
        try:
            self.pin_login(page, CF, NEW_PIN)
            number = int(wait_text(page, "#number", lambda t: t.strip().isdigit()))
            self.assertTrue(page.locator("#pin-otp-form").is_visible())
            wait_text(page, "#status", lambda t: "oppure scegli sul telefono" in t)
            self.assertEqual(page.locator("#who").text_content(), "")
            self.assertEqual(
                page.request.get(self.server.origin + "/api/v1/session").status, 404)

            async def approve():
                pending = await app.pending_approvals(
                    self.server.origin, device.device_id, signer)
                self.assertEqual(len(pending), 1)
                self.assertIn(number, pending[0].choices)
                await app.decide_approval(pending[0], device.device_id, signer,
                                          cie_core.Decision.APPROVE, number)
            self.phone(approve())
            session = self.assert_level_2(page, "PIN + app", ["pin", "app", "otp"])
            self.assertEqual(session["method"], "pin+app")
            self.assertIn("Fattori attivi: PIN, app, codice OTP",
                          page.locator("#factors").text_content())
            self.assertTrue(page.locator("#pin-otp-form").is_hidden())
        finally:
            ctx.close()

if __name__ == "__main__":
    unittest.main()
