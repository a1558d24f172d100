// The core's SecretStore over Android Keystore: values sealed with an AES-GCM key that
// never leaves the keystore (StrongBox when present); USER_PRESENCE values need the user's
// screen lock within the last 30 s. The core decides what to store; this only keeps it.
package it.ciecompanion.app

import android.content.Context
import android.content.pm.PackageManager
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import android.util.Base64
import it.ciecompanion.core.Protection
import it.ciecompanion.core.SecretStore
import it.ciecompanion.core.StoreException
import java.security.KeyStore
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec

class KeystoreSecretStore(private val context: Context) : SecretStore {
    private val prefs = context.getSharedPreferences("cie-companion-secrets", Context.MODE_PRIVATE)

    override fun load(name: String): ByteArray? {
        val stored = prefs.getString(name, null) ?: return null
        val bytes = Base64.decode(stored, Base64.NO_WRAP)
        val protection = Protection.entries[bytes[0].toInt()]
        val iv = bytes.copyOfRange(1, 13)
        return try {
            val c = Cipher.getInstance(TRANSFORM)
            c.init(Cipher.DECRYPT_MODE, key(protection), GCMParameterSpec(128, iv))
            c.doFinal(bytes, 13, bytes.size - 13)
        } catch (e: Exception) {
            throw StoreException.Unavailable(e.javaClass.simpleName)
        }
    }

    override fun save(name: String, value: ByteArray, protection: Protection) {
        try {
            val c = Cipher.getInstance(TRANSFORM)
            c.init(Cipher.ENCRYPT_MODE, key(protection))
            val sealed = byteArrayOf(protection.ordinal.toByte()) + c.iv + c.doFinal(value)
            prefs.edit().putString(name, Base64.encodeToString(sealed, Base64.NO_WRAP)).apply()
        } catch (e: Exception) {
            throw StoreException.Unavailable(e.javaClass.simpleName)
        }
    }

    override fun remove(name: String) {
        prefs.edit().remove(name).apply()
    }

    private fun key(protection: Protection): SecretKey {
        val alias = "cie-companion-${protection.name.lowercase()}"
        val ks = KeyStore.getInstance("AndroidKeyStore").apply { load(null) }
        (ks.getKey(alias, null) as? SecretKey)?.let { return it }
        val spec = KeyGenParameterSpec.Builder(alias, KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT)
            .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
            .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
            .setIsStrongBoxBacked(context.packageManager.hasSystemFeature(PackageManager.FEATURE_STRONGBOX_KEYSTORE))
        if (protection == Protection.USER_PRESENCE) {
            spec.setUserAuthenticationRequired(true)
                .setUserAuthenticationParameters(30, KeyProperties.AUTH_BIOMETRIC_STRONG or KeyProperties.AUTH_DEVICE_CREDENTIAL)
        }
        return KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, "AndroidKeyStore")
            .apply { init(spec.build()) }
            .generateKey()
    }

    private companion object {
        const val TRANSFORM = "AES/GCM/NoPadding"
    }
}
