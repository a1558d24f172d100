// The one-time codes screen: saved tokens and their current codes, add from a scanned
// otpauth:// QR (camera frames to the core's scanner) or a pasted link, remove. Plain Kotlin
// over the core's OtpVault (which parses, checks and computes; seeds stay in the shell's
// SecretStore, device-only).
package it.ciecompanion.android.otp

import it.ciecompanion.android.qr.LumaFrameSink
import it.ciecompanion.android.qr.scanLumaFrame
import it.ciecompanion.core.OtpException
import it.ciecompanion.core.OtpKind
import it.ciecompanion.core.OtpToken
import it.ciecompanion.core.OtpVault
import it.ciecompanion.core.SecretStore
import it.ciecompanion.core.Language
import it.ciecompanion.core.otpErrorMessage
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.update

/** One row: the token, and for TOTP its current code with the seconds left. */
data class CodeRow(val token: OtpToken, val code: String?, val secondsRemaining: Long?)

/**
 * What the screen shows: the rows; [scanning] while the viewfinder is open to add one;
 * [message] (the core's, in the app's language) after a refused link or a store error (until
 * the next add or [OtpModel.dismiss]).
 */
data class OtpScreen(val rows: List<CodeRow> = emptyList(), val scanning: Boolean = false, val message: String? = null)

class OtpModel(
    store: SecretStore,
    private val language: Language,
    private val now: () -> Long = { System.currentTimeMillis() / 1000 },
) : LumaFrameSink {
    private val vault = OtpVault(store)
    private val _state = MutableStateFlow(OtpScreen())
    val state: StateFlow<OtpScreen> = _state.asStateFlow()

    // The last scanned text the core refused: the camera keeps seeing it.
    private var refused: String? = null

    /** Recompute the rows (every second while the screen is shown). HOTP codes are only shown
     * on request ([next]): computing one advances its counter. */
    fun tick() {
        try {
            val t = now().toULong()
            val rows = vault.list().map { token ->
                if (token.kind is OtpKind.Totp) {
                    val c = vault.code(token.id, t)
                    CodeRow(token, c.code, c.secondsRemaining.toLong())
                } else {
                    CodeRow(token, null, null)
                }
            }
            _state.update { it.copy(rows = rows) }
        } catch (e: OtpException) {
            fail(e)
        }
    }

    /** The next HOTP code of [id] (advances its counter). */
    fun next(id: String): String? = try {
        vault.code(id, now().toULong()).code
    } catch (e: OtpException) {
        fail(e)
        null
    }

    /** A scanned or pasted otpauth:// link; the core refuses bad ones with a message to show. */
    fun add(uri: String): Boolean = try {
        vault.addUri(uri)
        _state.update { it.copy(scanning = false, message = null) }
        tick()
        true
    } catch (e: OtpException) {
        fail(e)
        false
    }

    fun remove(id: String) {
        try {
            vault.remove(id)
            tick()
        } catch (e: OtpException) {
            fail(e)
        }
    }

    /** "Aggiungi con QR": the viewfinder opens. */
    fun startScan() {
        refused = null
        _state.update { it.copy(scanning = true, message = null) }
    }

    /** The viewfinder closed without a code. */
    fun stopScan() = _state.update { it.copy(scanning = false) }

    /** The message was read. */
    fun dismiss() = _state.update { it.copy(message = null) }

    override val wantsFrames: Boolean get() = _state.value.scanning

    override suspend fun onFrame(width: UInt, height: UInt, rowStride: UInt, luma: java.nio.ByteBuffer) {
        if (!wantsFrames) return
        val text = scanLumaFrame(width, height, rowStride, luma) ?: return
        if (text != refused && !add(text)) refused = text
    }

    private fun fail(e: OtpException) = _state.update { it.copy(message = otpErrorMessage(e, language)) }
}
