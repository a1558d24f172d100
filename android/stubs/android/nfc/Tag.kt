// TEST STUB, compiled only for the JVM tests on CI (no Android SDK there); never shipped.
// The public surface IsoDepTransport uses mirrors android.nfc.Tag; `connectTo` is the
// test's hook to put a card (the virtual CIE through the core's test library) behind it.
package android.nfc

class Tag(
    /** Test hook: the card behind this tag; `null` answers mean the tag left the field. */
    internal val connectTo: (ByteArray) -> ByteArray?,
    internal val historicalBytes: ByteArray?,
    internal val extendedLength: Boolean,
) {
    fun getId(): ByteArray = byteArrayOf(0x08, 0x01, 0x02, 0x03)
    fun getTechList(): Array<String> = arrayOf("android.nfc.tech.IsoDep", "android.nfc.tech.NfcA")
}
