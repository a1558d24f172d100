"""Desktop QR login in a real browser.

A real `companion-server` (the binary, SQLite in a temporary folder, self-signed TLS whose
key pin it writes to a file) on loopback; Debian's Chromium, headless, driven by
Playwright, opens the desktop page. The QR is read the way a phone does it: a screenshot
of the page's QR element, turned into an 8-bit luma plane and handed to the core's frame
scanner through the Python bindings. The core (CompanionClient, pinned to the server's
key) claims it, shows the context, and approves with the virtual CIE over APDUs; the
browser types the 4-digit code and ends up logged in. Then the same with a wrong code three
times: the page says the login is cancelled and the server refuses a fourth try.

Run by scripts/browser-test.sh (env: SERVER_BIN, BINDINGS_DIR, CARD_CA, CHROMIUM).
"""

import asyncio
import concurrent.futures
import io
import os
import sys
import unittest

sys.path.insert(0, os.environ["BINDINGS_DIR"])
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bindings"))

import card_sim  # noqa: E402
import cie_core  # noqa: E402
from PIL import Image  # noqa: E402
from test_bindings import SimTransport  # noqa: E402
# test_abroad_pin.py imports InChromium and wait_text from here.
from in_chromium import InChromium, wait_text  # noqa: E402

PIN = "12345678"


def luma_of(png):
    """An 8-bit grey plane with a padded row stride, as a camera hands it over."""
    img = Image.open(io.BytesIO(png)).convert("L")
    w, h = img.size
    stride = w + 32
    raw = img.tobytes()
    plane = bytearray(b"\xff" * (stride * h))
    for y in range(h):
        plane[y * stride:y * stride + w] = raw[y * w:(y + 1) * w]
    return w, h, stride, bytes(plane)


class DesktopQrInChromium(InChromium):

    def open_page(self):
        # The server's certificate is self-signed: the browser is told to accept it, the
        # app pins its key.
        ctx = self.browser.new_context(ignore_https_errors=True, locale="it-IT")
        page = ctx.new_page()
        page.goto(self.server.origin + "/")
        page.wait_for_selector("#qr img", timeout=15000)
        return ctx, page

    def scan(self, page):
        """Screenshot of the QR element → luma plane → the core's scanner."""
        png = page.locator("#qr").screenshot()
        w, h, stride, plane = luma_of(png)
        text = cie_core.scan_qr_frame(w, h, stride, plane)
        self.assertIsNotNone(text, "the core could not read the page's QR")
        # What the page shows is what it put in the QR.
        self.assertEqual(text, page.locator("#qr-text").text_content())
        return text

    def app(self):
        return cie_core.CompanionClient([self.server.origin], [self.server.pin], None)

    def approve(self, qr_text):
        async def go():
            session = await self.app().claim_desktop_qr(qr_text, "Python phone", None)
            ctx = session.context()
            self.assertEqual(ctx.service, "Comune di Prova")
            self.assertIn("Chrom", ctx.browser)
            self.assertEqual(ctx.os, "Linux")
            card = SimTransport(card_sim.SimCard.cie())
            return await session.approve_with_card(card, PIN, None)
        # Playwright's sync API owns this thread's event loop: the phone runs on its own.
        with concurrent.futures.ThreadPoolExecutor(1) as phone:
            return phone.submit(asyncio.run, go()).result(timeout=120)

    def test_qr_scanned_by_the_core_approved_with_the_card_code_typed_in_the_browser(self):
        ctx, page = self.open_page()
        try:
            code = self.approve(self.scan(page))
            self.assertRegex(code.code, r"^[0-9]{4}$")
            page.wait_for_selector("#code", state="visible", timeout=30000)
            page.fill("#code", code.code)
            page.click("#submit")
            wait_text(page, "#who", lambda t: "TESTER" in t)
            self.assertIn("MARIA", page.locator("#who").text_content())
            # The session cookie is HttpOnly: page script cannot read it.
            self.assertNotIn("cc_session", page.evaluate("document.cookie"))
            cookies = {c["name"]: c for c in ctx.cookies()}
            self.assertTrue(cookies["cc_session"]["httpOnly"])
            self.assertTrue(cookies["cc_session"]["secure"])
            self.assertEqual(cookies["cc_session"]["sameSite"], "Strict")
        finally:
            ctx.close()

    def test_three_wrong_codes_cancel_the_login(self):
        ctx, page = self.open_page()
        try:
            qr = self.scan(page)
            rid = qr.split("#v1.")[1].split(".")[0]
            code = self.approve(qr)
            wrong = "0000" if code.code != "0000" else "1111"
            page.wait_for_selector("#code", state="visible", timeout=30000)
            page.fill("#code", wrong)
            page.click("#submit")
            # The page says the code is wrong and how many tries remain.
            wait_text(page, "#status", lambda t: len(t) > 0)
            self.assertIn("Restano 2 tentativi", page.locator("#status").text_content())
            for _ in range(2):
                page.wait_for_selector("#code", state="visible", timeout=10000)
                page.fill("#code", wrong)
                page.click("#submit")
                page.wait_for_timeout(200)
            # The login is cancelled: the page starts over with a new QR…
            wait_text(page, "#qr-text", lambda t: t != qr)
            # …and the old one refuses even the right code (the server, not only the page).
            r = page.request.post(
                f"{self.server.origin}/api/v1/desktop/rendezvous/{rid}/code",
                data={"code": code.code})
            self.assertIn(r.status, (403, 409, 410, 429), r.text())
            self.assertIn(r.json()["error"], ("too_many_attempts", "wrong_state"), r.text())
            self.assertNotIn("TESTER", page.locator("#who").text_content() or "")
        finally:
            ctx.close()


if __name__ == "__main__":
    unittest.main()
