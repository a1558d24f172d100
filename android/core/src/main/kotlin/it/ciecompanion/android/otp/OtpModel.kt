// The one-time codes screen: saved tokens and their current codes, add from a scanned
// otpauth:// QR, remove. Plain Kotlin over the core's OtpVault (which parses, checks and
// computes; seeds stay in the shell's SecretStore, device-only).
package it.ciecompanion.android.otp

import it.ciecompanion.core.OtpException
import it.ciecompanion.core.OtpKind
import it.ciecompanion.core.OtpToken
import it.ciecompanion.core.OtpVault
import it.ciecompanion.core.SecretStore
import it.ciecompanion.core.otpErrorMessageIt
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow

/** One row: the token, and for TOTP its current code with the seconds left. */
data class CodeRow(val token: OtpToken, val code: String?, val secondsRemaining: Long?)

/** What the screen shows; [messageIt] after a refused link or a store error. */
data class OtpScreen(val rows: List<CodeRow> = emptyList(), val messageIt: String? = null)

class OtpModel(store: SecretStore, private val now: () -> Long = { System.currentTimeMillis() / 1000 }) {
    private val vault = OtpVault(store)
    private val _state = MutableStateFlow(OtpScreen())
    val state: StateFlow<OtpScreen> = _state.asStateFlow()

    /** Recompute the rows (every second while the screen is shown). HOTP codes are only shown
     * on request ([next]): computing one advances its counter. */
    fun tick() {
        _state.value = try {
            val t = now().toULong()
            OtpScreen(
                vault.list().map { token ->
                    if (token.kind is OtpKind.Totp) {
                        val c = vault.code(token.id, t)
                        CodeRow(token, c.code, c.secondsRemaining.toLong())
                    } else {
                        CodeRow(token, null, null)
                    }
                },
            )
        } catch (e: OtpException) {
            _state.value.copy(messageIt = otpErrorMessageIt(e))
        }
    }

    /** The next HOTP code of [id] (advances its counter). */
    fun next(id: String): String? = try {
        vault.code(id, now().toULong()).code
    } catch (e: OtpException) {
        _state.value = _state.value.copy(messageIt = otpErrorMessageIt(e))
        null
    }

    /** A scanned otpauth:// link; the core refuses bad ones with a message to show. */
    fun add(uri: String): Boolean = try {
        vault.addUri(uri)
        tick()
        true
    } catch (e: OtpException) {
        _state.value = _state.value.copy(messageIt = otpErrorMessageIt(e))
        false
    }

    fun remove(id: String) {
        try {
            vault.remove(id)
            tick()
        } catch (e: OtpException) {
            _state.value = _state.value.copy(messageIt = otpErrorMessageIt(e))
        }
    }
}
