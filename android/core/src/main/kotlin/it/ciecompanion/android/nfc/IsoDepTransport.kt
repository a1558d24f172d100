// The core's CardTransport over android.nfc.tech.IsoDep: moves APDUs, nothing else. Every
// protocol rule (chaining, GET RESPONSE, secure messaging, retries) is in the Rust core.
package it.ciecompanion.android.nfc

import android.nfc.Tag
import android.nfc.TagLostException
import android.nfc.tech.IsoDep
import it.ciecompanion.core.CardTransport
import it.ciecompanion.core.TransportException
import it.ciecompanion.core.TransportInfo
import it.ciecompanion.core.TransportKind
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.withContext
import java.io.IOException

/**
 * One tapped card. [transmit] runs the blocking `transceive` on [io] (never the main
 * thread) and maps Android's exceptions to the core's typed errors:
 * `TagLostException` → `TagLost` (the core resumes on the next tap), a stale tag
 * (`SecurityException`, "Tag … is out of date") → `TagLost`, any other `IOException`
 * (Android reports a timeout as "Transceive failed") → `Io`.
 */
class IsoDepTransport(
    private val isoDep: IsoDep,
    private val io: CoroutineDispatcher = Dispatchers.IO,
) : CardTransport {
    init {
        // The CIE's RSA-2048 signature and DH steps take ~1–2 s on older chips; Android's
        // default (~618 ms) cuts them off.
        isoDep.setTimeout(TIMEOUT_MS)
    }

    override suspend fun transmit(apdu: ByteArray): ByteArray = withContext(io) {
        try {
            if (!isoDep.isConnected()) isoDep.connect()
            isoDep.transceive(apdu)
        } catch (e: TagLostException) {
            throw TransportException.TagLost()
        } catch (e: SecurityException) {
            throw TransportException.TagLost()
        } catch (e: IllegalStateException) {
            throw TransportException.TagLost()
        } catch (e: IOException) {
            throw TransportException.Io(e.message ?: e.javaClass.simpleName)
        }
    }

    override fun info(): TransportInfo {
        val extended = isoDep.isExtendedLengthApduSupported()
        return TransportInfo(
            kind = TransportKind.NFC,
            extendedLength = extended,
            maxCommandLen = isoDep.getMaxTransceiveLength().toUInt(),
            maxResponseLen = (if (extended) MAX_EXTENDED_RESPONSE else MAX_SHORT_RESPONSE).toUInt(),
            // NFC-A: the ATS historical bytes; NFC-B: the ATTRIB response. The core reads
            // the card's identity from these as it reads a contact ATR.
            atr = isoDep.getHistoricalBytes() ?: isoDep.getHiLayerResponse(),
        )
    }

    /** Ends the link (Android also drops it when the tag leaves the field). */
    fun close() {
        try {
            isoDep.close()
        } catch (_: IOException) {
            // Already gone: nothing to release.
        }
    }

    companion object {
        /** Per-command timeout, ms. */
        const val TIMEOUT_MS = 5_000

        /** 256 data bytes + SW1 SW2. */
        private const val MAX_SHORT_RESPONSE = 258

        /** 65536 data bytes + SW1 SW2. */
        private const val MAX_EXTENDED_RESPONSE = 65_538

        /** The transport of a tag from reader mode, or `null` when it is not ISO-DEP. */
        fun of(tag: Tag): IsoDepTransport? = IsoDep.get(tag)?.let { IsoDepTransport(it) }
    }
}
