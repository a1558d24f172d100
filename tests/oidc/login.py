"""A user's login on the provider's desktop page, as the OpenID tests need it: a desktop QR
claimed by a "phone" and approved with the virtual CIE's key (level 3) over the HTTP API;
the browser session then holds `cc_session`. Environment: CARD_KEY (PKCS#8 DER), CARD_CERT
(DER)."""

import base64
import hashlib
import hmac
import os

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def desktop_login(test, origin, browser):
    """Desktop QR approved by the virtual CIE (level 3): the browser gets cc_session."""
    phone = requests.Session()
    phone.verify, phone.trust_env = browser.verify, browser.trust_env
    r = browser.post(origin + "/api/v1/desktop/rendezvous", json={})
    test.assertEqual(r.status_code, 200, r.text)
    body = r.json()
    rid = body["rid"]
    _, _, fragment = body["qr"].partition("#")
    version, qr_rid, secret = fragment.split(".")
    test.assertEqual((version, qr_rid), ("v1", rid))
    message = f"cie-companion/v1 claim\n{origin}\n{rid}".encode()
    proof = b64(hmac.new(unb64(secret), message, hashlib.sha256).digest())
    r = phone.post(origin + "/api/v1/rendezvous/claim",
                   json={"rid": rid, "proof": proof, "device_name": "Pixel 8"})
    test.assertEqual(r.status_code, 200, r.text)
    claimed = r.json()
    r = phone.post(origin + "/api/v1/card/challenge", json={
        "purpose": "desktop_approve", "rid": rid, "claim_token": claimed["claim_token"]})
    ch = r.json()
    statement = (f"cie-companion/v1 desktop-approve\n{origin}\n{rid}\n"
                 f"{claimed['context_hash']}\n{ch['challenge']}").encode()
    with open(os.environ["CARD_KEY"], "rb") as f:
        card = serialization.load_der_private_key(f.read(), None)
    signature = card.sign(statement, padding.PKCS1v15(), hashes.SHA256())
    with open(os.environ["CARD_CERT"], "rb") as f:
        cert = f.read()
    r = phone.post(origin + f"/api/v1/rendezvous/{rid}/approve", json={
        "method": "cie", "claim_token": claimed["claim_token"],
        "challenge_id": ch["challenge_id"], "certificate": b64(cert),
        "signature": b64(signature)})
    test.assertEqual(r.status_code, 200, r.text)
    r = browser.post(origin + f"/api/v1/desktop/rendezvous/{rid}/code",
                     json={"code": r.json()["code"]})
    test.assertEqual(r.status_code, 200, r.text)
    test.assertEqual(browser.get(origin + "/api/v1/session").json()["level"], 3)
