// Registration with the CIE (issue 12) through the Kotlin bindings, against the real
// `companion-server` binary (TLS with a pinned key, SQLite in a temporary folder, the virtual
// CIE's test CA and CSCA trusted): challenge, one CAN tap, the preview, the submit; the same
// card again is refused; then the new identity logs in by phone tap.
//
// Needs SERVER_BIN, CARD_CA and CSCA in the environment (scripts/bindings-test.sh sets them).

import it.ciecompanion.core.CardException
import it.ciecompanion.core.CompanionClient
import it.ciecompanion.core.ErrorCode
import it.ciecompanion.core.FlowException
import it.ciecompanion.core.flowErrorMessageIt
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import uniffi.card_sim.SimCard
import kotlin.test.assertContains
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertIs
import kotlin.test.assertNotNull
import kotlin.test.assertTrue

@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class RegistrationBindingsTest {
    private lateinit var server: ServerProcess

    @BeforeAll
    fun start() {
        server = ServerProcess("--csca", System.getenv("CSCA") ?: error("CSCA is not set"))
    }

    @AfterAll
    fun stop() = server.close()

    private fun client() = CompanionClient(listOf(server.origin), listOf(server.pin), MemoryStore())

    @Test
    fun registerThenRefusedThenLogIn(): Unit = runBlocking {
        val client = client()

        // A wrong CAN: typed, with the Italian message; nothing sent.
        val wrong = client.startRegistration(server.origin, "654321")
        val e = assertFailsWith<FlowException.Card> { wrong.tap(NfcSimTransport(SimCard.cieExtended()), null) }
        assertIs<CardException.WrongCan>(e.error)
        assertContains(flowErrorMessageIt(e), "CAN errato")

        val session = client.startRegistration(server.origin, "123456")
        assertTrue(session.expiresAt() > 0uL)
        // Nothing to send before a tap.
        assertFailsWith<FlowException.Busy> { session.submit() }
        val preview = session.tap(NfcSimTransport(SimCard.cieExtended()), null)
        assertEquals("TESTER", preview.attributes.surname)
        assertEquals("MARIA", preview.attributes.givenNames)
        assertEquals("TSTTST80A01H501X", preview.attributes.codiceFiscale)
        assertEquals("CA00000AA", preview.attributes.documentNumber)
        assertEquals("000011112222", preview.nis)
        assertNotNull(preview.portrait)
        assertTrue(preview.sentItemsIt.isNotEmpty())
        assertEquals(preview.sentItemsIt.size, preview.sentItemsEn.size)
        val done = session.submit()
        assertEquals("TSTTST80A01H501X", done.identity.codiceFiscale)
        assertEquals(3.toUByte(), done.level)
        assertFalse(done.linkedToExisting)

        // The same card again: the server refuses it.
        val again = client().startRegistration(server.origin, "123456")
        again.tap(NfcSimTransport(SimCard.cieExtended()), null)
        val refused = assertFailsWith<FlowException.Server> { again.submit() }
        assertEquals(ErrorCode.ALREADY_REGISTERED, refused.code)
        assertEquals(409.toUShort(), refused.status)

        // The new identity logs in by phone tap with the PIN.
        val login = client.startCardLogin(server.origin)
        val result = login.tap(SimTransport(SimCard.cie()), "12345678", null)
        assertEquals(done.identity.id, result.identity.id)
        assertEquals(3.toUByte(), result.level)
    }
}
