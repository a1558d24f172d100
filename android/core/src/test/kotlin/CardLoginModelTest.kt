// The login screen's model against the real server binary (TLS, pinned key) and the virtual
// CIE behind the IsoDep stub, through the real core library: what the screen shows after a
// wrong PIN, a lost tag, the last-try warning and a login.

import it.ciecompanion.android.card.CardTap
import it.ciecompanion.android.card.TapState
import it.ciecompanion.android.login.LoggedIn
import it.ciecompanion.android.login.cardLogin
import it.ciecompanion.android.nfc.IsoDepTransport
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

@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class CardLoginModelTest {
    private lateinit var server: ServerProcess

    @BeforeAll
    fun start() {
        server = ServerProcess()
    }

    @AfterAll
    fun stop() = server.close()

    private fun model(language: Language = Language.IT): CardTap<LoggedIn> = runBlocking {
        val client = CompanionClient(listOf(server.origin), listOf(server.pin), MemoryStore())
        cardLogin(client.startCardLogin(server.origin), language)
    }

    @Test
    fun aWrongPinSaysTheTriesLeftThenTheRightOneLogsIn(): Unit = runBlocking {
        val sim = SimCard.cieExtended()
        val m = model()
        assertIs<TapState.EnterPin>(m.state.value, "${m.state.value}")
        m.submitPin("11112222")
        assertEquals(TapState.WaitForCard, m.state.value)
        m.onCard(IsoDepTransport.of(tagOf(sim))!!)
        val wrong = assertIs<TapState.EnterPin>(m.state.value, "${m.state.value}")
        assertEquals(2, wrong.triesLeft)
        assertEquals("PIN errato: restano 2 tentativi. Ricontrolla il PIN e riprova.", wrong.message)
        // A tap without a new PIN does nothing.
        m.onCard(IsoDepTransport.of(tagOf(sim))!!)
        assertIs<TapState.EnterPin>(m.state.value, "${m.state.value}")

        m.submitPin("12345678")
        m.onCard(IsoDepTransport.of(tagOf(sim))!!)
        val done = assertIs<LoggedIn>(assertIs<TapState.Done<*>>(m.state.value, "${m.state.value}").value)
        assertEquals("MARIA TESTER", done.name)
        assertEquals("TSTTST80A01H501X", done.codiceFiscale)
        assertEquals(3, done.level)
        assertEquals(true, done.pairedNow)
    }

    @Test
    fun aLostTagAsksForAnotherTapAndTheLoginResumes(): Unit = runBlocking {
        val sim = SimCard.cieExtended()
        val m = model()
        m.submitPin("12345678")
        m.onCard(IsoDepTransport.of(tagOf(sim, lostAfter = 10))!!)
        val again = assertIs<TapState.TapAgain>(m.state.value, "${m.state.value}")
        assertContains(again.message, "avvicina")
        m.onCard(IsoDepTransport.of(tagOf(sim))!!)
        assertIs<TapState.Done<*>>(m.state.value, "${m.state.value}")
    }

    @Test
    fun theLastTryIsSpentOnlyAfterTheUserSaysSo(): Unit = runBlocking {
        val sim = SimCard.cieExtended()
        val m = model()
        for (left in listOf(2, 1)) {
            m.submitPin("11112222")
            m.onCard(IsoDepTransport.of(tagOf(sim))!!)
            assertEquals(left, assertIs<TapState.EnterPin>(m.state.value, "${m.state.value}").triesLeft)
        }
        // One try left: the core stops before VERIFY and the screen asks.
        m.submitPin("11112222")
        m.onCard(IsoDepTransport.of(tagOf(sim))!!)
        assertContains(assertIs<TapState.ConfirmLastTry>(m.state.value).message, "un PIN errato bloccherà la carta")
        m.cancelLastTry()
        assertIs<TapState.EnterPin>(m.state.value, "${m.state.value}")
        // The try was not spent: the right PIN, confirmed, logs in.
        m.submitPin("12345678")
        m.onCard(IsoDepTransport.of(tagOf(sim))!!)
        assertIs<TapState.ConfirmLastTry>(m.state.value, "${m.state.value}")
        m.confirmLastTry()
        m.onCard(IsoDepTransport.of(tagOf(sim))!!)
        assertIs<TapState.Done<*>>(m.state.value, "${m.state.value}")
    }

    @Test
    fun inEnglishAWrongLastTryBlocksThePinAndThePukIsNamed(): Unit = runBlocking {
        val sim = SimCard.cieExtended()
        val m = model(Language.EN)
        m.submitPin("11112222")
        m.onCard(IsoDepTransport.of(tagOf(sim))!!)
        val wrong = assertIs<TapState.EnterPin>(m.state.value, "${m.state.value}")
        assertEquals("Wrong PIN: 2 tries left. Check the PIN and try again.", wrong.message)
        m.submitPin("11112222")
        m.onCard(IsoDepTransport.of(tagOf(sim))!!)
        assertEquals(1, assertIs<TapState.EnterPin>(m.state.value, "${m.state.value}").triesLeft)
        m.submitPin("11112222")
        m.onCard(IsoDepTransport.of(tagOf(sim))!!)
        assertEquals("Only one try left: a wrong PIN will block the card. Confirm to go on.", assertIs<TapState.ConfirmLastTry>(m.state.value).message)
        m.confirmLastTry()
        m.onCard(IsoDepTransport.of(tagOf(sim))!!)
        // Blocked: its own screen (no PIN pad, no "tap again"), the message names the PUK.
        val blocked = assertIs<TapState.PinBlocked>(m.state.value, "${m.state.value}")
        assertContains(blocked.message, "PUK")
        assertContains(blocked.message, "unblock")
        // Nothing more to do with the card: another tap is ignored.
        m.onCard(IsoDepTransport.of(tagOf(sim))!!)
        assertEquals(blocked, m.state.value)
    }
}
