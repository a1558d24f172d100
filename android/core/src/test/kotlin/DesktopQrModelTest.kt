// The desktop QR screens' model against the real server binary: a computer opens a login,
// the phone reads its QR, reviews who asks, approves with the virtual CIE behind the IsoDep
// stub (or denies), and the computer ends logged in (or told it was denied).
import it.ciecompanion.android.card.TapState
import it.ciecompanion.android.desktop.DesktopQrModel
import it.ciecompanion.android.desktop.DesktopQrState
import it.ciecompanion.android.nfc.IsoDepTransport
import it.ciecompanion.android.qr.directPlane
import it.ciecompanion.android.qr.scanLumaFrame
import it.ciecompanion.core.CompanionClient
import it.ciecompanion.core.Language
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import uniffi.card_sim.SimCard
import kotlin.test.assertContains
import kotlin.test.assertEquals
import kotlin.test.assertIs
import kotlin.test.assertNotNull

@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class DesktopQrModelTest {
    private lateinit var server: ServerProcess

    @BeforeAll
    fun start() {
        server = ServerProcess("--service-name", "Comune di Prova")
    }

    @AfterAll
    fun stop() = server.close()

    private fun model() = DesktopQrModel(
        CompanionClient(listOf(server.origin), listOf(server.pin), MemoryStore()),
        "Kotlin phone",
        null,
        Language.IT,
    )

    /** The computer opens a login: (browser, rid, QR text). */
    private fun openLogin(): Triple<DesktopBrowser, String, String> {
        val browser = DesktopBrowser(server.origin)
        val (status, body) = browser.call("POST", "/api/v1/desktop/rendezvous", "{}")
        assertEquals(200, status, body)
        return Triple(browser, jsonField(body, "rid"), jsonField(body, "qr"))
    }

    @Test
    fun framesWithoutACodeAndForeignCodesKeepScanning(): Unit = runBlocking {
        val m = model()
        // A grey 64x48 plane with a row stride of 80, as a camera hands it over.
        m.onFrame(64u, 48u, 80u, directPlane(ByteArray(80 * 48) { 0x80.toByte() }))
        assertEquals(DesktopQrState.Scanning(), m.state.value)
        m.onText("https://example.com/not-a-login")
        val hint = assertIs<DesktopQrState.Scanning>(m.state.value)
        assertContains(assertNotNull(hint.hint), "non è un codice di accesso")
        // The camera stays on: the computer's QR, scanned next, is claimed.
        m.onText(openLogin().third)
        assertIs<DesktopQrState.Review>(m.state.value, "${m.state.value}")
    }

    @Test
    fun aCameraFrameOfTheComputersQrWithPaddedRowsIsScannedAndClaimed(): Unit = runBlocking {
        val browser = DesktopBrowser(server.origin)
        val (status, body) = browser.call("POST", "/api/v1/desktop/rendezvous", "{}")
        assertEquals(200, status, body)
        val frame = svgFrame(body)
        val m = model()
        m.onFrame(frame.width, frame.height, frame.rowStride, frame.luma)
        val review = assertIs<DesktopQrState.Review>(m.state.value, "${m.state.value}")
        assertEquals("Comune di Prova", review.context.service)
    }

    @Test
    fun planesReadPartWayOrOnTheHeapAreScannedToo(): Unit = runBlocking {
        // The core reads a direct buffer from its base address: a plane whose position is not
        // 0 must be sliced, and a heap buffer (a decoded still) copied, or the scan reads the
        // wrong bytes / UniFFI refuses it. Each shape of the same frame must give the same code.
        val (_, body) = DesktopBrowser(server.origin).call("POST", "/api/v1/desktop/rendezvous", "{}")
        val frame = svgFrame(body)
        val bytes = ByteArray(frame.luma.remaining()).also { frame.luma.duplicate().get(it) }
        val offset = java.nio.ByteBuffer.allocateDirect(bytes.size + 7)
        offset.position(7)
        offset.put(bytes).position(7)
        for (plane in listOf(frame.luma, offset, java.nio.ByteBuffer.wrap(bytes), java.nio.ByteBuffer.wrap(ByteArray(3) + bytes, 3, bytes.size))) {
            val text = scanLumaFrame(frame.width, frame.height, frame.rowStride, plane)
            assertEquals(jsonField(body, "qr"), text, "$plane")
        }
        // A buffer shorter than the frame it claims to be: no code, no crash.
        assertEquals(null, scanLumaFrame(frame.width, frame.height, frame.rowStride, directPlane(bytes.copyOf(100))))
    }

    @Test
    fun approveWithTheCardAndTheComputerLogsIn(): Unit = runBlocking {
        val (browser, rid, qr) = openLogin()
        val m = model()
        m.onText(qr)
        val review = assertIs<DesktopQrState.Review>(m.state.value, "${m.state.value}")
        assertEquals("Comune di Prova", review.context.service)
        assertEquals("Linux", review.context.os)
        val tap = assertNotNull(m.approveWithCard())
        tap.submitPin("12345678")
        tap.onCard(IsoDepTransport.of(tagOf(SimCard.cieExtended()))!!)
        assertIs<TapState.Done<*>>(tap.state.value, "${tap.state.value}")
        val code = assertIs<DesktopQrState.Code>(m.state.value, "${m.state.value}").code
        assertEquals(4, code.code.length)

        val (status, body) = browser.call("POST", "/api/v1/desktop/rendezvous/$rid/code", "{\"code\":\"${code.code}\"}")
        assertEquals(200, status, body)
        val (s2, me) = browser.call("GET", "/api/v1/session")
        assertEquals(200, s2, me)
        assertContains(me, "TSTTST80A01H501X")
    }

    @Test
    fun denyAndReport(): Unit = runBlocking {
        val (browser, rid, qr) = openLogin()
        val m = model()
        m.onText(qr)
        assertIs<DesktopQrState.Review>(m.state.value, "${m.state.value}")
        m.deny(report = true)
        assertEquals(DesktopQrState.Denied, m.state.value)
        val (status, body) = browser.call("GET", "/api/v1/desktop/rendezvous/$rid")
        assertEquals(200, status, body)
        assertEquals("denied", jsonField(body, "state"))
        // The same QR again: the login is over.
        val again = model()
        again.onText(qr)
        assertIs<DesktopQrState.Failed>(again.state.value, "${again.state.value}")
    }
}
