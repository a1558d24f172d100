// "Accedi su un computer": one DesktopQrModel per scanned QR (a new one for "scan another").
// Adds the lifecycle scope, the enrolled device (approve with this phone's key) and the tap.
package it.ciecompanion.app

import androidx.lifecycle.ViewModel
import androidx.lifecycle.viewModelScope
import it.ciecompanion.android.desktop.DesktopQrModel
import it.ciecompanion.android.desktop.DesktopQrState
import it.ciecompanion.android.nfc.IsoDepTransport
import it.ciecompanion.core.CompanionClient
import it.ciecompanion.core.DeviceSigner
import it.ciecompanion.core.Language
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.launch

class DesktopViewModel(
    private val client: CompanionClient,
    private val deviceName: String,
    private val devices: EnrolledDevices,
    private val signer: DeviceSigner,
    private val language: Language,
) : ViewModel(), CardTarget {
    private val _model = MutableStateFlow(newModel())
    /** The current login's model; its `state` is what the screen shows. */
    val model: StateFlow<DesktopQrModel> = _model.asStateFlow()

    /** This phone may approve with its key when it is enrolled at the QR's server. */
    val canUseDevice: Boolean get() = devices.current.value != null

    private fun newModel() = DesktopQrModel(client, deviceName, devices.current.value?.deviceId, language)

    /** "Scansiona un altro QR" (after a code, a denial or a failure). */
    fun restart() {
        _model.value = newModel()
    }

    /** "Approva": PIN (last 4 digits on a paired card) then tap. */
    fun approveWithCard() {
        _model.value.approveWithCard()
    }

    /** "Approva con questo telefono": the Keystore asks for the fingerprint. */
    fun approveWithDevice() {
        val device = devices.current.value ?: return
        viewModelScope.launch { _model.value.approveWithDevice(device.deviceId, signer) }
    }

    /** "Nega, non sono stato io": denied and reported to the server as a possible phishing. */
    fun deny() {
        viewModelScope.launch { _model.value.deny(report = true) }
    }

    override fun onTag(transport: IsoDepTransport) {
        val tap = (_model.value.state.value as? DesktopQrState.WithCard)?.tap ?: return transport.close()
        viewModelScope.runTap(tap, transport)
    }
}
