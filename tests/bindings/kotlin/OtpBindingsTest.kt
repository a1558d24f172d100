// Kotlin/JVM binding test of one-time codes: tokens saved through a Kotlin `SecretStore`
// (MemoryStore, CoreBindingsTest.kt), codes checked against RFC 6238 App. B and RFC 4226
// App. D, refusals arriving as typed `OtpException`s with Italian messages.

import it.ciecompanion.core.OtpException
import it.ciecompanion.core.OtpKind
import it.ciecompanion.core.OtpVault
import it.ciecompanion.core.Protection
import it.ciecompanion.core.UriWarning
import it.ciecompanion.core.otpCodeForUri
import it.ciecompanion.core.otpErrorMessageIt
import it.ciecompanion.core.otpInspectUri
import org.junit.jupiter.api.Test
import kotlin.test.assertContains
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue

private const val SEED_B32 = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ" // "12345678901234567890"

class OtpBindingsTest {
    @Test
    fun addTokenAndGetRfc6238Codes(): Unit {
        val store = MemoryStore()
        val vault = OtpVault(store)
        val added = vault.addUri("otpauth://totp/INPS:mario.rossi?secret=$SEED_B32&digits=8&issuer=INPS")
        assertEquals("INPS:mario.rossi", added.token.id)
        assertEquals(OtpKind.Totp(30uL, 0uL), added.token.kind)
        // RFC 6238 App. B, SHA-1: 59 → 94287082, 1111111109 → 07081804, 20000000000 → 65353130.
        assertEquals("94287082", vault.code("INPS", 59uL).code)
        val c = vault.code("mario.rossi", 1111111109uL)
        assertEquals("07081804", c.code)
        assertEquals(1uL, c.secondsRemaining)
        assertEquals("65353130", vault.code("INPS:mario.rossi", 20000000000uL).code)
        val (seed, protection) = store.values.getValue("otp/INPS:mario.rossi/secret")
        assertContentEquals("12345678901234567890".toByteArray(), seed)
        assertEquals(Protection.DEVICE_ONLY, protection)
    }

    @Test
    fun hotpCountsThroughRfc4226(): Unit {
        val vault = OtpVault(MemoryStore())
        vault.addUri("otpauth://hotp/Lab:bench?secret=$SEED_B32&counter=0")
        val codes = (0 until 4).map { vault.code("Lab", 0uL).code }
        assertEquals(listOf("755224", "287082", "359152", "969429"), codes)
    }

    @Test
    fun refusalsAreTypedAndSayWhatToDo(): Unit {
        val e = assertFailsWith<OtpException.UnsupportedAlgorithm> {
            otpCodeForUri("otpauth://totp/x?secret=$SEED_B32&algorithm=MD5", 59uL)
        }
        assertEquals("MD5", e.name)
        assertContains(otpErrorMessageIt(e), "non supportato")
        assertFailsWith<OtpException.SecretTooShort> { otpCodeForUri("otpauth://totp/x?secret=MFRGGZDFMZTWQ2I", 0uL) }
        val info = otpInspectUri("otpauth://totp/x?secret=MFRGGZDFMZTWQ2LK")
        assertEquals(listOf<UriWarning>(UriWarning.ShortSecret(80u)), info.warnings)
        assertTrue(info.secretBits == 80u)
        // SHA-256 with RFC 6238's 32-byte seed, at 1234567890 → 91819424.
        val sha256 = "otpauth://totp/x?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA====&algorithm=SHA256&digits=8"
        assertEquals("91819424", otpCodeForUri(sha256, 1234567890uL).code)
    }
}
