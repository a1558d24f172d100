// The phone-tap CIE login screen's state, as plain Kotlin (no android.*): the app's
// ViewModel holds one and renders `state`. It decides nothing about the protocol: the core
// says what happened (typed errors, Italian messages via flowErrorMessageIt); this class
// only turns that into what the screen shows next.
package it.ciecompanion.android.login

import it.ciecompanion.core.CardException
import it.ciecompanion.core.CardLoginSession
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

/** What the login screen shows. */
sealed interface CardLoginState {
    /** Ask for the PIN; after a wrong one, [messageIt] says how many tries remain. */
    data class EnterPin(val messageIt: String? = null, val triesLeft: Int? = null) : CardLoginState

    /** "Avvicina la CIE al telefono" (NFC sheet / reader mode on). */
    data object WaitForCard : CardLoginState

    /** The card is being read: [step] of 8, [percent] of the current step's bytes. */
    data class Reading(val step: LoginStep, val percent: Int) : CardLoginState

    /** The card was moved away mid-read: tap again and the core resumes. */
    data class TapAgain(val messageIt: String) : CardLoginState

    /** One try left: the user must say "yes, try it" before the core spends it. */
    data object ConfirmLastTry : CardLoginState

    /** Logged in. */
    data class LoggedIn(
        val name: String,
        val codiceFiscale: String,
        val level: Int,
        val pairedNow: Boolean,
    ) : CardLoginState

    /** Stopped: PIN blocked, card refused, server or network. [messageIt] says what to do. */
    data class Failed(val messageIt: String) : CardLoginState
}

/** One login, from the PIN screen to the result. */
class CardLoginModel(private val session: CardLoginSession) {
    private val _state = MutableStateFlow<CardLoginState>(CardLoginState.EnterPin())
    val state: StateFlow<CardLoginState> = _state.asStateFlow()

    // Held only from "OK" on the PIN pad to the tap that uses it. A Kotlin String cannot be
    // wiped; the core zeroizes its own copy.
    private var pin: String? = null
    private val busy = Mutex()

    private val progress = object : ProgressListener {
        override fun onStep(step: LoginStep, done: UInt, total: UInt) {
            _state.value = CardLoginState.Reading(step, 0)
        }

        override fun onBytes(step: LoginStep, done: UInt, total: UInt) {
            val percent = if (total == 0u) 0 else (done.toLong() * 100 / total.toLong()).toInt()
            _state.value = CardLoginState.Reading(step, percent)
        }
    }

    /** The PIN pad's OK. */
    fun submitPin(pin: String) {
        if (_state.value !is CardLoginState.EnterPin) return
        this.pin = pin
        _state.value = CardLoginState.WaitForCard
    }

    /** "Sì, prova" on the last-try warning. */
    fun confirmLastTry() {
        if (_state.value != CardLoginState.ConfirmLastTry) return
        session.confirmLastTry()
        _state.value = CardLoginState.WaitForCard
    }

    /** "No" on the last-try warning: nothing spent, back to the PIN. */
    fun cancelLastTry() {
        if (_state.value != CardLoginState.ConfirmLastTry) return
        pin = null
        _state.value = CardLoginState.EnterPin()
    }

    /** A card came into the field (reader mode callback, off the main thread). */
    suspend fun onCard(transport: CardTransport) = busy.withLock {
        val before = _state.value
        if (before != CardLoginState.WaitForCard && before !is CardLoginState.TapAgain) return@withLock
        _state.value = try {
            val r = session.tap(transport, pin, progress)
            pin = null
            CardLoginState.LoggedIn(
                name = "${r.identity.givenName} ${r.identity.surname}",
                codiceFiscale = r.identity.codiceFiscale,
                level = r.level.toInt(),
                pairedNow = r.pairedNow,
            )
        } catch (e: FlowException) {
            next(e)
        }
    }

    private fun next(e: FlowException): CardLoginState {
        val message = flowErrorMessageIt(e)
        val card = (e as? FlowException.Card)?.error
        return when (card) {
            is CardException.TagLost -> CardLoginState.TapAgain(message)
            is CardException.LastTryNeedsConfirmation -> CardLoginState.ConfirmLastTry
            is CardException.WrongPin -> {
                pin = null
                CardLoginState.EnterPin(message, card.remaining.toInt())
            }
            is CardException.InvalidPin -> {
                pin = null
                CardLoginState.EnterPin(message)
            }
            else -> {
                pin = null
                CardLoginState.Failed(message)
            }
        }
    }
}
