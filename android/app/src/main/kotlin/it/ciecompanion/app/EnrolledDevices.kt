// Which server this phone is enrolled at and the id that names its key there (not secret:
// the key stays in the Keystore). One enrolment per app.
package it.ciecompanion.app

import android.content.Context
import it.ciecompanion.core.EnrolledDevice
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow

/** What the screens need of the enrolment. */
data class SavedDevice(val origin: String, val deviceId: String, val holder: String)

class EnrolledDevices(context: Context) {
    private val prefs = context.getSharedPreferences("cie-companion-device", Context.MODE_PRIVATE)
    private val _current = MutableStateFlow(read())
    val current: StateFlow<SavedDevice?> = _current.asStateFlow()

    private fun read(): SavedDevice? {
        val origin = prefs.getString("origin", null) ?: return null
        val id = prefs.getString("device_id", null) ?: return null
        return SavedDevice(origin, id, prefs.getString("holder", "").orEmpty())
    }

    fun save(device: EnrolledDevice) {
        val holder = "${device.identity.givenName} ${device.identity.surname}"
        prefs.edit()
            .putString("origin", device.origin)
            .putString("device_id", device.deviceId)
            .putString("holder", holder)
            .apply()
        _current.value = SavedDevice(device.origin, device.deviceId, holder)
    }

    fun forget() {
        prefs.edit().clear().apply()
        _current.value = null
    }
}
