"""The OpenID Provider of the real `companion-server` binary driven by a generic client
library, authlib (issue 13, plain registration): the client is registered with
`companion-server oidc client add`; a user logs in on the desktop page's HTTP endpoints
(desktop QR approved with the virtual CIE's key: level 3); the authorization request carries
a request object signed by the client; the consent page is answered; the code is exchanged
with authlib's private_key_jwt client authentication and PKCE; authlib validates the ID
token (signature by the published JWKS, iss, aud, nonce, at_hash, exp) and opens the
UserInfo JWE and its JWS. Then authlib's RFC 7662 introspection and RFC 7009 revocation
(private_key_jwt, the assertion's aud the endpoint called) and an RP-initiated logout
(id_token_hint, the registered post_logout_redirect_uri, state).

Environment: SERVER_BIN, CARD_CA, CARD_KEY (PKCS#8 DER), CARD_CERT (DER)."""

import hashlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import unittest
import ssl
import urllib.parse

import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebEncryption, JsonWebKey, jwt
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from authlib.oidc.core import CodeIDToken
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bindings"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from companion_server import Server  # noqa: E402
from login import b64, desktop_login  # noqa: E402

CLIENT_ID = "https://rp.example/oidc/rp"
REDIRECT = "https://rp.example/oidc/rp/callback"
LOGGED_OUT = "https://rp.example/oidc/rp/logged-out"
SPID_L2 = "https://www.spid.gov.it/SpidL2"
SPID_L3 = "https://www.spid.gov.it/SpidL3"
FISCAL = "https://attributes.eid.gov.it/fiscal_number"



def rsa_key(use):
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = JsonWebKey.import_key(private, {"kty": "RSA", "use": use})
    jwk = JsonWebKey.import_key(private, {"kty": "RSA", "use": use, "kid": jwk.thumbprint()})
    return private, jwk


def pem(private):
    return private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())


class AuthlibClient(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sign_private, cls.sign_jwk = rsa_key("sig")
        cls.enc_private, cls.enc_jwk = rsa_key("enc")
        # A new key file, created 0600 at first start.
        cls.tmp = tempfile.TemporaryDirectory()
        key_file = os.path.join(cls.tmp.name, "oidc-key.pem")
        # And the next key of a rotation, published but not signing (created too).
        next_file = os.path.join(cls.tmp.name, "oidc-next-key.pem")
        cls.server = Server(extra=["--oidc-key", key_file, "--oidc-published-key", next_file])
        for f in (key_file, next_file):
            mode = os.stat(f).st_mode & 0o777
            assert mode == 0o600, oct(mode)
        jwks_file = os.path.join(cls.tmp.name, "rp-jwks.json")
        with open(jwks_file, "w") as f:
            # authlib leaves `use` out of exported keys: the provider needs it to tell the
            # encryption key from the signing key.
            public = [dict(json.loads(k.as_json(is_private=False)), use=use)
                      for k, use in ((cls.sign_jwk, "sig"), (cls.enc_jwk, "enc"))]
            json.dump({"keys": public}, f)
        db = "sqlite:" + os.path.join(cls.server.dir.name, "db.sqlite")
        out = subprocess.run(
            [os.environ["SERVER_BIN"], "oidc", "client", "add", "--client-id", CLIENT_ID,
             "--redirect-uri", REDIRECT, "--post-logout-redirect-uri", LOGGED_OUT,
             "--jwks", jwks_file, "--client-name", "Comune di Prova",
             "--database", db],
            check=True, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        assert "registered" in out.stdout, out
        cls.origin = cls.server.origin
        # Trust the certificate the server generated at start (requests and authlib alike).
        ca = os.path.join(cls.tmp.name, "server.pem")
        with open(ca, "w") as f:
            f.write(ssl.get_server_certificate(("127.0.0.1", cls.server.port)))
        os.environ["REQUESTS_CA_BUNDLE"] = ca
        cls.conf = requests.get(cls.origin + "/.well-known/openid-configuration").json()
        cls.op_jwks = JsonWebKey.import_key_set(
            requests.get(cls.conf["jwks_uri"]).json())

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.tmp.cleanup()

    def browser(self):
        return requests.Session()

    def desktop_login(self, browser):
        desktop_login(self, self.origin, browser)

    def request_object(self, state, nonce, challenge, acr):
        now = int(time.time())
        claims = {
            "iss": CLIENT_ID, "client_id": CLIENT_ID,
            "aud": [self.conf["issuer"], self.conf["authorization_endpoint"]],
            "iat": now, "exp": now + 60, "response_type": "code", "scope": "openid profile",
            "redirect_uri": REDIRECT, "state": state, "nonce": nonce,
            "code_challenge": challenge, "code_challenge_method": "S256",
            "acr_values": acr, "prompt": "consent",
            "claims": {"userinfo": {FISCAL: {"essential": True}}},
        }
        header = {"alg": "RS256", "kid": self.sign_jwk.kid}
        return jwt.encode(header, claims, self.sign_jwk).decode()

    def authorize(self, browser, acr):
        """Authorization request → consent page → "Acconsento": the callback URL."""
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(48)
        challenge = b64(hashlib.sha256(verifier.encode()).digest())
        query = {
            "client_id": CLIENT_ID, "response_type": "code", "scope": "openid profile",
            "code_challenge": challenge, "code_challenge_method": "S256",
            "request": self.request_object(state, nonce, challenge, acr),
        }
        r = browser.get(self.conf["authorization_endpoint"], params=query, allow_redirects=False)
        self.assertEqual(r.status_code, 303, r.text)
        consent = self.origin + r.headers["location"]
        page = browser.get(consent, allow_redirects=False)
        self.assertEqual(page.status_code, 200, page.text)
        self.assertIn("Acconsento", page.text)
        self.assertIn("Comune di Prova", page.text)
        r = browser.post(consent, data={"decision": "accept"}, allow_redirects=False)
        self.assertEqual(r.status_code, 302, r.text)
        return r.headers["location"], state, nonce, verifier

    def test_authorization_code_flow_with_authlib(self):
        self.assertEqual(self.conf["issuer"], self.origin)
        self.assertEqual(self.conf["token_endpoint_auth_methods_supported"], ["private_key_jwt"])
        browser = self.browser()
        self.desktop_login(browser)
        callback, state, nonce, verifier = self.authorize(browser, f"{SPID_L2} {SPID_L3}")
        back = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(callback).query))
        self.assertEqual(back["state"], state)
        self.assertEqual(back["iss"], self.conf["issuer"])

        token_url = self.conf["token_endpoint"]
        session = OAuth2Session(
            CLIENT_ID, pem(self.sign_private), token_endpoint_auth_method="private_key_jwt",
            redirect_uri=REDIRECT, state=state)
        session.register_client_auth_method(
            PrivateKeyJWT(token_url, headers={"kid": self.sign_jwk.kid}))
        token = session.fetch_token(token_url, authorization_response=callback,
                                    code_verifier=verifier)

        claims = jwt.decode(
            token["id_token"], self.op_jwks, claims_cls=CodeIDToken,
            claims_options={"iss": {"essential": True, "value": self.conf["issuer"]}},
            claims_params={"nonce": nonce, "client_id": CLIENT_ID,
                           "access_token": token["access_token"]})
        claims.validate()  # exp, iat, iss, aud, nonce, at_hash
        # Two keys published (rotation); the first one signs.
        published = requests.get(self.conf["jwks_uri"]).json()["keys"]
        self.assertEqual(len(published), 2)
        self.assertNotEqual(published[0]["kid"], published[1]["kid"])
        self.assertEqual(claims.header["kid"], published[0]["kid"])
        self.assertEqual(claims["acr"], SPID_L3)
        self.assertNotIn("given_name", claims)

        r = session.get(self.conf["userinfo_endpoint"])
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.headers["content-type"], "application/jwt")
        jwe = JsonWebEncryption().deserialize_compact(r.text, self.enc_jwk)
        self.assertEqual(jwe["header"]["alg"], "RSA-OAEP")
        self.assertEqual(jwe["header"]["enc"], "A128CBC-HS256")
        self.assertEqual(jwe["header"]["kid"], self.enc_jwk.kid)
        info = jwt.decode(jwe["payload"], self.op_jwks)
        info.validate()
        self.assertEqual(info["sub"], claims["sub"])
        self.assertEqual(info["aud"], CLIENT_ID)
        self.assertEqual(info["given_name"], "MARIA")
        self.assertTrue(info[FISCAL].startswith("TINIT-"))

        # The code again: refused, and the access token it gave stops working.
        again = OAuth2Session(CLIENT_ID, pem(self.sign_private), token_endpoint_auth_method="private_key_jwt",
                              redirect_uri=REDIRECT, state=state)
        again.register_client_auth_method(
            PrivateKeyJWT(token_url, headers={"kid": self.sign_jwk.kid}))
        with self.assertRaises(Exception) as caught:
            again.fetch_token(token_url, authorization_response=callback, code_verifier=verifier)
        self.assertIn("invalid_grant", str(caught.exception))
        self.assertEqual(session.get(self.conf["userinfo_endpoint"]).status_code, 401)

    def session_with_tokens(self, browser):
        """A new authorization, redeemed by an authlib session whose private_key_jwt
        assertions name the endpoint called (token, introspection, revocation)."""
        callback, state, _, verifier = self.authorize(browser, SPID_L2)
        session = OAuth2Session(
            CLIENT_ID, pem(self.sign_private), token_endpoint_auth_method="private_key_jwt",
            revocation_endpoint_auth_method="private_key_jwt", redirect_uri=REDIRECT,
            state=state)
        session.register_client_auth_method(PrivateKeyJWT(headers={"kid": self.sign_jwk.kid}))
        token = session.fetch_token(self.conf["token_endpoint"], authorization_response=callback,
                                    code_verifier=verifier)
        return session, token

    def test_introspection_revocation_and_logout_with_authlib(self):
        self.assertEqual(self.conf["revocation_endpoint_auth_methods_supported"],
                         ["private_key_jwt"])
        self.assertEqual(self.conf["introspection_endpoint_auth_methods_supported"],
                         ["private_key_jwt"])
        browser = self.browser()
        self.desktop_login(browser)
        session, token = self.session_with_tokens(browser)
        at = token["access_token"]
        introspect = self.conf["introspection_endpoint"]

        r = session.introspect_token(introspect, token=at, token_type_hint="access_token")
        self.assertEqual(r.status_code, 200, r.text)
        info = r.json()
        self.assertIs(info["active"], True)
        self.assertEqual(info["client_id"], CLIENT_ID)
        self.assertEqual(info["iss"], self.conf["issuer"])
        self.assertEqual(info["scope"], "openid profile")
        self.assertGreater(info["exp"], time.time())

        r = session.revoke_token(self.conf["revocation_endpoint"], token=at,
                                 token_type_hint="access_token")
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(session.introspect_token(introspect, token=at).json(), {"active": False})
        self.assertEqual(session.get(self.conf["userinfo_endpoint"]).status_code, 401)
        # Unknown token: still 200.
        r = session.revoke_token(self.conf["revocation_endpoint"], token="not-ours")
        self.assertEqual(r.status_code, 200, r.text)

        # SPID: the revocation also ended the single sign-on session.
        self.assertEqual(browser.get(self.origin + "/api/v1/session").status_code, 404)

        # RP-initiated logout: the confirmation page, then back to the registered URI with
        # the state; the session's tokens are revoked.
        self.desktop_login(browser)
        session, token = self.session_with_tokens(browser)
        params = {"id_token_hint": token["id_token"], "post_logout_redirect_uri": LOGGED_OUT,
                  "state": "bye-42"}
        page = browser.get(self.conf["end_session_endpoint"], params=params,
                           allow_redirects=False)
        self.assertEqual(page.status_code, 200, page.text)
        self.assertIn("Esci", page.text)
        r = browser.post(self.conf["end_session_endpoint"], data=dict(params, confirm="1"),
                         allow_redirects=False)
        self.assertEqual(r.status_code, 302, r.text)
        self.assertEqual(r.headers["location"], LOGGED_OUT + "?state=bye-42")
        self.assertEqual(session.get(self.conf["userinfo_endpoint"]).status_code, 401)
        # Not registered for logout: the error page, no redirect.
        r = browser.get(self.conf["end_session_endpoint"],
                        params=dict(params, post_logout_redirect_uri=REDIRECT),
                        allow_redirects=False)
        self.assertEqual(r.status_code, 400)
        self.assertNotIn("location", r.headers)


if __name__ == "__main__":
    unittest.main()
