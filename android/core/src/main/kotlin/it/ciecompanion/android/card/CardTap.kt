// One card operation that needs the PIN and a tap (phone-tap login, desktop approval with
// the card, device enrolment), as plain Kotlin (no android.*). It decides nothing: the core
// says which screen comes after a failed tap (cardTapStep) and what to tell the user
// (flowErrorMessage, in the app's language); this class only keeps the state.
package it.ciecompanion.android.card

import it.ciecompanion.core.CardTapStep
import it.ciecompanion.core.CardTransport
import it.ciecompanion.core.FlowException
import it.ciecompanion.core.Language
import it.ciecompanion.core.LoginStep
import it.ciecompanion.core.ProgressListener
import it.ciecompanion.core.cardTapStep
import it.ciecompanion.core.flowErrorMessage
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.sync.Mutex
import kotlinx.coroutines.sync.withLock

/** What a PIN-and-tap screen shows. */
sealed interface TapState<out T> {
    /** Ask for the PIN; after a wrong one, [message] says how many tries remain. */
    data class EnterPin(val message: String? = null, val triesLeft: Int? = null) : TapState<Nothing>

    /** "Avvicina la CIE al telefono" (NFC sheet / reader mode on). */
    data object WaitForCard : TapState<Nothing>

    /** The card is being read: [step], and [percent] of the current step's bytes. */
    data class Reading(val step: LoginStep, val percent: Int) : TapState<Nothing>

    /** The card was moved away mid-read: tap again and the core resumes. */
    data class TapAgain(val message: String) : TapState<Nothing>

    /**
     * One try left: the user must say "yes, try it" before the core spends it. [message] is
     * the core's warning, for the PIN or the PUK as the operation needs.
     */
    data class ConfirmLastTry(val message: String) : TapState<Nothing>

    /** Finished. */
    data class Done<T>(val value: T) : TapState<T>

    /** The PIN is blocked: [message] says to unblock it with the PUK. */
    data class PinBlocked(val message: String) : TapState<Nothing>

    /** Stopped: card refused, server or network. [message] says what to do. */
    data class Failed(val message: String) : TapState<Nothing>
}

/**
 * [tap] runs the core's operation over one tapped card with the PIN typed (or `null` when
 * the core has what it needs); [confirm] is the operation's `confirmLastTry`; the core's
 * messages come in [language].
 */
class CardTap<T>(
    private val language: Language,
    private val tap: suspend (CardTransport, String?, ProgressListener) -> T,
    private val confirm: () -> Unit,
) {
    private val _state = MutableStateFlow<TapState<T>>(TapState.EnterPin())
    val state: StateFlow<TapState<T>> = _state.asStateFlow()

    // Held only from "OK" on the PIN pad to the tap that uses it. A Kotlin String cannot be
    // wiped; the core zeroizes its own copy.
    private var pin: String? = null
    private val busy = Mutex()

    private val progress = object : ProgressListener {
        override fun onStep(step: LoginStep, done: UInt, total: UInt) {
            _state.value = TapState.Reading(step, 0)
        }

        override fun onBytes(step: LoginStep, done: UInt, total: UInt) {
            val percent = if (total == 0u) 0 else (done.toLong() * 100 / total.toLong()).toInt()
            _state.value = TapState.Reading(step, percent)
        }
    }

    /** The PIN pad's OK. */
    fun submitPin(pin: String) {
        if (_state.value !is TapState.EnterPin) return
        this.pin = pin
        _state.value = TapState.WaitForCard
    }

    /** "Sì, prova" on the last-try warning. */
    fun confirmLastTry() {
        if (_state.value !is TapState.ConfirmLastTry) return
        confirm()
        _state.value = TapState.WaitForCard
    }

    /** "No" on the last-try warning: nothing spent, back to the PIN. */
    fun cancelLastTry() {
        if (_state.value !is TapState.ConfirmLastTry) return
        pin = null
        _state.value = TapState.EnterPin()
    }

    /** A card came into the field (reader mode callback, off the main thread). */
    suspend fun onCard(transport: CardTransport) = busy.withLock {
        val before = _state.value
        if (before != TapState.WaitForCard && before !is TapState.TapAgain) return@withLock
        _state.value = try {
            val done = tap(transport, pin, progress)
            pin = null
            TapState.Done(done)
        } catch (e: FlowException) {
            next(e)
        }
    }

    private fun next(e: FlowException): TapState<T> {
        val message = flowErrorMessage(e, language)
        return when (val step = cardTapStep(e)) {
            // The PIN is kept: the core resumes or spends it once the user confirms.
            CardTapStep.TapAgain -> TapState.TapAgain(message)
            CardTapStep.ConfirmLastTry -> TapState.ConfirmLastTry(message)
            is CardTapStep.EnterPin -> {
                pin = null
                TapState.EnterPin(message, step.triesLeft?.toInt())
            }
            CardTapStep.PinBlocked -> {
                pin = null
                TapState.PinBlocked(message)
            }
            CardTapStep.Stop -> {
                pin = null
                TapState.Failed(message)
            }
        }
    }
}
