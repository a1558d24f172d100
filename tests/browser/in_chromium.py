"""One real `companion-server` binary and one headless Chromium (Debian's, driven by
Playwright) for the tests of a class; shared by the browser tests."""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bindings"))

from playwright.sync_api import sync_playwright  # noqa: E402
from companion_server import Server  # noqa: E402

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def wait_text(page, selector, ok, timeout=15):
    """Poll an element's text from here: the page's CSP forbids the eval that Playwright's
    wait_for_function uses (which is the point of that CSP)."""
    deadline = time.time() + timeout
    while True:
        text = page.locator(selector).text_content() or ""
        if ok(text):
            return text
        if time.time() > deadline:
            raise AssertionError(f"{selector}: still {text!r} after {timeout} s")
        page.wait_for_timeout(100)


class InChromium(unittest.TestCase):
    """One server binary and one headless Chromium for the tests of a class."""

    @classmethod
    def server_extra(cls):
        """Extra flags for the server binary (none here)."""
        return ()

    @classmethod
    def setUpClass(cls):
        cls.server = Server(extra=cls.server_extra())
        cls.pw = sync_playwright().start()
        cls.browser = cls.pw.chromium.launch(
            executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
            headless=True, args=CHROMIUM_ARGS)

    @classmethod
    def tearDownClass(cls):
        cls.browser.close()
        cls.pw.stop()
        cls.server.stop()
