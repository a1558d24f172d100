// TEST STUB of android.nfc.tech.IsoDep with Android's documented behaviour for what
// IsoDepTransport uses: transceive before connect() throws IllegalStateException, a tag out
// of the field throws TagLostException, commands above getMaxTransceiveLength() throw
// IOException("Transceive length exceeds supported maximum"), and a transceive longer than
// the timeout throws IOException ("Transceive failed"); never shipped.
package android.nfc.tech

import android.nfc.Tag
import android.nfc.TagLostException
import java.io.IOException

class IsoDep private constructor(private val tag: Tag) : AutoCloseable {
    private var connected = false
    private var timeoutMs = 618

    /** Test hook: how long the card "takes" on the next transceive, in ms. */
    var simulatedLatencyMs: Int = 0

    fun connect() {
        connected = true
    }

    override fun close() {
        connected = false
    }

    fun isConnected(): Boolean = connected

    fun getTag(): Tag = tag

    fun setTimeout(timeout: Int) {
        timeoutMs = timeout
    }

    fun getTimeout(): Int = timeoutMs

    fun isExtendedLengthApduSupported(): Boolean = tag.extendedLength

    fun getMaxTransceiveLength(): Int = if (tag.extendedLength) 65279 else 261

    fun getHistoricalBytes(): ByteArray? = tag.historicalBytes

    fun getHiLayerResponse(): ByteArray? = null

    fun transceive(data: ByteArray): ByteArray {
        check(connected) { "Call connect() first!" }
        if (data.size > getMaxTransceiveLength()) throw IOException("Transceive length exceeds supported maximum")
        if (simulatedLatencyMs > timeoutMs) throw IOException("Transceive failed")
        return tag.connectTo(data) ?: throw TagLostException()
    }

    companion object {
        @JvmStatic
        fun get(tag: Tag): IsoDep? = if ("android.nfc.tech.IsoDep" in tag.getTechList()) IsoDep(tag) else null
    }
}
