// The core's DeviceSigner over an Android Keystore P-256 key: made on this phone (StrongBox
// when present), never exportable, usable for 30 s after the user's fingerprint, face or
// screen lock. Signs SHA256withECDSA in DER; the core converts and checks the signature.
package it.ciecompanion.app

import android.content.Context
import android.content.pm.PackageManager
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import android.security.keystore.UserNotAuthenticatedException
import it.ciecompanion.core.DeviceSigner
import it.ciecompanion.core.StoreException
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.withContext
import java.math.BigInteger
import java.security.GeneralSecurityException
import java.security.KeyPairGenerator
import java.security.KeyStore
import java.security.PrivateKey
import java.security.Signature
import java.security.interfaces.ECPublicKey
import java.security.spec.ECGenParameterSpec

/**
 * [authenticate] shows the system's biometric / screen-lock prompt (BiometricPrompt on the
 * activity) and says whether the user passed it; the key then signs for 30 s.
 */
class KeystoreDeviceSigner(
    private val context: Context,
    private val authenticate: suspend () -> Boolean,
) : DeviceSigner {
    private fun keyStore(): KeyStore = KeyStore.getInstance("AndroidKeyStore").apply { load(null) }

    private fun privateKey(): PrivateKey {
        (keyStore().getKey(ALIAS, null) as? PrivateKey)?.let { return it }
        val spec = KeyGenParameterSpec.Builder(ALIAS, KeyProperties.PURPOSE_SIGN)
            .setAlgorithmParameterSpec(ECGenParameterSpec("secp256r1"))
            .setDigests(KeyProperties.DIGEST_SHA256)
            .setUserAuthenticationRequired(true)
            .setUserAuthenticationParameters(30, KeyProperties.AUTH_BIOMETRIC_STRONG or KeyProperties.AUTH_DEVICE_CREDENTIAL)
            .setIsStrongBoxBacked(context.packageManager.hasSystemFeature(PackageManager.FEATURE_STRONGBOX_KEYSTORE))
            .build()
        return KeyPairGenerator.getInstance(KeyProperties.KEY_ALGORITHM_EC, "AndroidKeyStore")
            .apply { initialize(spec) }
            .generateKeyPair()
            .private
    }

    override fun publicKey(): ByteArray = try {
        privateKey()
        val w = (keyStore().getCertificate(ALIAS).publicKey as ECPublicKey).w
        // SEC1 uncompressed: 04 ‖ X ‖ Y, 32 bytes each.
        byteArrayOf(4) + fixed32(w.affineX) + fixed32(w.affineY)
    } catch (e: GeneralSecurityException) {
        throw StoreException.Unavailable(e.javaClass.simpleName)
    }

    override suspend fun sign(message: ByteArray): ByteArray {
        val once = suspend {
            withContext(Dispatchers.Default) {
                Signature.getInstance("SHA256withECDSA").run {
                    initSign(privateKey())
                    update(message)
                    sign()
                }
            }
        }
        return try {
            try {
                once()
            } catch (e: UserNotAuthenticatedException) {
                if (!authenticate()) throw StoreException.Cancelled()
                once()
            }
        } catch (e: UserNotAuthenticatedException) {
            throw StoreException.Cancelled()
        } catch (e: GeneralSecurityException) {
            throw StoreException.Unavailable(e.javaClass.simpleName)
        }
    }

    /** Forget the key (the phone is then enrolled again). */
    fun delete() = keyStore().deleteEntry(ALIAS)

    private fun fixed32(v: BigInteger): ByteArray = v.toByteArray().takeLast(32).toByteArray().let { ByteArray(32 - it.size) + it }

    private companion object {
        const val ALIAS = "cie-companion-device"
    }
}
