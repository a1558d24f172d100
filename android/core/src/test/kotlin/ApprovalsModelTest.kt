// Enrol this phone with the card, then the approvals inbox against the real server binary:
// a computer asks for an app login, the phone lists it, the user picks the computer's number
// and the computer logs in; a wrong number cancels the request (one guess only).
import it.ciecompanion.android.approvals.ApprovalsModel
import it.ciecompanion.android.approvals.InboxState
import it.ciecompanion.android.approvals.deviceEnrollment
import it.ciecompanion.android.card.TapState
import it.ciecompanion.android.nfc.IsoDepTransport
import it.ciecompanion.core.CompanionClient
import it.ciecompanion.core.DeviceSigner
import it.ciecompanion.core.EnrolledDevice
import it.ciecompanion.core.Language
import it.ciecompanion.core.PendingApprovalInfo
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import uniffi.card_sim.SimCard
import java.math.BigInteger
import java.security.KeyPairGenerator
import java.security.Signature
import java.security.interfaces.ECPublicKey
import java.security.spec.ECGenParameterSpec
import kotlin.test.assertContains
import kotlin.test.assertEquals
import kotlin.test.assertIs
import kotlin.test.assertTrue

/** A P-256 key in the JVM standing in for the Android Keystore: signs DER, as the keystore does. */
class JvmSigner : DeviceSigner {
    private val pair = KeyPairGenerator.getInstance("EC").apply { initialize(ECGenParameterSpec("secp256r1")) }.generateKeyPair()

    override fun publicKey(): ByteArray {
        val w = (pair.public as ECPublicKey).w
        return byteArrayOf(4) + fixed32(w.affineX) + fixed32(w.affineY)
    }

    override suspend fun sign(message: ByteArray): ByteArray =
        Signature.getInstance("SHA256withECDSA").run {
            initSign(pair.private)
            update(message)
            sign()
        }

    private fun fixed32(v: BigInteger): ByteArray = v.toByteArray().takeLast(32).toByteArray().let { ByteArray(32 - it.size) + it }
}

/** An integer field of a flat JSON object (test-only). */
fun jsonInt(body: String, name: String): Int =
    Regex("\"$name\"\\s*:\\s*(\\d+)").find(body)?.groupValues?.get(1)?.toInt() ?: error("no $name in $body")

@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ApprovalsModelTest {
    private lateinit var server: ServerProcess
    private lateinit var client: CompanionClient
    private lateinit var device: EnrolledDevice
    private val signer = JvmSigner()

    @BeforeAll
    fun start(): Unit = runBlocking {
        server = ServerProcess()
        client = CompanionClient(listOf(server.origin), listOf(server.pin), MemoryStore())
        val tap = deviceEnrollment(client.startDeviceEnrollment(server.origin, signer, "Kotlin phone"), Language.IT)
        tap.submitPin("12345678")
        tap.onCard(IsoDepTransport.of(tagOf(SimCard.cieExtended()))!!)
        device = assertIs<EnrolledDevice>(assertIs<TapState.Done<*>>(tap.state.value, "${tap.state.value}").value)
        assertEquals("TSTTST80A01H501X", device.identity.codiceFiscale)
    }

    @AfterAll
    fun stop() = server.close()

    /** The computer asks for an app login: (browser, request id, the number it shows). */
    private fun ask(): Triple<DesktopBrowser, String, Int> {
        val browser = DesktopBrowser(server.origin)
        val (status, body) = browser.call("POST", "/api/v1/approvals", "{\"codice_fiscale\":\"TSTTST80A01H501X\"}")
        assertEquals(200, status, body)
        return Triple(browser, jsonField(body, "request_id"), jsonInt(body, "number"))
    }

    /** The phone opens its inbox: the model and the request [id]. */
    private suspend fun inbox(id: String): Pair<ApprovalsModel, PendingApprovalInfo> {
        val m = ApprovalsModel(client, device, signer, Language.EN)
        m.refresh()
        return m to assertIs<InboxState.Items>(m.state.value, "${m.state.value}").pending.single { it.requestId == id }
    }

    @Test
    fun pickTheComputersNumberAndItLogsIn(): Unit = runBlocking {
        val (browser, id, number) = ask()
        val (m, item) = inbox(id)
        assertEquals(3, item.choices.size)
        assertContains(item.choices.map { it.toInt() and 0xFF }, number)
        m.approve(item, number.toUByte())
        assertEquals(InboxState.Approved, m.state.value)
        val (status, body) = browser.call("GET", "/api/v1/approvals/$id")
        assertEquals(200, status, body)
        assertEquals("consumed", jsonField(body, "state"))
        val (s2, me) = browser.call("GET", "/api/v1/session")
        assertEquals(200, s2, me)
        assertContains(me, "TSTTST80A01H501X")
    }

    @Test
    fun aWrongNumberCancelsTheRequest(): Unit = runBlocking {
        val (browser, id, number) = ask()
        val (m, item) = inbox(id)
        val wrong = item.choices.map { it.toInt() and 0xFF }.first { it != number }
        m.approve(item, wrong.toUByte())
        // The core says a wrong number cancels the request; the message is the server's, in English.
        val cancelled = assertIs<InboxState.WrongNumber>(m.state.value, "${m.state.value}")
        assertTrue(cancelled.message.isNotBlank() && !cancelled.message.contains("numero"), cancelled.message)
        val (_, body) = browser.call("GET", "/api/v1/approvals/$id")
        assertEquals("aborted", jsonField(body, "state"))
        // Nothing left to approve.
        m.refresh()
        assertEquals(emptyList(), assertIs<InboxState.Items>(m.state.value).pending.filter { it.requestId == id })
    }
}
