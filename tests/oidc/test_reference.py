"""Our provider federated under the official reference software (PyPI `spid-cie-oidc`,
Django): its Trust Anchor and Relying Party run on loopback (tests/oidc/reference), our
server is registered as the Trust Anchor's descendant (the official validator fetches and
checks our entity configuration), and the official Relying Party logs a user in through us:
it resolves our trust chain, sends a signed request object, we resolve its chain in turn
(automatic registration), the user logs in on our desktop page (desktop QR approved with the
virtual CIE: level 3) and consents, and the Relying Party redeems the code with
private_key_jwt, checks the ID token (signature by our federation-published keys, at_hash,
iss) and opens the UserInfo JWE, then shows the user's attributes.

Environment: SERVER_BIN, CARD_CA, CARD_KEY, CARD_CERT; REF_PYTHON (the virtualenv's python
with spid-cie-oidc)."""

import ast
import base64
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
sys.path.insert(0, os.path.join(HERE, "..", "bindings"))
sys.path.insert(0, HERE)
from companion_server import Server, free_port  # noqa: E402
from login import desktop_login  # noqa: E402

REFERENCE = os.path.join(HERE, "reference")
PYTHON = os.environ.get("REF_PYTHON", sys.executable)
TEST_CF = "TSTTST80A01H501X"


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

    @classmethod
    def django(cls, *args):
        out = subprocess.run([PYTHON, *args], cwd=REFERENCE, env=cls.env, capture_output=True,
                             text=True, stdin=subprocess.DEVNULL)
        if out.returncode != 0:
            raise RuntimeError(f"{args}: {out.stdout}\n{out.stderr}")

    @classmethod
    def tearDownClass(cls):
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

    def test_2_reference_relying_party_logs_in_through_us(self):
        """The official Relying Party asks SpidL1, SpidL2 and SpidL3 in turn; each login
        (with the virtual CIE: level 3) completes, and the ID token it kept says SpidL3."""
        # Registered with a profile: the Trust Anchor's statement about it carries the
        # trust mark we require (the Relying Party's own configuration does not).
        self.django("setup_federation.py", "register-rp")
        browser = self.browser()
        for level in (1, 2, 3):
            with self.subTest(level=level):
                self.login(browser, f"https://www.spid.gov.it/SpidL{level}", level)

    def login(self, browser, acr, n):
        """The `n`-th login of the Relying Party, asking `acr`."""
        # We resolve its chain (automatic registration, then cached) and ask for consent.
        r = self.begin(browser, acr)
        self.assertEqual(r.status_code, 303, r.text)
        consent = self.origin + r.headers["location"]
        # The Relying Party asks `prompt=consent login`: a login after the request, on our
        # desktop page (logins are timed to the second).
        r = browser.get(consent, allow_redirects=False)
        self.assertEqual(r.status_code, 303, r.text)
        self.assertIn("fresh=1", r.headers["location"])
        time.sleep(1.1)
        desktop_login(self, self.origin, browser)
        page = browser.get(consent, allow_redirects=False)
        self.assertEqual(page.status_code, 200, page.text)
        self.assertIn("Relying Party di riferimento", page.text)
        r = browser.post(consent, data={"decision": "accept"}, allow_redirects=False)
        self.assertEqual(r.status_code, 302, r.text)
        callback = r.headers["location"]
        self.assertTrue(callback.startswith(self.rp + "callback?"), callback)
        back = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(callback).query))
        self.assertEqual(back["iss"], self.origin)

        # The Relying Party redeems the code, checks the tokens, reads UserInfo.
        r = browser.get(callback)
        self.assertEqual(r.status_code, 200, r.text[-3000:] + self.reference_log())
        self.assertTrue(r.url.startswith(self.rp + "echo_attributes"), r.url)
        # The user it made from our claims (its attribute map), and the UserInfo it logged:
        # exactly what it asked and we hold (it asks for email too: we have none) plus the
        # JWT's own claims; nothing else (no birth date, no document).
        shown = dict(re.findall(r"<dt>\s*(.*?):\s*</dt>\s*<dd>\s*(.*?)\s*</dd>", r.text))
        self.assertEqual(shown.get("first_name"), "MARIA", r.text)
        self.assertEqual(shown.get("last_name"), "TESTER")
        self.assertEqual(shown.get("fiscal_number"), f"TINIT-{TEST_CF}")
        logged = re.findall(r"^Userinfo endpoint result: (\{.*\})$",
                            self.reference_log(None), re.MULTILINE)
        self.assertEqual(len(logged), n, self.reference_log())
        self.assertEqual(set(ast.literal_eval(logged[-1])), {
            "given_name", "family_name", "https://attributes.eid.gov.it/fiscal_number",
            "iss", "sub", "aud", "iat", "exp"})
        # What it asked, and the ID token it accepted and kept.
        (data,), = self.reference_db(
            "SELECT data FROM spid_cie_oidc_relying_party_oidcauthentication"
            " ORDER BY id DESC LIMIT 1")
        self.assertEqual(json.loads(data)["acr_values"], acr)
        (id_token,), = self.reference_db(
            "SELECT id_token FROM spid_cie_oidc_relying_party_oidcauthenticationtoken"
            " ORDER BY id DESC LIMIT 1")
        claims = claims_of(id_token)
        self.assertEqual(claims["acr"], "https://www.spid.gov.it/SpidL3")
        self.assertEqual(claims["iss"], self.origin)
        self.assertEqual(claims["aud"], self.rp)

if __name__ == "__main__":
    unittest.main()
