// "Sblocca carta" (PUK + new PIN) and "Cambia PIN" (current PIN + new PIN): the codes are
// typed on one form, then one tap. The core checks every rule (8 digits, typed twice the
// same, not a run, the PUK's tries, the last try confirmed) and says what comes next; this
// class keeps the form's codes until the tap and reuses CardTap for the tap screens.
package it.ciecompanion.android.card

import it.ciecompanion.core.CardException
import it.ciecompanion.core.FlowException
import it.ciecompanion.core.Language
import it.ciecompanion.core.SecretStore
import it.ciecompanion.core.changeCardPin
import it.ciecompanion.core.unblockCardPin

/** Which of the two operations the screen runs. */
enum class PinChangeKind { UNBLOCK_WITH_PUK, CHANGE_PIN }

/**
 * One PIN change over [tap]'s screens (EnterPin = the form, WaitForCard, ConfirmLastTry for
 * the last try of the PUK or PIN, Done, Failed with the core's message). [store] is the app's
 * keystore: the core forgets this card's pairing (the old PIN's first half) there.
 */
class CardPinChange(val kind: PinChangeKind, language: Language, store: SecretStore?) {
    // The form's codes, held from "OK" to the tap that uses them (Kotlin strings cannot be
    // wiped; the core zeroizes its copies).
    private var codes: Triple<String, String, String>? = null
    private var confirmed = false

    val tap = CardTap<Unit>(
        language = language,
        tap = { transport, _, _ ->
            val (code, newPin, again) = codes ?: throw FlowException.Card(CardException.PinNeeded())
            try {
                when (kind) {
                    PinChangeKind.UNBLOCK_WITH_PUK -> unblockCardPin(transport, code, newPin, again, confirmed, store)
                    PinChangeKind.CHANGE_PIN -> changeCardPin(transport, code, newPin, again, confirmed, store)
                }
                codes = null
            } catch (e: CardException) {
                throw FlowException.Card(e)
            }
        },
        confirm = { confirmed = true },
    )

    /**
     * The form's OK: [code] is the PUK (unblock) or the current PIN (change), the new PIN
     * typed twice. Then "avvicina la carta".
     */
    fun submit(code: String, newPin: String, newPinAgain: String) {
        codes = Triple(code, newPin, newPinAgain)
        confirmed = false
        tap.submitPin(code)
    }
}
