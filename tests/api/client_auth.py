"""A registered relying party's `private_key_jwt` client authentication (RFC 7523 §2.2) for
the logged-in schemathesis run (tests/api/schemathesis.sh), so the token, introspection and
revocation endpoints are fuzzed past `invalid_client`: every request schemathesis makes to
them gets a fresh client assertion (its own jti, aud the endpoint called, RS256 by the
client's key), the other form fields stay the fuzzer's. The first run, without it, fuzzes
the assertion fields themselves.

    python3 client_auth.py keygen DIR     # DIR/client.pem and DIR/jwks.json (public), for
                                          # `companion-server oidc client add --jwks`
    SCHEMATHESIS_HOOKS=client_auth st run …   # (this folder on PYTHONPATH) with
        CIE_ST_CLIENT_ID, CIE_ST_CLIENT_KEY (the PEM file), CIE_ST_ORIGIN (the server)

Runs in schemathesis' own virtualenv (scripts/deps.sh adds `cryptography` to it)."""

import base64
import hashlib
import json
import os
import secrets
import ssl
import sys
import time
import urllib.request

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# The endpoints that authenticate the client, by path (the schema's) → discovery's key.
ENDPOINTS = {
    "/oidc/token": "token_endpoint",
    "/oidc/introspection": "introspection_endpoint",
    "/oidc/revocation": "revocation_endpoint",
}


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwk_of(public, use="sig"):
    n = public.public_numbers()
    jwk = {"kty": "RSA", "e": b64(n.e.to_bytes((n.e.bit_length() + 7) // 8, "big")),
           "n": b64(n.n.to_bytes((n.n.bit_length() + 7) // 8, "big"))}
    # RFC 7638 thumbprint as the kid: the required members, sorted, no spaces.
    canonical = json.dumps({k: jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"))
    return {**jwk, "use": use, "kid": b64(hashlib.sha256(canonical.encode()).digest())}


def keygen(folder):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with open(os.path.join(folder, "client.pem"), "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    # The server encrypts UserInfo to the client (docs/oidc.md): registration wants an
    # encryption key too, though these requests never get to need it.
    enc = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with open(os.path.join(folder, "jwks.json"), "w") as f:
        json.dump({"keys": [jwk_of(key.public_key()), jwk_of(enc.public_key(), "enc")]}, f)


class Client:
    """The relying party: its id, key, and the endpoints' URLs as the server publishes them."""

    def __init__(self):
        from cryptography.hazmat.primitives import serialization
        self.client_id = os.environ["CIE_ST_CLIENT_ID"]
        with open(os.environ["CIE_ST_CLIENT_KEY"], "rb") as f:
            self.key = serialization.load_pem_private_key(f.read(), None)
        self.kid = jwk_of(self.key.public_key())["kid"]
        tls = ssl.create_default_context()
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE  # the server's self-signed loopback certificate
        url = os.environ["CIE_ST_ORIGIN"] + "/.well-known/openid-configuration"
        with urllib.request.urlopen(url, context=tls, timeout=30) as resp:
            conf = json.load(resp)
        self.aud = {path: conf[key] for path, key in ENDPOINTS.items()}

    def assertion(self, path):
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding
        now = int(time.time())
        header = {"alg": "RS256", "typ": "JWT", "kid": self.kid}
        claims = {"iss": self.client_id, "sub": self.client_id, "aud": self.aud[path],
                  "iat": now, "exp": now + 120, "jti": secrets.token_urlsafe(18)}
        signing_input = (b64(json.dumps(header).encode()) + "."
                         + b64(json.dumps(claims).encode()))
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + b64(signature)


def register_hooks():
    import schemathesis

    client = Client()

    # refresh_interval=None: no caching, `get` runs for every case (a jti is used once).
    @schemathesis.auth(refresh_interval=None).apply_to(path=list(ENDPOINTS))
    class ClientAssertion:
        def get(self, case, context):
            return client.assertion(context.operation.path)

        def set(self, case, data, context):
            # A body the fuzzer made something else than a form stays as it is.
            if isinstance(case.body, dict):
                case.body = {**case.body, "client_assertion_type": ASSERTION_TYPE,
                             "client_assertion": data, "client_id": client.client_id}


if __name__ == "__main__":
    if sys.argv[1:2] == ["keygen"] and len(sys.argv) == 3:
        keygen(sys.argv[2])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
elif os.environ.get("CIE_ST_CLIENT_ID"):
    register_hooks()
