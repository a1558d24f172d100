// Kotlin/JVM binding test: the core's UniFFI surface driven from Kotlin.
//
// A `CardTransport` implemented in Kotlin (`suspend fun transmit`) forwards APDUs to the
// virtual card (`uniffi.card_sim.SimCard`, exported by the same library); `CardSession` runs
// the core's protocol code over it. Exceptions thrown by the Kotlin transport must come back
// out of the core as typed `CardException`s.
//
// Compiled by scripts/bindings-test.sh with kotlinc against the generated bindings (JVM
// variant, tests/bindings/uniffi-jvm.toml), JNA and kotlinx-coroutines; run with the JUnit
// platform console launcher and -Djna.library.path pointing at libcie_tests.so.

import it.ciecompanion.core.CardException
import it.ciecompanion.core.CardSession
import it.ciecompanion.core.CardTransport
import it.ciecompanion.core.CieLogin
import it.ciecompanion.core.DigestAlgorithm
import it.ciecompanion.core.LoginStep
import it.ciecompanion.core.ProgressListener
import it.ciecompanion.core.Protection
import it.ciecompanion.core.SecretStore
import it.ciecompanion.core.KnownApplication
import it.ciecompanion.core.TransportException
import it.ciecompanion.core.TransportInfo
import it.ciecompanion.core.TransportKind
import it.ciecompanion.core.cardErrorMessageIt
import it.ciecompanion.core.coreVersion
import it.ciecompanion.core.scanQrFrame
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withContext
import org.junit.jupiter.api.Test
import uniffi.card_sim.SimCard
import kotlin.test.assertContains
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertNotNull
import kotlin.test.assertTrue

private const val MAX_COMMAND = 261
private const val MAX_RESPONSE = 258
private val CIE_AID = hex("A00000000039")
private val TEST_DF = hex("5000")
private val TEST_EF = hex("5001")

private fun hex(s: String): ByteArray = ByteArray(s.length / 2) { s.substring(2 * it, 2 * it + 2).toInt(16).toByte() }

/** card_sim::cie::test_pattern. */
private fun testPattern(size: Int): ByteArray = ByteArray(size) { ((it % 251) xor (it / 251)).toByte() }

/** APDUs for a whole-EF read over a short link: SELECT (FCP), B0 x 256 up to 32767, B1 x 253. */
private fun expectedReadApdus(size: Int): Int {
    val b0 = minOf(size, 0x8000)
    val b1 = maxOf(0, size - 0x8000)
    return 1 + (b0 + 255) / 256 + (b1 + 252) / 253
}

/**
 * A Kotlin transport over the virtual card, shaped like the Android shell's IsoDep transport
 * (blocking transceive moved to Dispatchers.IO). [failAt] (1-based) throws [failWith] instead.
 */
class SimTransport(
    private val sim: SimCard,
    private val failAt: Int = 0,
    private val failWith: Throwable? = null,
    private val atr: ByteArray? = null,
) : CardTransport {
    @Volatile var sent = 0
        private set

    override suspend fun transmit(apdu: ByteArray): ByteArray {
        sent += 1
        if (sent == failAt) throw failWith!!
        if (apdu.size > MAX_COMMAND) throw TransportException.Io("command of ${apdu.size} bytes exceeds the link")
        val resp = withContext(Dispatchers.IO) { sim.transmit(apdu) }
        if (resp.size > MAX_RESPONSE) throw TransportException.Io("response of ${resp.size} bytes exceeds the link")
        return resp
    }

    override fun info() = TransportInfo(
        kind = TransportKind.VIRTUAL,
        extendedLength = false,
        maxCommandLen = MAX_COMMAND.toUInt(),
        maxResponseLen = MAX_RESPONSE.toUInt(),
        atr = atr,
    )
}

/** A version 3-M QR code of [QR_TEXT] (module rows, 1 = dark), made with segno 1.6.6. */
private const val QR_TEXT = "https://example.it/qr?stride=1"
private val QR_ROWS = listOf(
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
)

/** The code at [scale] px per module with a 4-module quiet zone, rows padded to [stride] bytes
 * with dark padding (the last row unpadded, as camera planes may end). */
private fun qrPlane(scale: Int, stride: Int): Pair<Int, ByteArray> {
    val side = (QR_ROWS.size + 8) * scale
    val out = ByteArray(stride * (side - 1) + side)
    for (y in 0 until side) {
        for (x in 0 until side) {
            val (mx, my) = x / scale - 4 to y / scale - 4
            val dark = my in QR_ROWS.indices && mx in QR_ROWS.indices && QR_ROWS[my][mx] == '1'
            out[y * stride + x] = if (dark) 0 else 255.toByte()
        }
    }
    return side to out
}

class CoreBindingsTest {
    @Test
    fun paddedQrFrameDecodes() {
        // Row stride wider than the width (CameraX / AVFoundation planes), padding dark.
        // The plane is lent to Rust, not copied: UniFFI takes a direct ByteBuffer.
        val (side, plane) = qrPlane(4, 4 * 37 + 20)
        val direct = java.nio.ByteBuffer.allocateDirect(plane.size).put(plane).flip()
        assertEquals(QR_TEXT, scanQrFrame(side.toUInt(), side.toUInt(), (side + 20).toUInt(), direct))
        // Read from the buffer's position, `remaining()` bytes.
        val offset = java.nio.ByteBuffer.allocateDirect(plane.size + 5)
        offset.position(5)
        offset.put(plane).position(5)
        assertEquals(QR_TEXT, scanQrFrame(side.toUInt(), side.toUInt(), (side + 20).toUInt(), offset.slice()))
        val blank = java.nio.ByteBuffer.allocateDirect(side * side).put(ByteArray(side * side) { 255.toByte() }).flip()
        assertEquals(null, scanQrFrame(side.toUInt(), side.toUInt(), side.toUInt(), blank))
        // A heap buffer has no native address: refused before Rust is called (the shell's
        // scanLumaFrame copies such buffers into a direct one).
        assertFailsWith<IllegalArgumentException> {
            scanQrFrame(side.toUInt(), side.toUInt(), (side + 20).toUInt(), java.nio.ByteBuffer.wrap(plane))
        }
    }

    @Test
    fun probeFindsCieApplications() = runBlocking {
        SimCard.cie().use { sim ->
            val transport = SimTransport(sim, atr = hex("3B8F8001"))
            CardSession(transport).use { session ->
                assertContentEquals(hex("3B8F8001"), session.transportInfo().atr)
                val probe = session.probe()
                val present = probe.applications.associate { it.application to it.present }
                assertEquals(true, present[KnownApplication.CIE_IAS])
                assertEquals(true, present[KnownApplication.CIE_DF])
                assertEquals(true, present[KnownApplication.ICAO_EMRTD])
                assertEquals(false, present[KnownApplication.CNS])
                assertEquals(0x6A82.toUShort(), probe.applications.single { it.application == KnownApplication.CNS }.sw)
                val efAtr = assertNotNull(probe.efAtr)
                assertTrue(String(efAtr, Charsets.ISO_8859_1).contains("SYNTHETIC"))
                assertEquals(sim.apduCount().toInt(), transport.sent)
                assertEquals(7, transport.sent) // 4 SELECT AID, SELECT MF, SELECT EF.ATR, READ
            }
        }
    }

    @Test
    fun selectAndReadSmallFile() = runBlocking {
        SimCard.cie().use { sim ->
            CardSession(SimTransport(sim)).use { session ->
                session.selectApplication(CIE_AID)
                assertEquals("000011112222", String(session.readFile(hex("1001")), Charsets.US_ASCII))
                assertFailsWith<CardException.NotFound> { session.selectApplication(hex("A0000000FFFF")) }
                assertFailsWith<CardException.NotSupported> { session.readFile(hex("100102")) }
            }
        }
    }

    private suspend fun readLarge(size: Int, failAt: Int = 0, failWith: Throwable? = null): Triple<SimCard, SimTransport, ByteArray> {
        val sim = SimCard.withLargeFile(size.toUInt())
        // CardSession cannot SELECT a DF by FID and DF 5000 has no AID: select it on the raw card.
        assertContentEquals(hex("9000"), sim.transmit(hex("00A4000C02") + TEST_DF))
        val transport = SimTransport(sim, failAt, failWith)
        val data = CardSession(transport).use { it.readFile(TEST_EF) }
        return Triple(sim, transport, data)
    }

    @Test
    fun largeFileContentAndApduCount() = runBlocking {
        for (size in listOf(1, 256, 257, 32768, 40000, 65000)) {
            val (sim, transport, data) = readLarge(size)
            sim.use {
                assertContentEquals(testPattern(size), data, "size $size")
                assertEquals(expectedReadApdus(size), transport.sent, "APDUs for size $size")
                assertEquals(transport.sent + 1, sim.apduCount().toInt())
            }
        }
    }

    @Test
    fun tagLostDuringLargeRead() = runBlocking {
        val total = expectedReadApdus(40000)
        for (n in listOf(1, 2, 100, 129, 130, total)) {
            assertFailsWith<CardException.TagLost>("n=$n") { readLarge(40000, n, TransportException.TagLost()) }
        }
    }

    private suspend fun probeFailing(n: Int, e: Throwable) {
        SimCard.cie().use { sim ->
            val transport = SimTransport(sim, n, e)
            try {
                CardSession(transport).use { it.probe() }
            } finally {
                assertEquals(n, transport.sent, "no retry after a failure")
                assertEquals(n - 1, sim.apduCount().toInt())
            }
        }
    }

    @Test
    fun tagLostAtEveryProbeApdu() = runBlocking {
        for (n in 1..7) {
            val e = assertFailsWith<CardException.TagLost>("n=$n") { probeFailing(n, TransportException.TagLost()) }
            assertContains(cardErrorMessageIt(e), "avvicinala di nuovo")
        }
    }

    @Test
    fun timeoutAndIo() = runBlocking {
        assertFailsWith<CardException.Timeout> { probeFailing(3, TransportException.Timeout()) }
        val e = assertFailsWith<CardException.Reader> { probeFailing(2, TransportException.Io("USB reader unplugged")) }
        assertEquals("USB reader unplugged", e.reason)
    }

    @Test
    fun unexpectedKotlinExceptionIsAReaderError() = runBlocking {
        for (n in listOf(1, 5)) {
            val e = assertFailsWith<CardException.Reader> { probeFailing(n, IllegalStateException("shell bug 42")) }
            assertContains(e.reason, "shell bug 42")
        }
    }

    @Test
    fun italianMessagesAndVersion() {
        assertEquals("PIN errato: restano 2 tentativi. Ricontrolla il PIN e riprova.", cardErrorMessageIt(CardException.WrongPin(2u)))
        assertContains(cardErrorMessageIt(CardException.Refused(0x6985u, "x")), "6985")
        assertTrue(Regex("""^\d+\.\d+\.\d+""").containsMatchIn(coreVersion()))
        assertFalse(coreVersion().isEmpty())
    }
}

/** The platform keystore, in memory (the Android shell uses Keystore + BiometricPrompt). */
class MemoryStore : SecretStore {
    val values = HashMap<String, Pair<ByteArray, Protection>>()
    override fun load(name: String): ByteArray? = values[name]?.first
    override fun save(name: String, value: ByteArray, protection: Protection) {
        values[name] = value to protection
    }
    override fun remove(name: String) {
        values.remove(name)
    }
}

class Steps : ProgressListener {
    val seen = ArrayList<LoginStep>()
    val bytes = ArrayList<Pair<UInt, UInt>>()
    override fun onStep(step: LoginStep, done: UInt, total: UInt) {
        seen.add(step)
    }
    override fun onBytes(step: LoginStep, done: UInt, total: UInt) {
        bytes.add(Pair(done, total))
    }
}

private val CHALLENGE = "nonce fetched from the server before the tap".toByteArray()

class LoginBindingsTest {
    @Test
    fun pairWithFullPinThenLogInWithLastFour(): Unit = runBlocking {
        val store = MemoryStore()
        val steps = Steps()
        val first = CieLogin(CHALLENGE, DigestAlgorithm.SHA256, "12345678", store, true)
        val result = first.tap(SimTransport(SimCard.cie()), steps)
        assertEquals("000011112222", result.nis)
        assertEquals("TSTTST80A01H501X", result.codiceFiscale)
        assertEquals(256, result.signature.size) // checked against the certificate in Rust
        assertTrue(result.pairedNow)
        assertEquals(LoginStep.DONE, steps.seen.last())
        // "lettura certificato NN%": several reports, the last one the whole certificate.
        assertTrue(steps.bytes.size > 2)
        assertEquals(steps.bytes.last().second, steps.bytes.last().first)
        assertTrue(LoginStep.CHECKING_CARD in steps.seen)
        val (half, protection) = store.values.getValue("cie/000011112222/pin-first-half")
        assertContentEquals("1234".toByteArray(), half)
        assertEquals(Protection.USER_PRESENCE, protection)

        val again = CieLogin(CHALLENGE, DigestAlgorithm.SHA256, "5678", store, false)
        val second = again.tap(SimTransport(SimCard.cie()), null)
        assertTrue(second.certificateFromCache)
        assertContentEquals(result.certificateDer, second.certificateDer)
    }

    @Test
    fun wrongPinReportsTriesLeft(): Unit = runBlocking {
        val login = CieLogin(CHALLENGE, DigestAlgorithm.SHA256, "11112222", null, false)
        val e = assertFailsWith<CardException.WrongPin> { login.tap(SimTransport(SimCard.cie()), null) }
        assertEquals(2.toUByte(), e.remaining)
        assertEquals("PIN errato: restano 2 tentativi. Ricontrolla il PIN e riprova.", cardErrorMessageIt(e))
        assertFailsWith<CardException.InvalidPin> { CieLogin(CHALLENGE, DigestAlgorithm.SHA256, "12a45678", null, false) }
    }

    @Test
    fun tagLostMidLoginResumesOnTheNextTap(): Unit = runBlocking {
        val login = CieLogin(CHALLENGE, DigestAlgorithm.SHA256, "12345678", null, false)
        assertFailsWith<CardException.TagLost> {
            login.tap(SimTransport(SimCard.cie(), failAt = 30, failWith = TransportException.TagLost()), null)
        }
        val result = login.tap(SimTransport(SimCard.cie()), null)
        assertEquals(256, result.signature.size)
    }
}
