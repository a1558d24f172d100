// "Scan the computer's QR": camera frames (or a platform scanner's text) in, the login's
// context shown, the user approves with the card or this phone's key, the code to type on
// the computer out. Plain Kotlin; the core parses and checks the QR, claims it, signs, and
// says whether a refused QR keeps the camera on (desktopQrStep).
package it.ciecompanion.android.desktop

import it.ciecompanion.android.card.CardTap
import it.ciecompanion.android.qr.LumaFrameSink
import it.ciecompanion.android.qr.scanLumaFrame
import it.ciecompanion.core.CompanionClient
import it.ciecompanion.core.DesktopSession
import it.ciecompanion.core.DeviceSigner
import it.ciecompanion.core.FlowException
import it.ciecompanion.core.Language
import it.ciecompanion.core.LoginContext
import it.ciecompanion.core.ScanStep
import it.ciecompanion.core.desktopQrStep
import it.ciecompanion.core.flowErrorMessage
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.sync.Mutex
import kotlinx.coroutines.sync.withLock

/** What the desktop-login screens show. */
sealed interface DesktopQrState {
    /** The camera is on; [hint] after a QR that is not a login code, or has expired. */
    data class Scanning(val hint: String? = null) : DesktopQrState

    /** Claiming the login at the server. */
    data object Claiming : DesktopQrState

    /**
     * "Stai accedendo a …": who asks, from which browser and place; approve or deny before
     * [expiresAt] (server time, s). [deviceAllowed] is false when the service asked for the
     * card (level 3): offer only "Autorizza con la CIE".
     */
    data class Review(val context: LoginContext, val expiresAt: ULong, val deviceAllowed: Boolean) : DesktopQrState

    /** Approving with the card: render [tap]'s state (PIN, tap, progress…). */
    data class WithCard(val tap: CardTap<ShownCode>) : DesktopQrState

    /** Approving with this phone's key (biometric prompt on screen). */
    data object Approving : DesktopQrState

    /** Type this code on the computer. */
    data class Code(val code: ShownCode) : DesktopQrState

    /** Denied (and reported when the user said it was not them). */
    data object Denied : DesktopQrState

    /** Stopped; [message] says what to do next. */
    data class Failed(val message: String) : DesktopQrState
}

/** The code to type on the computer and when it stops working (server time, s). */
data class ShownCode(val code: String, val expiresAt: ULong)

class DesktopQrModel(
    private val client: CompanionClient,
    private val deviceName: String,
    private val deviceId: String?,
    private val language: Language,
) : LumaFrameSink {
    private val _state = MutableStateFlow<DesktopQrState>(DesktopQrState.Scanning())
    val state: StateFlow<DesktopQrState> = _state.asStateFlow()
    private var session: DesktopSession? = null
    private val busy = Mutex()

    // The last QR refused while the camera stays on: it keeps seeing it, and claiming it
    // again would only be refused again.
    private var refused: String? = null

    override val wantsFrames: Boolean get() = _state.value is DesktopQrState.Scanning

    /** One camera frame's luma plane (see [LumaFrameSink.onFrame]). */
    override suspend fun onFrame(width: UInt, height: UInt, rowStride: UInt, luma: java.nio.ByteBuffer) {
        if (!wantsFrames) return
        onText(scanLumaFrame(width, height, rowStride, luma) ?: return)
    }

    /** A decoded QR text (from [onFrame] or a platform scanner); the one just refused is skipped. */
    suspend fun onText(text: String) = busy.withLock {
        if (_state.value !is DesktopQrState.Scanning || text == refused) return@withLock
        _state.value = DesktopQrState.Claiming
        _state.value = try {
            val s = client.claimDesktopQr(text, deviceName, deviceId)
            session = s
            DesktopQrState.Review(s.context(), s.expiresAt(), s.deviceApprovalAllowed())
        } catch (e: FlowException) {
            when (desktopQrStep(e)) {
                ScanStep.SCAN_AGAIN -> {
                    refused = text
                    DesktopQrState.Scanning(flowErrorMessage(e, language))
                }
                ScanStep.STOP -> DesktopQrState.Failed(flowErrorMessage(e, language))
            }
        }
    }

    /** "Autorizza con la CIE": the PIN's last 4 digits on a paired card, then a tap. */
    fun approveWithCard(): CardTap<ShownCode>? {
        val s = session ?: return null
        if (_state.value !is DesktopQrState.Review) return null
        val tap = CardTap(
            language = language,
            tap = { transport, pin, progress ->
                val c = s.approveWithCard(transport, pin, progress)
                ShownCode(c.code, c.expiresAt).also { _state.value = DesktopQrState.Code(it) }
            },
            confirm = s::confirmLastTry,
        )
        _state.value = DesktopQrState.WithCard(tap)
        return tap
    }

    /** "Autorizza con questo telefono" (enrolled device key; the keystore asks biometrics). */
    suspend fun approveWithDevice(deviceId: String, signer: DeviceSigner) = busy.withLock {
        val s = session ?: return@withLock
        if (_state.value !is DesktopQrState.Review) return@withLock
        _state.value = DesktopQrState.Approving
        _state.value = try {
            val c = s.approveWithDevice(deviceId, signer)
            DesktopQrState.Code(ShownCode(c.code, c.expiresAt))
        } catch (e: FlowException) {
            DesktopQrState.Failed(flowErrorMessage(e, language))
        }
    }

    /** "Nega" / "Non sono stato io" ([report]: the server records a possible phishing). */
    suspend fun deny(report: Boolean) = busy.withLock {
        val s = session ?: return@withLock
        _state.value = try {
            s.deny(report)
            DesktopQrState.Denied
        } catch (e: FlowException) {
            DesktopQrState.Failed(flowErrorMessage(e, language))
        }
    }
}
