"""Python binding test: the core's UniFFI surface driven from Python.

A `CardTransport` implemented in Python (async `transmit`) forwards APDUs to the virtual
card (`card_sim.SimCard`, exported by the same library); `CardSession` runs the core's
protocol code over it. Errors raised by the Python transport must come back out of the
core as typed `CardError`s.

Run by scripts/bindings-test.sh with the generated `cie_core.py`, `card_sim.py` and
`libcie_tests.so` on `sys.path` (the directory given as BINDINGS_DIR, or argv[1]).
Plain python3 + unittest, nothing to install.
"""

import asyncio
import os
import sys
import unittest

_dir = os.environ.get("BINDINGS_DIR") or (sys.argv.pop(1) if len(sys.argv) > 1 else None)
if _dir:
    sys.path.insert(0, _dir)

import card_sim  # noqa: E402
import cie_core  # noqa: E402
from cie_core import CardError, TransportError  # noqa: E402

# Short-APDU link limits, as Android IsoDep without extended length reports them.
MAX_COMMAND = 261
MAX_RESPONSE = 258
EMRTD_AID = bytes.fromhex("A0000002471001")
CIE_AID = bytes.fromhex("A00000000039")
# card-sim's test card: MF / DF 5000 / EF 5001.
TEST_DF = bytes.fromhex("5000")
TEST_EF = bytes.fromhex("5001")


def test_pattern(size):
    """card_sim::cie::test_pattern."""
    return bytes(((i % 251) ^ (i // 251)) & 0xFF for i in range(size))


def expected_read_apdus(size):
    """APDUs the core needs for a whole-EF read of `size` bytes over a short link.

    One SELECT (with FCP, so the size is known), then READ BINARY `B0` in 256-byte chunks
    up to offset 32767, then odd `B1` whose answers carry the data inside `53 82 xx xx`
    wrappers: 253 content bytes fit in a 256-byte answer.
    """
    b0_part = min(size, 0x8000)
    b1_part = max(0, size - 0x8000)
    return 1 + -(-b0_part // 256) + -(-b1_part // 253)


class SimTransport(cie_core.CardTransport):
    """A Python transport over the virtual card. `fail_at` (1-based) raises `fail_with`
    instead of sending that APDU. It enforces the limits it reports, as a real link does."""

    def __init__(self, sim, fail_at=None, fail_with=None, atr=None):
        self.sim = sim
        self.fail_at = fail_at
        self.fail_with = fail_with
        self.atr = atr
        self.sent = 0

    async def transmit(self, apdu):
        self.sent += 1
        if self.sent == self.fail_at:
            raise self.fail_with
        assert isinstance(apdu, bytes), type(apdu)
        if len(apdu) > MAX_COMMAND:
            raise TransportError.Io(f"command of {len(apdu)} bytes exceeds the link")
        await asyncio.sleep(0)  # really suspend: the core must await us, not block
        resp = self.sim.transmit(apdu)
        if len(resp) > MAX_RESPONSE:
            raise TransportError.Io(f"response of {len(resp)} bytes exceeds the link")
        return resp

    def info(self):
        return cie_core.TransportInfo(
            kind=cie_core.TransportKind.VIRTUAL,
            extended_length=False,
            max_command_len=MAX_COMMAND,
            max_response_len=MAX_RESPONSE,
            atr=self.atr,
        )


def run(coro):
    return asyncio.run(coro)


class ProbeTest(unittest.TestCase):
    def test_probe_finds_cie_applications(self):
        sim = card_sim.SimCard.cie()
        transport = SimTransport(sim, atr=b"\x3b\x8f\x80\x01")
        session = cie_core.CardSession(transport)
        self.assertEqual(session.transport_info().atr, b"\x3b\x8f\x80\x01")
        self.assertEqual(session.transport_info().max_response_len, MAX_RESPONSE)

        probe = run(session.probe())
        present = {a.application: a.present for a in probe.applications}
        K = cie_core.KnownApplication
        self.assertTrue(present[K.CIE_IAS])
        self.assertTrue(present[K.CIE_DF])
        self.assertTrue(present[K.ICAO_EMRTD])
        self.assertFalse(present[K.CNS])
        cns = next(a for a in probe.applications if a.application == K.CNS)
        self.assertEqual(cns.sw, 0x6A82)
        self.assertTrue(all(a.label for a in probe.applications))
        self.assertIsNotNone(probe.ef_atr)
        self.assertIn(b"SYNTHETIC", probe.ef_atr)
        self.assertEqual(probe.transport.kind, cie_core.TransportKind.VIRTUAL)
        # Every APDU went through the Python transport, none around it.
        self.assertEqual(sim.apdu_count(), transport.sent)
        # 4 application SELECTs, SELECT MF, SELECT EF.ATR (FCP), one READ BINARY.
        self.assertEqual(transport.sent, 7)

    def test_select_and_read_small_file(self):
        sim = card_sim.SimCard.cie()
        session = cie_core.CardSession(SimTransport(sim))
        run(session.select_application(CIE_AID))
        nis = run(session.read_file(bytes.fromhex("1001")))  # EF.ID_Servizi
        self.assertEqual(nis, b"000011112222")  # card-sim's synthetic NIS
        with self.assertRaises(CardError.NotFound):
            run(session.select_application(bytes.fromhex("A0000000FFFF")))
        with self.assertRaises(CardError.NotSupported):
            run(session.read_file(b"\x10\x01\x02"))


class LargeFileTest(unittest.TestCase):
    def read_large(self, size, transport_kwargs=None):
        sim = card_sim.SimCard.with_large_file(size)
        transport = SimTransport(sim, **(transport_kwargs or {}))
        # CardSession has no SELECT-DF-by-FID (only by AID), and DF 5000 has no AID: select
        # it on the raw card first (P1=00 by FID, no answer data). See the report.
        self.assertEqual(sim.transmit(bytes.fromhex("00A4000C02") + TEST_DF), b"\x90\x00")
        session = cie_core.CardSession(transport)
        return sim, transport, run(session.read_file(TEST_EF))

    def test_large_file_content_and_apdu_count(self):
        for size in (1, 256, 257, 32768, 40000, 65000):
            with self.subTest(size=size):
                sim, transport, data = self.read_large(size)
                self.assertEqual(len(data), size)
                self.assertEqual(data, test_pattern(size))
                self.assertEqual(transport.sent, expected_read_apdus(size))
                self.assertEqual(sim.apdu_count(), transport.sent + 1)  # + raw SELECT DF

    def test_tag_lost_during_large_read(self):
        size = 40000
        total = expected_read_apdus(size)
        for n in (1, 2, 100, 129, 130, total):
            with self.subTest(n=n):
                kw = {"fail_at": n, "fail_with": TransportError.TagLost()}
                with self.assertRaises(CardError.TagLost):
                    self.read_large(size, kw)


class ErrorTest(unittest.TestCase):
    def probe_failing(self, n, exc):
        sim = card_sim.SimCard.cie()
        transport = SimTransport(sim, fail_at=n, fail_with=exc)
        session = cie_core.CardSession(transport)
        try:
            run(session.probe())
        finally:
            # The core stops at the failure: no retry, nothing after it.
            self.assertEqual(transport.sent, n)
            self.assertEqual(sim.apdu_count(), n - 1)

    def test_tag_lost_at_every_probe_apdu(self):
        for n in range(1, 8):
            with self.subTest(n=n):
                with self.assertRaises(CardError.TagLost) as cm:
                    self.probe_failing(n, TransportError.TagLost())
                self.assertIsInstance(cm.exception, CardError)

    def test_timeout_and_io(self):
        with self.assertRaises(CardError.Timeout):
            self.probe_failing(3, TransportError.Timeout())
        with self.assertRaises(CardError.Reader) as cm:
            self.probe_failing(2, TransportError.Io("USB reader unplugged"))
        self.assertEqual(cm.exception.reason, "USB reader unplugged")

    def test_unexpected_python_exception_is_a_reader_error(self):
        for n in (1, 5):
            with self.subTest(n=n):
                with self.assertRaises(CardError.Reader) as cm:
                    self.probe_failing(n, ValueError("shell bug 42"))
                self.assertIn("shell bug 42", cm.exception.reason)


class MemoryStore(cie_core.SecretStore):
    """The platform keystore, in memory: records what protection each value asked for."""

    def __init__(self):
        self.values = {}

    def load(self, name):
        entry = self.values.get(name)
        return entry[0] if entry else None

    def save(self, name, value, protection):
        self.values[name] = (value, protection)

    def remove(self, name):
        self.values.pop(name, None)


class Steps(cie_core.ProgressListener):
    def __init__(self):
        self.seen = []
        self.bytes = []

    def on_step(self, step, done, total):
        self.seen.append((step, done, total))

    def on_bytes(self, step, done, total):
        self.bytes.append((step, done, total))


CHALLENGE = b"nonce fetched from the server before the tap"


class LoginTest(unittest.TestCase):
    """Full read + PIN + sign against the virtual CIE, across the FFI."""

    def test_pair_with_full_pin_then_log_in_with_last_four(self):
        sim = card_sim.SimCard.cie()
        store = MemoryStore()
        steps = Steps()
        login = cie_core.CieLogin(CHALLENGE, cie_core.DigestAlgorithm.SHA256, "12345678", store, True)
        result = run(login.tap(SimTransport(sim), steps))
        self.assertEqual(result.nis, "000011112222")
        self.assertEqual(result.codice_fiscale, "TSTTST80A01H501X")
        self.assertEqual(len(result.signature), 256)  # checked against the certificate in Rust
        self.assertTrue(result.paired_now)
        self.assertFalse(result.certificate_from_cache)
        self.assertEqual(steps.seen[-1][0], cie_core.LoginStep.DONE)
        self.assertIn(cie_core.LoginStep.CHECKING_CARD, [s for s, _, _ in steps.seen])
        # The certificate read reports its bytes: rising, in several commands, to the whole.
        self.assertTrue(all(s == cie_core.LoginStep.READING_CERTIFICATE for s, _, _ in steps.bytes))
        done = [d for _, d, _ in steps.bytes]
        self.assertGreater(len(done), 2)
        self.assertEqual(done, sorted(done))
        self.assertEqual(done[-1], steps.bytes[-1][2])
        half, protection = store.values["cie/000011112222/pin-first-half"]
        self.assertEqual(half, b"1234")
        self.assertEqual(protection, cie_core.Protection.USER_PRESENCE)

        again = cie_core.CieLogin(CHALLENGE, cie_core.DigestAlgorithm.SHA256, "5678", store, False)
        result2 = run(again.tap(SimTransport(card_sim.SimCard.cie()), None))
        self.assertTrue(result2.certificate_from_cache)
        self.assertEqual(result2.certificate_der, result.certificate_der)

    def test_wrong_pin_reports_tries_left_and_bad_format_spends_none(self):
        sim = card_sim.SimCard.cie()
        login = cie_core.CieLogin(CHALLENGE, cie_core.DigestAlgorithm.SHA256, "11112222", None, False)
        with self.assertRaises(CardError.WrongPin) as ctx:
            run(login.tap(SimTransport(sim), None))
        self.assertEqual(ctx.exception.remaining, 2)
        self.assertEqual(
            cie_core.card_error_message_it(ctx.exception), "PIN errato: restano 2 tentativi. Ricontrolla il PIN e riprova."
        )
        with self.assertRaises(CardError.InvalidPin):
            cie_core.CieLogin(CHALLENGE, cie_core.DigestAlgorithm.SHA256, "12a45678", None, False)

    def test_pin_change_and_puk_unblock_through_the_bindings(self):
        # The same SimCard across calls: its counters are the card's own.
        sim = card_sim.SimCard.cie()
        with self.assertRaises(CardError.NewPinRejected) as ctx:
            run(cie_core.change_card_pin(SimTransport(sim), "12345678", "11111111", "11111111", False, None))
        self.assertIn("stessa cifra", ctx.exception.reason_it)
        with self.assertRaises(CardError.WrongPuk) as ctx:
            run(cie_core.unblock_card_pin(SimTransport(sim), "11223344", "24681357", "24681357", False, None))
        self.assertEqual(ctx.exception.remaining, 9)
        self.assertIn("PUK errato: restano 9 tentativi", cie_core.card_error_message_it(ctx.exception))
        run(cie_core.unblock_card_pin(SimTransport(sim), "87654321", "24681357", "24681357", False, None))
        run(cie_core.change_card_pin(SimTransport(sim), "24681357", "13572468", "13572468", False, None))
        login = cie_core.CieLogin(CHALLENGE, cie_core.DigestAlgorithm.SHA256, "13572468", None, False)
        self.assertEqual(len(run(login.tap(SimTransport(sim), None)).signature), 256)

    def test_tag_lost_mid_login_resumes_on_the_next_tap(self):
        sim = card_sim.SimCard.cie()
        login = cie_core.CieLogin(CHALLENGE, cie_core.DigestAlgorithm.SHA256, "12345678", None, False)
        with self.assertRaises(CardError.TagLost):
            run(login.tap(SimTransport(sim, fail_at=30, fail_with=TransportError.TagLost()), None))
        result = run(login.tap(SimTransport(card_sim.SimCard.cie()), None))
        self.assertEqual(len(result.signature), 256)


SEED_B32 = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # "12345678901234567890"


class OtpTest(unittest.TestCase):
    """One-time codes through a Python SecretStore, checked against the RFC vectors."""

    def test_add_token_and_get_rfc6238_codes(self):
        store = MemoryStore()
        vault = cie_core.OtpVault(store)
        added = vault.add_uri(f"otpauth://totp/INPS:mario.rossi?secret={SEED_B32}&digits=8&issuer=INPS")
        self.assertEqual(added.token.id, "INPS:mario.rossi")
        self.assertEqual(added.warnings, [])
        # RFC 6238 App. B, SHA-1.
        for t, code in [(59, "94287082"), (1111111109, "07081804"), (20000000000, "65353130")]:
            with self.subTest(t=t):
                self.assertEqual(vault.code("INPS", t).code, code)
        seed, protection = store.values["otp/INPS:mario.rossi/secret"]
        self.assertEqual(seed, b"12345678901234567890")
        self.assertEqual(protection, cie_core.Protection.DEVICE_ONLY)
        self.assertEqual([t.id for t in vault.list()], ["INPS:mario.rossi"])

    def test_hotp_and_refusals(self):
        vault = cie_core.OtpVault(MemoryStore())
        vault.add_uri(f"otpauth://hotp/Lab:bench?secret={SEED_B32}&counter=0")
        self.assertEqual([vault.code("Lab", 0).code for _ in range(3)], ["755224", "287082", "359152"])
        with self.assertRaises(cie_core.OtpError.UnsupportedDigits) as cm:
            cie_core.otp_code_for_uri(f"otpauth://totp/x?secret={SEED_B32}&digits=9", 0)
        self.assertIn("cifre", cie_core.otp_error_message_it(cm.exception))
        with self.assertRaises(cie_core.OtpError.Duplicate):
            vault.add_uri(f"otpauth://hotp/Lab:bench?secret={SEED_B32}")


class NfcTransport(SimTransport):
    """Like SimTransport, but an NFC link with extended length (1 KiB), as Android's IsoDep
    reports for the CIE."""

    async def transmit(self, apdu):
        self.sent += 1
        await asyncio.sleep(0)
        return self.sim.transmit(apdu)

    def info(self):
        return cie_core.TransportInfo(
            kind=cie_core.TransportKind.NFC,
            extended_length=True,
            max_command_len=1030,
            max_response_len=1026,
            atr=None,
        )


class Bar(cie_core.DocumentListener):
    def __init__(self):
        self.seen = []

    def on_progress(self, name, done, total):
        self.seen.append((name, done, total))


class DocumentTest(unittest.TestCase):
    """The CIE's travel-document side through the FFI: PACE with the CAN, data, photo,
    passive authentication."""

    def test_read_the_virtual_cie_with_the_can(self):
        reader = cie_core.DocumentReader.with_can("123456", [card_sim.test_csca_der()])
        bar = Bar()
        doc = run(reader.tap(NfcTransport(card_sim.SimCard.cie_extended()), bar))
        self.assertTrue(doc.pace)
        self.assertEqual(doc.document_number, "CA00000AA")
        self.assertEqual((doc.surname, doc.given_names), ("TESTER", "MARIA"))
        self.assertEqual(doc.codice_fiscale, "TSTTST80A01H501X")
        self.assertEqual(doc.portrait.format, cie_core.ImageFormat.JPEG2000)
        self.assertEqual((doc.portrait.width, doc.portrait.height), (60, 80))
        self.assertEqual(len(doc.portrait.rgb), 60 * 80 * 3)
        self.assertTrue(doc.verification.genuine)
        self.assertEqual(doc.verification.altered, [])
        self.assertEqual(doc.verification.chip_authentication, cie_core.CloneStatus.VERIFIED)
        self.assertEqual(doc.verification.active_authentication, cie_core.CloneStatus.VERIFIED)
        self.assertIn("DG2", [n for n, _, _ in bar.seen])

    def test_wrong_can_and_untrusted_signer(self):
        reader = cie_core.DocumentReader.with_can("654321", [])
        with self.assertRaises(CardError.WrongCan) as cm:
            run(reader.tap(NfcTransport(card_sim.SimCard.cie_extended()), None))
        self.assertIn("CAN errato", cie_core.card_error_message_it(cm.exception))
        with self.assertRaises(CardError.InvalidAccessKey):
            cie_core.DocumentReader.with_can("12345", [])
        # The passport by BAC, with no CSCA trusted: read, but not verified.
        reader = cie_core.DocumentReader.with_mrz("L898902C", "690806", "940623", [])
        doc = run(reader.tap(SimTransport(card_sim.SimCard.passport()), None))
        self.assertFalse(doc.pace)
        self.assertEqual(doc.surname, "ERIKSSON")
        self.assertTrue(doc.verification.signature_valid)
        self.assertFalse(doc.verification.signer_trusted)
        self.assertFalse(doc.verification.genuine)


# A version 3-M QR code of QR_TEXT (module rows, 1 = dark), made with segno 1.6.6.
QR_TEXT = "https://example.it/qr?stride=1"
QR_ROWS = [
    "11111110000110100001001111111",
    "10000010100011000001101000001",
    "10111010011010010001001011101",
    "10111010011001001010101011101",
    "10111010110111001001101011101",
    "10000010001110111111001000001",
    "11111110101010101010101111111",
    "00000000000100010100000000000",
    "10101010001110001100000010010",
    "00000101001011011110101001001",
    "10101010101100111110001110111",
    "11110000000011101101010010010",
    "10100110010000110100011001011",
    "00111101101110110000111001001",
    "11000010101101000010010111011",
    "00010101010110010110110101010",
    "01000011011100001101111001011",
    "01000100011001011100011001101",
    "10100111101000111000111010011",
    "01001101011111101101100111010",
    "10011010010100111100111110000",
    "00000000110100110100100010111",
    "11111110010011001001101011011",
    "10000010001010010110100011011",
    "10111010101010001110111110010",
    "10111010000010010010010010100",
    "10111010101110000000000111001",
    "10000010000100010111101000010",
    "11111110110110100111100110011",
]


def qr_plane(scale, stride, pad_value):
    """The code at `scale` px per module with a 4-module quiet zone, rows padded to
    `stride` bytes with `pad_value` (the last row unpadded, as camera planes may end)."""
    side = (len(QR_ROWS) + 8) * scale
    out = bytearray()
    for y in range(side):
        my = y // scale - 4
        row = bytearray(
            0 if 0 <= my < len(QR_ROWS) and 0 <= x // scale - 4 < len(QR_ROWS)
            and QR_ROWS[my][x // scale - 4] == "1" else 255
            for x in range(side)
        )
        out += row + (bytes([pad_value]) * (stride - side) if y + 1 < side else b"")
    return side, bytes(out)


class QrFrameTest(unittest.TestCase):
    def test_padded_rows_decode(self):
        # Row stride wider than the width (CameraX / AVFoundation planes), padding dark.
        side, plane = qr_plane(4, 4 * 37 + 20, 0)
        self.assertEqual(cie_core.scan_qr_frame(side, side, side + 20, plane), QR_TEXT)
        side, plane = qr_plane(4, 4 * 37, 0)
        self.assertEqual(cie_core.scan_qr_frame(side, side, side, plane), QR_TEXT)

    def test_blank_frame_has_no_code_and_bad_frames_are_typed(self):
        # A padded 64x48 plane (row stride 80), all white: nothing to decode.
        self.assertIsNone(cie_core.scan_qr_frame(64, 48, 80, bytes([255]) * (80 * 48)))
        with self.assertRaises(cie_core.QrError.BadFrame):
            cie_core.scan_qr_frame(64, 48, 32, bytes(64 * 48))  # stride below width
        with self.assertRaises(cie_core.QrError.BadFrame):
            cie_core.scan_qr_frame(64, 48, 64, bytes(100))  # buffer too short


class MiscTest(unittest.TestCase):
    def test_italian_messages(self):
        msg = cie_core.card_error_message_it(CardError.TagLost())
        self.assertIn("avvicinala di nuovo", msg)
        self.assertEqual(
            cie_core.card_error_message_it(CardError.WrongPin(remaining=2)),
            "PIN errato: restano 2 tentativi. Ricontrolla il PIN e riprova.",
        )
        self.assertIn(
            "6985",
            cie_core.card_error_message_it(CardError.Refused(sw=0x6985, reason="x")),
        )

    def test_messages_in_both_languages_and_the_step_after_a_refusal(self):
        lang = cie_core.Language
        self.assertEqual(cie_core.language_for_locale("it-IT"), lang.IT)
        self.assertEqual(cie_core.language_for_locale("en_GB"), lang.EN)
        lost = cie_core.FlowError.Card(error=CardError.TagLost())
        self.assertIn("avvicinala di nuovo", cie_core.flow_error_message(lost, lang.IT))
        self.assertIn("hold it against the phone again", cie_core.flow_error_message(lost, lang.EN))
        self.assertTrue(cie_core.card_tap_step(lost).is_tap_again())
        wrong = cie_core.card_tap_step(cie_core.FlowError.Card(error=CardError.WrongPin(remaining=2)))
        self.assertTrue(wrong.is_enter_pin())
        self.assertEqual(wrong.tries_left, 2)
        self.assertEqual(cie_core.desktop_qr_step(cie_core.FlowError.NotALoginCode()), cie_core.ScanStep.SCAN_AGAIN)
        self.assertEqual(
            cie_core.enrolment_code_step(cie_core.FlowError.Network(reason="dns")), cie_core.ScanStep.STOP
        )

    def test_core_version(self):
        self.assertRegex(cie_core.core_version(), r"^\d+\.\d+\.\d+")


# ---- login flows: the parts that need no server ---------------------------------------
# A P-256 ECDSA signer in plain Python (test only: fixed key, deterministic nonce), so the
# core's DER -> raw r||s conversion is exercised through a foreign `DeviceSigner`.
P256_P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
P256_A = P256_P - 3
P256_G = (
    0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
    0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5,
)


def _ec_add(a, b):
    if a is None:
        return b
    if b is None:
        return a
    if a[0] == b[0] and (a[1] + b[1]) % P256_P == 0:
        return None
    if a == b:
        lam = (3 * a[0] * a[0] + P256_A) * pow(2 * a[1], -1, P256_P)
    else:
        lam = (b[1] - a[1]) * pow(b[0] - a[0], -1, P256_P)
    x = (lam * lam - a[0] - b[0]) % P256_P
    return (x, (lam * (a[0] - x) - a[1]) % P256_P)


def _ec_mul(k, point):
    out = None
    while k:
        if k & 1:
            out = _ec_add(out, point)
        point = _ec_add(point, point)
        k >>= 1
    return out


def _der_int(v):
    b = v.to_bytes(33, "big").lstrip(b"\x00")
    if b[0] & 0x80:
        b = b"\x00" + b
    return b"\x02" + bytes([len(b)]) + b


class PySigner(cie_core.DeviceSigner):
    """`form`: "der", "der-high-s", "raw", "junk" or "cancel"."""

    def __init__(self, form, secret=0x42):
        self.form = form
        self.d = secret
        x, y = _ec_mul(secret, P256_G)
        self.pub = b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")

    def public_key(self):
        return self.pub

    def rs(self, message):
        import hashlib

        z = int.from_bytes(hashlib.sha256(message).digest(), "big")
        k = int.from_bytes(hashlib.sha256(b"k" + message).digest(), "big") % P256_N
        r = _ec_mul(k, P256_G)[0] % P256_N
        s = pow(k, -1, P256_N) * (z + r * self.d) % P256_N
        return r, s

    async def sign(self, message):
        if self.form == "cancel":
            raise cie_core.StoreError.Cancelled()
        if self.form == "junk":
            return b"\x30\x02\x01\x01"
        r, s = self.rs(message)
        if self.form == "raw":
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        if self.form == "der-high-s":
            s = s if s > P256_N // 2 else P256_N - s
        body = _der_int(r) + _der_int(s)
        return b"\x30" + bytes([len(body)]) + body


ORIGIN = "https://login.example.it"
PIN = "A" * 43  # any 32-byte base64url pin: these tests never connect


class FlowLocalTest(unittest.TestCase):
    def client(self):
        return cie_core.CompanionClient([ORIGIN], [PIN], None)

    def test_qr_payload_errors(self):
        c = self.client()
        rid, k = "B" * 21 + "A", "C" * 21 + "A"  # 16 bytes each, canonical base64url
        self.assertEqual(c.check_desktop_qr(f"{ORIGIN}/q#v1.{rid}.{k}"), ORIGIN)
        with self.assertRaises(cie_core.FlowError.NotALoginCode) as e:
            c.check_desktop_qr("otpauth://totp/x?secret=AAAA")
        self.assertIn("inquadra", cie_core.flow_error_message_it(e.exception))
        with self.assertRaises(cie_core.FlowError.UntrustedSite) as e:
            c.check_desktop_qr(f"https://login.example.it.evil.com/q#v1.{rid}.{k}")
        self.assertEqual(e.exception.origin, "https://login.example.it.evil.com")
        self.assertIn("non proseguire", cie_core.flow_error_message_it(e.exception))
        with self.assertRaises(cie_core.FlowError.AppTooOld):
            c.check_desktop_qr(f"{ORIGIN}/q#v2.{rid}.{k}")

    def test_bad_configuration(self):
        with self.assertRaises(cie_core.FlowError.Internal):
            cie_core.CompanionClient([ORIGIN], ["not-a-pin"], None)
        with self.assertRaises(cie_core.FlowError.Internal):
            cie_core.CompanionClient(["http://login.example.it"], [PIN], None)

    def test_device_signatures_become_raw(self):
        msg = b"cie-companion/v1 pending"
        signer = PySigner("der")
        r, s = signer.rs(msg)
        raw = run(cie_core.device_signature(signer, msg))
        self.assertEqual(raw, r.to_bytes(32, "big") + s.to_bytes(32, "big"))
        self.assertEqual(run(cie_core.device_signature(PySigner("raw"), msg)), raw)
        high = run(cie_core.device_signature(PySigner("der-high-s"), msg))
        self.assertEqual(len(high), 64)
        self.assertEqual(high[:32], raw[:32])
        # Kept as the keystore gave it (high S), not normalised.
        self.assertGreater(int.from_bytes(high[32:], "big"), P256_N // 2)
        with self.assertRaises(cie_core.FlowError.DeviceKey):
            run(cie_core.device_signature(PySigner("junk"), msg))
        with self.assertRaises(cie_core.FlowError.Cancelled):
            run(cie_core.device_signature(PySigner("cancel"), msg))

    def test_flow_error_messages(self):
        card = cie_core.FlowError.Card(error=CardError.TagLost())
        self.assertIn("avvicinala di nuovo", cie_core.flow_error_message_it(card))
        self.assertIn(
            "controlla la connessione",
            cie_core.flow_error_message_it(cie_core.FlowError.Network(reason="dns")),
        )


class RegistrationTest(unittest.TestCase):
    """Registration with the CIE (issue 12) through the bindings, against the real server
    binary (TLS, pinned key, SQLite) that trusts the virtual CIE's test CSCA: challenge, one
    CAN tap, the preview, the submit; the same card again is refused; then the new identity
    logs in by phone tap and approves a desktop QR login. Needs SERVER_BIN, CARD_CA and
    CSCA (scripts/bindings-test.sh sets them)."""

    CAN = "123456"
    CARD_PIN = "12345678"

    @classmethod
    def setUpClass(cls):
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from companion_server import Desktop, Server
        cls.Desktop = Desktop
        cls.server = Server(extra=["--csca", os.environ["CSCA"]])

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def client(self):
        return cie_core.CompanionClient([self.server.origin], [self.server.pin], MemoryStore())

    def register(self, client, can):
        async def go():
            session = await client.start_registration(self.server.origin, can)
            self.assertGreater(session.expires_at(), 0)
            # Nothing to send before a tap.
            with self.assertRaises(cie_core.FlowError.Busy):
                await session.submit()
            preview = await session.tap(NfcTransport(card_sim.SimCard.cie_extended()), None)
            return session, preview
        return run(go())

    def test_register_then_refused_then_log_in_and_approve(self):
        origin = self.server.origin
        client = self.client()

        # A wrong CAN stops at the chip, typed, with the Italian message; nothing sent.
        with self.assertRaises(cie_core.FlowError.Card) as cm:
            self.register(client, "654321")
        self.assertIsInstance(cm.exception.error, CardError.WrongCan)
        self.assertIn("CAN errato", cie_core.flow_error_message_it(cm.exception))

        session, preview = self.register(client, self.CAN)
        a = preview.attributes
        self.assertEqual((a.surname, a.given_names), ("TESTER", "MARIA"))
        self.assertEqual(a.codice_fiscale, "TSTTST80A01H501X")
        self.assertEqual(a.document_number, "CA00000AA")
        self.assertEqual(preview.nis, "000011112222")
        self.assertIsNotNone(preview.portrait)
        self.assertTrue(preview.sent_items_it and preview.sent_items_en)
        self.assertEqual(len(preview.sent_items_it), len(preview.sent_items_en))
        done = run(session.submit())
        self.assertEqual(done.identity.codice_fiscale, "TSTTST80A01H501X")
        self.assertEqual((done.identity.given_name, done.identity.surname), ("MARIA", "TESTER"))
        self.assertEqual(done.level, 3)
        self.assertFalse(done.linked_to_existing)

        # The same card again: refused by the server, typed, nothing changed.
        session, _ = self.register(self.client(), self.CAN)
        with self.assertRaises(cie_core.FlowError.Server) as cm:
            run(session.submit())
        self.assertEqual(cm.exception.code, cie_core.ErrorCode.ALREADY_REGISTERED)
        self.assertEqual(cm.exception.status, 409)
        self.assertIn("registrata", cm.exception.message_it)

        # The new identity logs in with the phone tap (the PIN now)...
        async def tap_login():
            login = await client.start_card_login(origin)
            return await login.tap(SimTransport(card_sim.SimCard.cie()), self.CARD_PIN, None)
        result = run(tap_login())
        self.assertEqual(result.identity.id, done.identity.id)
        self.assertEqual(result.level, 3)

        # ...and approves a desktop QR login: the desktop types the code and is that person.
        desktop = self.Desktop(self.server)
        status, created = desktop.call("POST", "/api/v1/desktop/rendezvous", {})
        self.assertEqual(status, 200, created)

        async def approve():
            s = await client.claim_desktop_qr(created["qr"], "Python phone", None)
            self.assertEqual(s.context().service, "Comune di Prova")
            return await s.approve_with_card(
                SimTransport(card_sim.SimCard.cie()), self.CARD_PIN[-4:], None)
        code = run(approve())
        status, body = desktop.call(
            "POST", f"/api/v1/desktop/rendezvous/{created['rid']}/code", {"code": code.code})
        self.assertEqual(status, 200, body)
        status, me = desktop.call("GET", "/api/v1/session")
        self.assertEqual(status, 200, me)
        self.assertEqual(me["identity"]["id"], done.identity.id, me)


class PyHttps(cie_core.HttpsTransport):
    """The platform's HTTPS stack as a shell writes it, in Python's ssl: no CA or name
    checks of its own, the core's `ServerKeyCheck` asked about the leaf certificate before
    a byte of the request is sent. `ask=False` is a careless shell that trusts anything."""

    def __init__(self, check, ask=True):
        self.check = check
        self.ask = ask
        self.sent = 0

    async def send(self, request):
        return await asyncio.to_thread(self._send, request)

    def _send(self, request):
        import http.client
        import socket
        import ssl
        import urllib.parse
        u = urllib.parse.urlsplit(request.url)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(
            u.hostname, u.port, context=ctx, timeout=request.timeout_ms / 1000)
        try:
            try:
                conn.connect()
            except ssl.SSLError as e:
                raise cie_core.HttpsFailure.Tls(str(e))
            if self.ask and not self.check.accepts(conn.sock.getpeercert(binary_form=True)):
                raise cie_core.HttpsFailure.ServerKeyRefused()
            self.sent += 1
            method = "GET" if request.method == cie_core.HttpsMethod.GET else "POST"
            conn.request(method, u.path + ("?" + u.query if u.query else ""), body=request.body,
                         headers={h.name: h.value for h in request.headers})
            answer = conn.getresponse()
            body = answer.read(request.max_body + 1)
            if len(body) > request.max_body:
                raise cie_core.HttpsFailure.TooLarge()
            return cie_core.HttpsAnswer(status=answer.status, date=answer.getheader("Date"), body=body)
        except socket.timeout:
            raise cie_core.HttpsFailure.Timeout()
        except OSError as e:
            raise cie_core.HttpsFailure.Offline(str(e))
        finally:
            conn.close()


class PlatformHttpsTest(unittest.TestCase):
    """The flows over a foreign HTTPS transport (CompanionClient.with_https_transport)
    against the real server: the shell moves bytes, the core decides whom to trust."""

    @classmethod
    def setUpClass(cls):
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from companion_server import Server
        cls.server = Server()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def login(self, client):
        async def go():
            login = await client.start_card_login(self.server.origin)
            return await login.tap(SimTransport(card_sim.SimCard.cie()), "12345678", None)
        return run(go())

    def test_card_login_through_the_platform_stack(self):
        check = cie_core.ServerKeyCheck([self.server.pin])
        https = PyHttps(check)
        client = cie_core.CompanionClient.with_https_transport(
            [self.server.origin], check, MemoryStore(), https)
        done = self.login(client)
        self.assertEqual(done.level, 3)
        self.assertEqual(done.identity.codice_fiscale, "TSTTST80A01H501X")
        self.assertEqual(https.sent, 2)  # the challenge, then the signed login
        # The server's Date reached the core's clock.
        self.assertIsNotNone(client.clock_offset())

    def test_another_key_or_a_careless_shell_gets_nowhere(self):
        stranger = "sha256/" + "A" * 43
        check = cie_core.ServerKeyCheck([stranger])
        https = PyHttps(check)
        client = cie_core.CompanionClient.with_https_transport(
            [self.server.origin], check, None, https)
        with self.assertRaises(cie_core.FlowError.UntrustedServer) as cm:
            run(client.start_card_login(self.server.origin))
        self.assertIn("non proseguire", cie_core.flow_error_message_it(cm.exception))
        self.assertEqual(https.sent, 0)  # stopped in the handshake, nothing sent

        check = cie_core.ServerKeyCheck([self.server.pin])
        careless = PyHttps(check, ask=False)
        client = cie_core.CompanionClient.with_https_transport(
            [self.server.origin], check, None, careless)
        with self.assertRaises(cie_core.FlowError.UntrustedServer):
            run(client.start_card_login(self.server.origin))

        with self.assertRaises(cie_core.FlowError.Internal):
            cie_core.ServerKeyCheck(["not-a-pin"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
