// Android's ViewModel around the platform-independent login CardTap (tested on the JVM in
// CI): it only adds the lifecycle scope and starts the login session.
package it.ciecompanion.app

import androidx.lifecycle.ViewModel
import androidx.lifecycle.viewModelScope
import it.ciecompanion.android.card.CardTap
import it.ciecompanion.android.card.TapState
import it.ciecompanion.android.login.LoggedIn
import it.ciecompanion.android.login.cardLogin
import it.ciecompanion.android.nfc.IsoDepTransport
import it.ciecompanion.core.CompanionClient
import it.ciecompanion.core.FlowException
import it.ciecompanion.core.Language
import it.ciecompanion.core.flowErrorMessage
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.launch

class LoginViewModel(
    private val client: CompanionClient,
    private val origin: String,
    private val language: Language,
) : ViewModel(), CardTarget {
    private var model: CardTap<LoggedIn>? = null
    private val _state = MutableStateFlow<TapState<LoggedIn>>(TapState.EnterPin())
    val state: StateFlow<TapState<LoggedIn>> = _state.asStateFlow()

    init {
        // The server's challenge is fetched before the NFC sheet: no network while the card
        // is in the field.
        viewModelScope.launch {
            try {
                val m = cardLogin(client.startCardLogin(origin), language)
                model = m
                m.state.collect { _state.value = it }
            } catch (e: FlowException) {
                _state.value = TapState.Failed(flowErrorMessage(e, language))
            }
        }
    }

    fun submitPin(pin: String) {
        model?.submitPin(pin)
    }

    fun confirmLastTry() {
        model?.confirmLastTry()
    }

    fun cancelLastTry() {
        model?.cancelLastTry()
    }

    /** From reader mode's callback (a binder thread): the tap runs in the model's scope. */
    override fun onTag(transport: IsoDepTransport) {
        val m = model ?: return transport.close()
        viewModelScope.runTap(m, transport)
    }
}
