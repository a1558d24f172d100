// "Cambia PIN" and "Sblocca carta" through the shell's CardPinChange and CardTap screens,
// over IsoDepTransport (android.nfc stubs) to the virtual CIE, through the real core.

import it.ciecompanion.android.card.CardPinChange
import it.ciecompanion.android.card.PinChangeKind
import it.ciecompanion.android.card.TapState
import it.ciecompanion.android.nfc.IsoDepTransport
import it.ciecompanion.core.Language
import it.ciecompanion.core.Protection
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Test
import uniffi.card_sim.SimCard
import kotlin.test.assertContains
import kotlin.test.assertEquals
import kotlin.test.assertIs
import kotlin.test.assertNull

class CardPinChangeTest {
    private suspend fun CardPinChange.tapWith(sim: SimCard) = tap.onCard(IsoDepTransport.of(tagOf(sim))!!)

    @Test
    fun aPinBlockedByWrongTriesIsUnblockedWithThePukAndChangedAgain(): Unit = runBlocking {
        val sim = SimCard.cieExtended()
        val change = CardPinChange(PinChangeKind.CHANGE_PIN, Language.IT, null)
        // The new PIN typed twice differently: the core refuses before the card, nothing spent.
        change.submit("12345678", "24681357", "24681375")
        change.tapWith(sim)
        assertContains(assertIs<TapState.EnterPin>(change.tap.state.value).message!!, "non coincidono")
        // A wrong current PIN: the card's tries, then the last one only after "sì".
        for (left in listOf(2, 1)) {
            change.submit("00000000", "24681357", "24681357")
            change.tapWith(sim)
            assertEquals(left, assertIs<TapState.EnterPin>(change.tap.state.value).triesLeft)
        }
        change.submit("00000000", "24681357", "24681357")
        change.tapWith(sim)
        assertContains(assertIs<TapState.ConfirmLastTry>(change.tap.state.value).message, "un PIN errato")
        change.tap.confirmLastTry()
        change.tapWith(sim)
        assertContains(assertIs<TapState.PinBlocked>(change.tap.state.value).message, "PUK")

        // Unblock: a wrong PUK is the PUK's count, then the right one sets the new PIN and the
        // card's pairing on this phone (the old PIN's first half) is forgotten.
        val store = MemoryStore()
        store.save("cie/000011112222/pin-first-half", "1234".toByteArray(), Protection.USER_PRESENCE)
        val unblock = CardPinChange(PinChangeKind.UNBLOCK_WITH_PUK, Language.IT, store)
        unblock.submit("11223344", "24681357", "24681357")
        unblock.tapWith(sim)
        val wrong = assertIs<TapState.EnterPin>(unblock.tap.state.value)
        assertEquals(9, wrong.triesLeft)
        assertContains(wrong.message!!, "PUK errato")
        unblock.submit("87654321", "24681357", "24681357")
        unblock.tapWith(sim)
        assertIs<TapState.Done<Unit>>(unblock.tap.state.value)
        assertNull(store.load("cie/000011112222/pin-first-half"))

        // The new PIN is the card's: it changes it again.
        val again = CardPinChange(PinChangeKind.CHANGE_PIN, Language.EN, null)
        again.submit("24681357", "13572468", "13572468")
        again.tapWith(sim)
        assertIs<TapState.Done<Unit>>(again.tap.state.value, "${again.tap.state.value}")
    }
}
