// "Registra il telefono con un codice" (residents abroad, no card): the page the holder is
// logged in to shows a one-time code and its QR; the phone scans it (or the user types it)
// and the core enrols this phone's key with it. Plain Kotlin; the core sends the code,
// checks the answer and says whether a refusal asks for a new code (enrolmentCodeStep); the
// server spends the code.
package it.ciecompanion.android.enrol

import it.ciecompanion.android.qr.LumaFrameSink
import it.ciecompanion.android.qr.scanLumaFrame
import it.ciecompanion.core.CompanionClient
import it.ciecompanion.core.DeviceSigner
import it.ciecompanion.core.EnrolledDevice
import it.ciecompanion.core.FlowException
import it.ciecompanion.core.Language
import it.ciecompanion.core.ScanStep
import it.ciecompanion.core.enrolmentCodeStep
import it.ciecompanion.core.flowErrorMessage
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.sync.Mutex
import kotlinx.coroutines.sync.withLock

/** What the enrol-with-a-code screen shows. */
sealed interface CodeEnrolState {
    /** Camera on and a field to type the code; [message] after a refused code. */
    data class WaitingForCode(val message: String? = null) : CodeEnrolState

    /** Sending the code with this phone's key. */
    data object Enrolling : CodeEnrolState

    /** Enrolled: keep [device] (its id names the key in approvals). */
    data class Done(val device: EnrolledDevice) : CodeEnrolState

    /** Stopped for a reason a new code does not fix (network, keystore); [message] says what to do. */
    data class Failed(val message: String) : CodeEnrolState
}

class CodeEnrolmentModel(
    private val client: CompanionClient,
    private val origin: String,
    private val signer: DeviceSigner,
    private val deviceName: String,
    private val language: Language,
) : LumaFrameSink {
    private val _state = MutableStateFlow<CodeEnrolState>(CodeEnrolState.WaitingForCode())
    val state: StateFlow<CodeEnrolState> = _state.asStateFlow()
    private val busy = Mutex()

    // The last code the server refused: the camera keeps seeing the same QR, and sending it
    // again would only be refused again.
    private var refused: String? = null

    override val wantsFrames: Boolean get() = _state.value is CodeEnrolState.WaitingForCode

    override suspend fun onFrame(width: UInt, height: UInt, rowStride: UInt, luma: java.nio.ByteBuffer) {
        if (!wantsFrames) return
        val text = scanLumaFrame(width, height, rowStride, luma) ?: return
        if (text != refused) submit(text)
    }

    /** A scanned or typed code. */
    suspend fun submit(code: String) = busy.withLock {
        if (_state.value !is CodeEnrolState.WaitingForCode) return@withLock
        _state.value = CodeEnrolState.Enrolling
        _state.value = try {
            CodeEnrolState.Done(client.enrollDeviceWithCode(origin, code, signer, deviceName))
        } catch (e: FlowException) {
            val message = flowErrorMessage(e, language)
            when (enrolmentCodeStep(e)) {
                // The code itself was refused: the message says to ask the page for a new one.
                ScanStep.SCAN_AGAIN -> {
                    refused = code
                    CodeEnrolState.WaitingForCode(message)
                }
                ScanStep.STOP -> CodeEnrolState.Failed(message)
            }
        }
    }

    /** "Riprova" after [CodeEnrolState.Failed]. */
    fun retry() {
        if (_state.value is CodeEnrolState.Failed) _state.value = CodeEnrolState.WaitingForCode()
    }
}
