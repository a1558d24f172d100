// IsoDepTransport against the virtual CIE through the real core library (JNA), with the
// android.nfc stubs in android/stubs standing in for the platform: what Android's IsoDep
// does (connect, timeout, tag lost, length limits) is what the stubs do.

import android.nfc.Tag
import android.nfc.tech.IsoDep
import it.ciecompanion.android.nfc.IsoDepTransport
import it.ciecompanion.core.CardException
import it.ciecompanion.core.CieLogin
import it.ciecompanion.core.DigestAlgorithm
import it.ciecompanion.core.DocumentReader
import it.ciecompanion.core.TransportException
import it.ciecompanion.core.TransportKind
import it.ciecompanion.core.Language
import it.ciecompanion.core.cardErrorMessage
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Test
import uniffi.card_sim.SimCard
import uniffi.card_sim.testCscaDer
import kotlin.test.assertContains
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNotNull
import kotlin.test.assertTrue

private val CHALLENGE = "nonce fetched from the server before the tap".toByteArray()

/** NFC-A historical bytes as a CIE's ATS carries them (synthetic). */
private val HISTORICAL = byteArrayOf(0x80.toByte(), 0x01, 0x80.toByte(), 0x31)

/** A tag in the field holding [sim]; it leaves the field after [lostAfter] APDUs (0: never). */
fun tagOf(sim: SimCard, extended: Boolean = true, lostAfter: Int = 0): Tag {
    var sent = 0
    return Tag(
        connectTo = { apdu ->
            sent += 1
            if (lostAfter in 1..<sent) null else sim.transmit(apdu)
        },
        historicalBytes = HISTORICAL,
        extendedLength = extended,
    )
}

class IsoDepTransportTest {
    @Test
    fun readsTheCieDocumentOverAnExtendedLengthLink(): Unit = runBlocking {
        val transport = assertNotNull(IsoDepTransport.of(tagOf(SimCard.cieExtended())))
        val info = transport.info()
        assertEquals(TransportKind.NFC, info.kind)
        assertTrue(info.extendedLength)
        assertEquals(65279u, info.maxCommandLen)
        assertContentEquals(HISTORICAL, info.atr)
        val doc = DocumentReader.withCan("123456", listOf(testCscaDer())).tap(transport, null)
        assertEquals("TSTTST80A01H501X", doc.codiceFiscale)
        assertTrue(doc.verification.genuine)
    }

    @Test
    fun signsOverAShortLinkAndSetsAGenerousTimeout(): Unit = runBlocking {
        val tag = tagOf(SimCard.cie(), extended = false)
        val isoDep = assertNotNull(IsoDep.get(tag))
        val transport = IsoDepTransport(isoDep)
        assertEquals(IsoDepTransport.TIMEOUT_MS, isoDep.getTimeout())
        assertEquals(261u, transport.info().maxCommandLen)
        assertEquals(258u, transport.info().maxResponseLen)
        // Not connected yet: the first command connects.
        val login = CieLogin(CHALLENGE, DigestAlgorithm.SHA256, "12345678", null, false)
        val result = login.tap(transport, null)
        assertEquals("TSTTST80A01H501X", result.codiceFiscale)
        assertTrue(isoDep.isConnected())
    }

    @Test
    fun aTagLostMidLoginIsTypedAndTheNextTapResumes(): Unit = runBlocking {
        val sim = SimCard.cieExtended()
        val login = CieLogin(CHALLENGE, DigestAlgorithm.SHA256, "12345678", null, false)
        val e = assertFailsWith<CardException.TagLost> {
            login.tap(IsoDepTransport.of(tagOf(sim, lostAfter = 25))!!, null)
        }
        assertContains(cardErrorMessage(e, Language.IT), "avvicina")
        assertContains(cardErrorMessage(e, Language.EN), "hold it against the phone again")
        // The same card tapped again: a new Tag object, as Android delivers it.
        val result = login.tap(IsoDepTransport.of(tagOf(sim))!!, null)
        assertEquals(256, result.signature.size)
    }

    @Test
    fun androidExceptionsBecomeTheCoresTypedErrors(): Unit = runBlocking {
        val isoDep = IsoDep.get(tagOf(SimCard.cie(), lostAfter = 1))!!
        val transport = IsoDepTransport(isoDep)
        transport.transmit(byteArrayOf(0x00, 0xA4.toByte(), 0x00, 0x0C))
        // TagLostException → TagLost.
        assertFailsWith<TransportException.TagLost> { transport.transmit(byteArrayOf(0x00, 0xB0.toByte(), 0, 0, 0)) }
        // A card slower than the timeout: Android's IOException("Transceive failed") → Io.
        val slow = IsoDep.get(tagOf(SimCard.cie()))!!
        val slowTransport = IsoDepTransport(slow)
        slow.simulatedLatencyMs = IsoDepTransport.TIMEOUT_MS + 1
        val io = assertFailsWith<TransportException.Io> { slowTransport.transmit(byteArrayOf(0x00, 0xA4.toByte(), 0x00, 0x0C)) }
        assertContains(io.reason, "Transceive failed")
        // A command above the link's maximum: Android refuses it; Io, not a crash.
        val short = IsoDepTransport(IsoDep.get(tagOf(SimCard.cie(), extended = false))!!)
        assertFailsWith<TransportException.Io> { short.transmit(ByteArray(300)) }
        // After close() the next command reconnects (a new tap of the same tag object).
        val again = IsoDep.get(tagOf(SimCard.cie()))!!
        val t = IsoDepTransport(again)
        t.close()
        t.transmit(byteArrayOf(0x00, 0xA4.toByte(), 0x00, 0x0C))
        assertTrue(again.isConnected())
    }
}
