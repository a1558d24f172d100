// The one-time codes screen's model through the real core: RFC 6238 codes at a fixed time,
// HOTP only on request, a refused link shows the core's message, remove.
import it.ciecompanion.android.otp.OtpModel
import it.ciecompanion.core.Language
import org.junit.jupiter.api.Test
import kotlin.test.assertEquals
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue

/** RFC 6238 Appendix B's SHA-1 seed "12345678901234567890", base32. */
private const val SEED = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"

class OtpModelTest {
    @Test
    fun codesRefusalsAndRemoval() {
        var now = 59L
        val m = OtpModel(MemoryStore(), Language.EN) { now }
        assertTrue(m.add("otpauth://totp/INPS:mario.rossi?secret=$SEED&digits=8&issuer=INPS"))
        assertTrue(m.add("otpauth://hotp/Lab:bench?secret=$SEED&counter=0"))
        val totp = m.state.value.rows.single { it.token.id == "INPS:mario.rossi" }
        assertEquals("94287082", totp.code) // RFC 6238 App. B, T = 59
        assertEquals(1L, totp.secondsRemaining)
        now = 1111111109L
        m.tick()
        assertEquals("07081804", m.state.value.rows.single { it.token.id == "INPS:mario.rossi" }.code)
        // HOTP: no code until asked (asking advances the counter): RFC 4226 App. D.
        assertNull(m.state.value.rows.single { it.token.id == "Lab:bench" }.code)
        assertEquals("755224", m.next("Lab:bench"))
        assertEquals("287082", m.next("Lab:bench"))
        // A link the core refuses: nothing added, its message shown.
        assertEquals(false, m.add("otpauth://totp/x?secret=NOT*BASE32"))
        assertNotNull(m.state.value.message)
        // In the model's language (English here): the core's words, with what to do next.
        assertTrue(m.state.value.message!!.contains("check it was copied completely"), m.state.value.message)
        assertEquals(2, m.state.value.rows.size)
        m.remove("Lab:bench")
        assertEquals(listOf("INPS:mario.rossi"), m.state.value.rows.map { it.token.id })
    }
}
