"""A logged-in PIN holder for the authenticated schemathesis run (tests/api/schemathesis.sh):
the delivery hook's part (`pin outbox` of both channels, then `pin ack`), the first login
with the initial PIN, the forced change, the login with the new PIN. Prints the session
token (the `cc_session` cookie's value) on stdout; nothing else goes there.

    python3 tests/api/pin_session.py SERVER_BIN DATABASE OTP_KEY_FILE ORIGIN CODICE_FISCALE

Each step checks the answer it must get, so a change of the flow fails here, by name,
rather than leave the second run without credentials (it would pass, proving nothing)."""

import json
import ssl
import subprocess
import sys
import urllib.error
import urllib.request

NEW_PIN = "K7W9X2QZ"  # 8 characters the policy accepts (as tests/browser/test_abroad_pin.py)


def main():
    server, database, key_file, origin, cf = sys.argv[1:6]

    def pin_command(*args):
        return subprocess.run([server, "pin", *args, "--database", database,
                               "--otp-key-file", key_file],
                              check=True, capture_output=True, text=True, timeout=60).stdout

    halves = []
    for channel in ("digital", "postal"):
        rows = [json.loads(line) for line in pin_command("outbox", "--channel", channel).splitlines()]
        mine = [r for r in rows if r["codice_fiscale"] == cf]
        if len(mine) != 1:
            fail(f"outbox {channel}: {len(mine)} letters for {cf}")
        halves.append(mine[0]["half"])
        pin_command("ack", "--channel", channel, "--id", str(mine[0]["id"]))
    initial = "".join(halves)

    tls = ssl.create_default_context()
    tls.check_hostname = False
    tls.verify_mode = ssl.CERT_NONE  # the server's self-signed loopback certificate

    def post(path, body):
        req = urllib.request.Request(origin + path, data=json.dumps(body).encode(),
                                     headers={"content-type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(req, context=tls, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"null"), resp.headers
        except urllib.error.HTTPError as e:
            fail(f"POST {path}: {e.code} {e.read()[:300]!r}")

    _, first, _ = post("/api/v1/abroad/login", {"codice_fiscale": cf, "pin": initial})
    if not (isinstance(first, dict) and first.get("pin_change_required") is True):
        fail(f"first login: expected the forced change, got {first!r}")
    post("/api/v1/abroad/pin", {"codice_fiscale": cf, "old_pin": initial, "new_pin": NEW_PIN})
    _, _, headers = post("/api/v1/abroad/login", {"codice_fiscale": cf, "pin": NEW_PIN})
    token = None
    for value in headers.get_all("set-cookie") or []:
        name, _, rest = value.partition("=")
        if name.strip() == "cc_session":
            token = rest.split(";", 1)[0]
    if not token:
        fail("login with the new PIN set no cc_session cookie")
    print(token)


def fail(why):
    print(f"pin_session: {why}", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
    main()
