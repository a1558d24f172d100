// TEST STUB of android.nfc.TagLostException (an IOException, as on Android); never shipped.
package android.nfc

import java.io.IOException

class TagLostException(message: String? = "Tag was lost.") : IOException(message)
