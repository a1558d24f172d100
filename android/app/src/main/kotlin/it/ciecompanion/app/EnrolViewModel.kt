// "Registra questo telefono": with the CIE (PIN + tap: the card vouches for the key) or,
// for residents abroad without a card reader, with the one-time code the logged-in page
// shows. Either way the key stays in the Keystore and the enrolment is saved.
package it.ciecompanion.app

import androidx.lifecycle.ViewModel
import androidx.lifecycle.viewModelScope
import it.ciecompanion.android.approvals.deviceEnrollment
import it.ciecompanion.android.card.CardTap
import it.ciecompanion.android.card.TapState
import it.ciecompanion.android.enrol.CodeEnrolState
import it.ciecompanion.android.enrol.CodeEnrolmentModel
import it.ciecompanion.android.nfc.IsoDepTransport
import it.ciecompanion.core.CompanionClient
import it.ciecompanion.core.DeviceSigner
import it.ciecompanion.core.EnrolledDevice
import it.ciecompanion.core.FlowException
import it.ciecompanion.core.Language
import it.ciecompanion.core.flowErrorMessage
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.launch

/** Which way the user chose. */
sealed interface EnrolMode {
    data object Choose : EnrolMode

    /** Fetching the challenge before the PIN pad. */
    data object Starting : EnrolMode

    data class WithCard(val tap: CardTap<EnrolledDevice>) : EnrolMode

    data class WithCode(val model: CodeEnrolmentModel) : EnrolMode

    data class Failed(val message: String) : EnrolMode
}

class EnrolViewModel(
    private val client: CompanionClient,
    private val origin: String,
    private val signer: DeviceSigner,
    private val deviceName: String,
    private val devices: EnrolledDevices,
    private val language: Language,
) : ViewModel(), CardTarget {
    private val _mode = MutableStateFlow<EnrolMode>(EnrolMode.Choose)
    val mode: StateFlow<EnrolMode> = _mode.asStateFlow()

    fun withCard() {
        _mode.value = EnrolMode.Starting
        viewModelScope.launch {
            try {
                val tap = deviceEnrollment(client.startDeviceEnrollment(origin, signer, deviceName), language)
                _mode.value = EnrolMode.WithCard(tap)
                val done = tap.state.first { it is TapState.Done }
                if (done is TapState.Done) devices.save(done.value)
            } catch (e: FlowException) {
                _mode.value = EnrolMode.Failed(flowErrorMessage(e, language))
            }
        }
    }

    fun withCode() {
        val model = CodeEnrolmentModel(client, origin, signer, deviceName, language)
        _mode.value = EnrolMode.WithCode(model)
        viewModelScope.launch {
            val done = model.state.first { it is CodeEnrolState.Done }
            if (done is CodeEnrolState.Done) devices.save(done.device)
        }
    }

    /** A typed code (the QR could not be scanned). */
    fun submitCode(code: String) {
        val model = (_mode.value as? EnrolMode.WithCode)?.model ?: return
        viewModelScope.launch { model.submit(code) }
    }

    fun back() {
        _mode.value = EnrolMode.Choose
    }

    override fun onTag(transport: IsoDepTransport) {
        val tap = (_mode.value as? EnrolMode.WithCard)?.tap ?: return transport.close()
        viewModelScope.runTap(tap, transport)
    }
}
