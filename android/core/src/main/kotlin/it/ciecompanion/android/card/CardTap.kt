// One card operation that needs the PIN and a tap (phone-tap login, desktop approval with
// the card, device enrolment), as plain Kotlin (no android.*). It decides nothing about the
// protocol: the core says what happened (typed errors, Italian messages through
// flowErrorMessageIt); this class turns that into what the screen shows next.
package it.ciecompanion.android.card

import it.ciecompanion.core.CardException
import it.ciecompanion.core.CardTransport
import it.ciecompanion.core.FlowException
import it.ciecompanion.core.LoginStep
import it.ciecompanion.core.ProgressListener
import it.ciecompanion.core.flowErrorMessageIt
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.sync.Mutex
import kotlinx.coroutines.sync.withLock

/** What a PIN-and-tap screen shows. */
sealed interface TapState<out T> {
    /** Ask for the PIN; after a wrong one, [messageIt] says how many tries remain. */
    data class EnterPin(val messageIt: String? = null, val triesLeft: Int? = null) : TapState<Nothing>

    /** "Avvicina la CIE al telefono" (NFC sheet / reader mode on). */
    data object WaitForCard : TapState<Nothing>

    /** The card is being read: [step], and [percent] of the current step's bytes. */
    data class Reading(val step: LoginStep, val percent: Int) : TapState<Nothing>

    /** The card was moved away mid-read: tap again and the core resumes. */
    data class TapAgain(val messageIt: String) : TapState<Nothing>

    /** One try left: the user must say "yes, try it" before the core spends it. */
    data object ConfirmLastTry : TapState<Nothing>

    /** Finished. */
    data class Done<T>(val value: T) : TapState<T>

    /** Stopped: PIN blocked, card refused, server or network. [messageIt] says what to do. */
    data class Failed(val messageIt: String) : TapState<Nothing>
}

/**
 * [tap] runs the core's operation over one tapped card with the PIN typed (or `null` when
 * the core has what it needs); [confirm] is the operation's `confirmLastTry`.
 */
class CardTap<T>(
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
        if (_state.value != TapState.ConfirmLastTry) return
        confirm()
        _state.value = TapState.WaitForCard
    }

    /** "No" on the last-try warning: nothing spent, back to the PIN. */
    fun cancelLastTry() {
        if (_state.value != TapState.ConfirmLastTry) return
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
        val message = flowErrorMessageIt(e)
        return when (val card = (e as? FlowException.Card)?.error) {
            is CardException.TagLost -> TapState.TapAgain(message)
            is CardException.LastTryNeedsConfirmation -> TapState.ConfirmLastTry
            is CardException.WrongPin -> {
                pin = null
                TapState.EnterPin(message, card.remaining.toInt())
            }
            is CardException.InvalidPin -> {
                pin = null
                TapState.EnterPin(message)
            }
            else -> {
                pin = null
                TapState.Failed(message)
            }
        }
    }
}
