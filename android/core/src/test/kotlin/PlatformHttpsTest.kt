// The app's requests through HttpsURLConnection (PlatformHttps) against the real server:
// the card login works over it, and the core's key check is what its TLS trusts.

import it.ciecompanion.android.card.TapState
import it.ciecompanion.android.login.LoggedIn
import it.ciecompanion.android.login.cardLogin
import it.ciecompanion.android.net.PlatformHttps
import it.ciecompanion.android.nfc.IsoDepTransport
import it.ciecompanion.core.CompanionClient
import it.ciecompanion.core.FlowException
import it.ciecompanion.core.Language
import it.ciecompanion.core.ServerKeyCheck
import it.ciecompanion.core.flowErrorMessage
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import uniffi.card_sim.SimCard
import kotlin.test.assertContains
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertIs
import kotlin.test.assertNotNull

@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class PlatformHttpsTest {
    private lateinit var server: ServerProcess

    @BeforeAll
    fun start() {
        server = ServerProcess()
    }

    @AfterAll
    fun stop() = server.close()

    private fun client(pin: String): CompanionClient {
        val check = ServerKeyCheck(listOf(pin))
        return CompanionClient.withHttpsTransport(listOf(server.origin), check, MemoryStore(), PlatformHttps(check))
    }

    @Test
    fun theCardLoginGoesThroughHttpsUrlConnection(): Unit = runBlocking {
        val client = client(server.pin)
        val m = cardLogin(client.startCardLogin(server.origin), Language.IT)
        m.submitPin("12345678")
        m.onCard(IsoDepTransport.of(tagOf(SimCard.cieExtended()))!!)
        val done = assertIs<LoggedIn>(assertIs<TapState.Done<*>>(m.state.value, "${m.state.value}").value)
        assertEquals("TSTTST80A01H501X", done.codiceFiscale)
        assertEquals(3, done.level)
        // The server's Date header reached the core.
        assertNotNull(client.clockOffset())
    }

    @Test
    fun anotherServerKeyIsRefusedInTheHandshake(): Unit = runBlocking {
        val client = client("sha256/" + "A".repeat(43))
        val e = assertFailsWith<FlowException.UntrustedServer> { client.startCardLogin(server.origin) }
        assertContains(flowErrorMessage(e, Language.IT), "non proseguire")
    }
}
