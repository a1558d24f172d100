"""Residents abroad (issue 11): codice fiscale + PIN on the desktop page, in a real browser.

A real `companion-server` (the binary, SQLite in a temporary folder); the operator issues a
PIN with the same binary's `pin issue` on that database; the delivery hook's part is played
by `pin outbox` (digital and postal: one half each) and `pin ack`. Debian's Chromium,
headless, driven by Playwright, types the codice fiscale and the two halves, is led to the
forced change, chooses a new PIN (one refused by the policy first) and ends up logged in at
level 1; a later login with the new PIN does the same; a wrong PIN shows the error.

Run by scripts/browser-test.sh (env: SERVER_BIN, CARD_CA, CHROMIUM).
"""

import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bindings"))
sys.path.insert(0, os.path.dirname(__file__))

from test_desktop_qr import InChromium, wait_text  # noqa: E402

CF = "RSSMRA80A01H501U"
NEW_PIN = "K7W9X2QZ"


class AbroadPinInChromium(InChromium):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.database = "sqlite:" + os.path.join(cls.server.dir.name, "db.sqlite")

    def pin_command(self, *args):
        """`companion-server pin …` on the running server's database: its stdout."""
        out = subprocess.run(
            [os.environ["SERVER_BIN"], "pin", *args, "--database", self.database],
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
        self.assertEqual(session["identity"]["surname"], "ROSSI")

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


if __name__ == "__main__":
    unittest.main()
