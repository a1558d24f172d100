"""A long-lived PKCS#11 application (OpenSC's PyKCS11 bindings, not ours) for
tests/pkcs11/shared.sh: it logs in and signs, tells the script, waits while the script
restarts pcscd (and the card with it), then checks that its next signature fails with a
code that names the cause — never CKR_PIN_INCORRECT, within a bounded time — and that the
call after that works: a new session logs in and signs a signature that verifies.

    python shared_card.py MODULE PIN     (stdout: READY, then OK; reads GO on stdin)
"""

import hashlib
import sys
import time

import PyKCS11
from PyKCS11 import LowLevel as LL

MODULE, PIN = sys.argv[1], sys.argv[2]
DATA = b"shared card test"
# A signature call that fails must say so within this time.
LIMIT_SECS = 15
ALLOWED = {LL.CKR_DEVICE_ERROR, LL.CKR_DEVICE_REMOVED, LL.CKR_TOKEN_NOT_PRESENT}
SHA256_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")


def fail(msg):
    print(f"shared_card.py: FAIL: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def verifies(session, signature):
    """RSA PKCS#1 v1.5 over SHA-256 checked with the token's public key, in Python."""
    (key,) = session.findObjects([(PyKCS11.CKA_CLASS, PyKCS11.CKO_PUBLIC_KEY)])
    n, e = session.getAttributeValue(key, [PyKCS11.CKA_MODULUS, PyKCS11.CKA_PUBLIC_EXPONENT])
    n, e = int.from_bytes(bytes(n), "big"), int.from_bytes(bytes(e), "big")
    k = (n.bit_length() + 7) // 8
    block = pow(int.from_bytes(bytes(signature), "big"), e, n).to_bytes(k, "big")
    payload = SHA256_PREFIX + hashlib.sha256(DATA).digest()
    want = b"\x00\x01" + b"\xff" * (k - len(payload) - 3) + b"\x00" + payload
    return block == want


def login_and_sign(lib):
    slots = lib.getSlotList(tokenPresent=True)
    if not slots:
        fail("no token")
    session = lib.openSession(slots[0], PyKCS11.CKF_SERIAL_SESSION)
    session.login(PIN)
    (key,) = session.findObjects([(PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY)])
    return session, key


def sign(session, key):
    return session.sign(key, DATA, PyKCS11.Mechanism(PyKCS11.CKM_SHA256_RSA_PKCS))


lib = PyKCS11.PyKCS11Lib()
lib.load(MODULE)
session, key = login_and_sign(lib)
if not verifies(session, sign(session, key)):
    fail("first signature does not verify")
print("READY", flush=True)
if sys.stdin.readline().strip() != "GO":
    fail("no GO from the script")

started = time.monotonic()
try:
    sig = sign(session, key)
    # pcscd restarted and the card powered up afresh: a signature can only come from a
    # module that logged in again on its own, which it must not do without the PIN.
    fail(f"a signature after pcscd restarted ({len(sig)} bytes)")
except PyKCS11.PyKCS11Error as e:
    took = time.monotonic() - started
    print(f"signature after the restart: {e} ({took:.1f} s)", flush=True)
    if e.value not in ALLOWED:
        fail(f"expected a device error, got {e}")
    if took > LIMIT_SECS:
        fail(f"the failing call took {took:.1f} s")

# The next call works: a new session, login, signature.
session, key = login_and_sign(lib)
if not verifies(session, sign(session, key)):
    fail("signature after the restart does not verify")
session.logout()
session.closeSession()
print("OK", flush=True)
