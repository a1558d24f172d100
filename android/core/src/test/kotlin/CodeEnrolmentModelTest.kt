// "Enrol with a code" against the real server binary: a computer logged in (here through the
// desktop QR and the virtual CIE) shows a one-time enrolment code as a QR; a camera frame of
// it enrols the phone's key, whose approvals inbox then opens; the spent code is refused
// with the server's message and the same QR in view is not sent again. Also the OTP
// screen's viewfinder: frames without a code and refused links keep it open.
import it.ciecompanion.android.approvals.ApprovalsModel
import it.ciecompanion.android.approvals.InboxState
import it.ciecompanion.android.card.TapState
import it.ciecompanion.android.desktop.DesktopQrModel
import it.ciecompanion.android.desktop.DesktopQrState
import it.ciecompanion.android.enrol.CodeEnrolState
import it.ciecompanion.android.enrol.CodeEnrolmentModel
import it.ciecompanion.android.nfc.IsoDepTransport
import it.ciecompanion.android.otp.OtpModel
import it.ciecompanion.android.qr.directPlane
import it.ciecompanion.core.CompanionClient
import it.ciecompanion.core.Countdown
import it.ciecompanion.core.DeviceSigner
import it.ciecompanion.core.Language
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import uniffi.card_sim.SimCard
import kotlin.test.assertContains
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertIs
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue

/** Counts the enrolment attempts (each reads the public key once) of a [JvmSigner]. */
class CountingSigner(private val inner: JvmSigner = JvmSigner()) : DeviceSigner by inner {
    var keyReads = 0

    override fun publicKey(): ByteArray {
        keyReads++
        return inner.publicKey()
    }
}

@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class CodeEnrolmentModelTest {
    private lateinit var server: ServerProcess
    private lateinit var client: CompanionClient

    @BeforeAll
    fun start() {
        server = ServerProcess()
        client = CompanionClient(listOf(server.origin), listOf(server.pin), MemoryStore())
    }

    @AfterAll
    fun stop() = server.close()

    /** A computer logged in to the page (desktop QR approved with the card, code typed). */
    private suspend fun loggedInComputer(): DesktopBrowser {
        val browser = DesktopBrowser(server.origin)
        val (status, body) = browser.call("POST", "/api/v1/desktop/rendezvous", "{}")
        assertEquals(200, status, body)
        val login = DesktopQrModel(client, "Kotlin phone", null, Language.IT)
        login.onText(jsonField(body, "qr"))
        val tap = assertNotNull(login.approveWithCard(), "${login.state.value}")
        tap.submitPin("12345678")
        tap.onCard(IsoDepTransport.of(tagOf(SimCard.cieExtended()))!!)
        val code = assertIs<DesktopQrState.Code>(login.state.value, "${login.state.value}").code
        // The code's countdown runs on the server's clock and starts within its lifetime;
        // a deadline already past is expired.
        val countdown = client.countdown(code.expiresAt)
        assertFalse(countdown.expired)
        assertTrue(countdown.secondsLeft in 1uL..600uL, "$countdown")
        assertEquals(Countdown(0uL, true), client.countdown(code.expiresAt - countdown.secondsLeft))
        val rid = jsonField(body, "rid")
        val (s2, b2) = browser.call("POST", "/api/v1/desktop/rendezvous/$rid/code", "{\"code\":\"${code.code}\"}")
        assertEquals(200, s2, b2)
        return browser
    }

    @Test
    fun aFrameOfThePagesCodeEnrolsThePhoneAndTheSpentCodeIsRefused(): Unit = runBlocking {
        val browser = loggedInComputer()
        val (status, body) = browser.call("POST", "/api/v1/abroad/enrol")
        assertEquals(200, status, body)
        val frame = svgFrame(body)
        val signer = JvmSigner()
        val m = CodeEnrolmentModel(client, server.origin, signer, "Kotlin phone", Language.IT)
        // A frame without a code: still waiting, nothing sent.
        m.onFrame(64u, 48u, 80u, directPlane(ByteArray(80 * 48) { 0x80.toByte() }))
        assertEquals(CodeEnrolState.WaitingForCode(), m.state.value)
        m.onFrame(frame.width, frame.height, frame.rowStride, frame.luma)
        val device = assertIs<CodeEnrolState.Done>(m.state.value, "${m.state.value}").device
        assertEquals("TSTTST80A01H501X", device.identity.codiceFiscale)
        assertFalse(m.wantsFrames)
        // The key is enrolled: the server answers its signed inbox request.
        val inbox = ApprovalsModel(client, device, signer, Language.IT)
        inbox.refresh()
        assertIs<InboxState.Items>(inbox.state.value, "${inbox.state.value}")

        // A service that asks level 3 (the card): the review offers no key approval, and the
        // key used anyway is refused with what to do. No level asked: the key approves.
        val (s3, strict) = DesktopBrowser(server.origin).call("POST", "/api/v1/desktop/rendezvous", "{\"level\":3}")
        assertEquals(200, s3, strict)
        val l3 = DesktopQrModel(client, "Kotlin phone", device.deviceId, Language.IT)
        l3.onText(jsonField(strict, "qr"))
        val review = assertIs<DesktopQrState.Review>(l3.state.value, "${l3.state.value}")
        assertEquals(3.toUByte(), review.context.level)
        assertFalse(review.deviceAllowed)
        l3.approveWithDevice(device.deviceId, signer)
        assertContains(assertIs<DesktopQrState.Failed>(l3.state.value, "${l3.state.value}").message, "richiede la CIE")
        val (s2, open) = DesktopBrowser(server.origin).call("POST", "/api/v1/desktop/rendezvous", "{}")
        assertEquals(200, s2, open)
        val l2 = DesktopQrModel(client, "Kotlin phone", device.deviceId, Language.IT)
        l2.onText(jsonField(open, "qr"))
        assertTrue(assertIs<DesktopQrState.Review>(l2.state.value, "${l2.state.value}").deviceAllowed)
        l2.approveWithDevice(device.deviceId, signer)
        assertIs<DesktopQrState.Code>(l2.state.value, "${l2.state.value}")

        // The same code on another phone: refused (single use), the server's message shown,
        // and the QR still in view is not sent again.
        val otherKey = CountingSigner()
        val other = CodeEnrolmentModel(client, server.origin, otherKey, "Other phone", Language.IT)
        other.onFrame(frame.width, frame.height, frame.rowStride, frame.luma)
        val refused = assertIs<CodeEnrolState.WaitingForCode>(other.state.value, "${other.state.value}")
        assertNotNull(refused.message)
        assertEquals(1, otherKey.keyReads)
        other.onFrame(frame.width, frame.height, frame.rowStride, frame.luma)
        assertEquals(refused, other.state.value)
        assertEquals(1, otherKey.keyReads)
        // Typed (with stray spaces, which the core trims), it is tried again: still refused.
        other.submit(" " + jsonField(body, "code") + " ")
        assertEquals(2, otherKey.keyReads)
        assertIs<CodeEnrolState.WaitingForCode>(other.state.value)
    }

    @Test
    fun aTypedCodeThatWasNeverIssuedIsRefusedWithWhatToDo(): Unit = runBlocking {
        val m = CodeEnrolmentModel(client, server.origin, JvmSigner(), "Kotlin phone", Language.IT)
        m.submit("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        val s = assertIs<CodeEnrolState.WaitingForCode>(m.state.value, "${m.state.value}")
        assertTrue(s.message!!.contains("nuovo"), s.message)
        // In English, the server's English words.
        val en = CodeEnrolmentModel(client, server.origin, JvmSigner(), "Kotlin phone", Language.EN)
        en.submit("BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        val e = assertIs<CodeEnrolState.WaitingForCode>(en.state.value, "${en.state.value}")
        assertTrue(e.message!!.contains("ask the page for a new one"), e.message)
        assertTrue(m.wantsFrames)
    }

    @Test
    fun theOtpViewfinderStaysOpenOnFramesWithoutACodeAndClosesOnAnAddedLink(): Unit = runBlocking {
        val m = OtpModel(MemoryStore(), Language.IT) { 59L }
        assertFalse(m.wantsFrames)
        m.startScan()
        m.onFrame(64u, 48u, 80u, directPlane(ByteArray(80 * 48) { 0x80.toByte() }))
        assertTrue(m.state.value.scanning)
        assertNull(m.state.value.message)
        // The page's login QR is no otpauth link: refused with the core's message, still open.
        val (_, body) = DesktopBrowser(server.origin).call("POST", "/api/v1/desktop/rendezvous", "{}")
        val frame = svgFrame(body)
        m.onFrame(frame.width, frame.height, frame.rowStride, frame.luma)
        assertTrue(m.state.value.scanning)
        assertNotNull(m.state.value.message)
        assertEquals(emptyList(), m.state.value.rows)
        // A pasted link while it is open: added, the viewfinder closes, the message clears.
        assertTrue(m.add("otpauth://totp/INPS:mario.rossi?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&digits=8&issuer=INPS"))
        assertFalse(m.state.value.scanning)
        assertNull(m.state.value.message)
        assertEquals("94287082", m.state.value.rows.single().code)
    }
}
