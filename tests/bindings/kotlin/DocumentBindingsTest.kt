// Kotlin/JVM binding test of the document reader: the virtual CIE over an NFC-like link with
// extended length (as Android's IsoDep reports it), PACE with the CAN, the photo, and the
// passive-authentication verdict; a wrong CAN as a typed exception with its Italian message.

import it.ciecompanion.core.CardException
import it.ciecompanion.core.CardTransport
import it.ciecompanion.core.CloneStatus
import it.ciecompanion.core.DocumentListener
import it.ciecompanion.core.DocumentReader
import it.ciecompanion.core.ImageFormat
import it.ciecompanion.core.TransportInfo
import it.ciecompanion.core.TransportKind
import it.ciecompanion.core.cardErrorMessageIt
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withContext
import org.junit.jupiter.api.Test
import uniffi.card_sim.SimCard
import uniffi.card_sim.testCscaDer
import kotlin.test.assertContains
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue

/** The virtual card as an NFC link with extended length (1 KiB answers). */
class NfcSimTransport(private val sim: SimCard) : CardTransport {
    override suspend fun transmit(apdu: ByteArray): ByteArray = withContext(Dispatchers.IO) { sim.transmit(apdu) }

    override fun info() = TransportInfo(
        kind = TransportKind.NFC,
        extendedLength = true,
        maxCommandLen = 1030u,
        maxResponseLen = 1026u,
        atr = null,
    )
}

class PhotoProgress : DocumentListener {
    val files = ArrayList<String>()
    override fun onProgress(name: String, done: ULong, total: ULong) {
        files.add(name)
    }
}

class DocumentBindingsTest {
    @Test
    fun readTheVirtualCieWithTheCan(): Unit = runBlocking {
        val progress = PhotoProgress()
        val reader = DocumentReader.withCan("123456", listOf(testCscaDer()))
        val doc = reader.tap(NfcSimTransport(SimCard.cieExtended()), progress)
        assertTrue(doc.pace)
        assertEquals("CA00000AA", doc.documentNumber)
        assertEquals("TESTER", doc.surname)
        assertEquals("TSTTST80A01H501X", doc.codiceFiscale)
        val portrait = doc.portrait!!
        assertEquals(ImageFormat.JPEG2000, portrait.format)
        assertEquals(60u, portrait.width)
        assertEquals(60 * 80 * 3, portrait.rgb.size)
        assertTrue(doc.verification.genuine)
        assertEquals(CloneStatus.VERIFIED, doc.verification.chipAuthentication)
        assertTrue("DG2" in progress.files)
    }

    @Test
    fun wrongCanIsTyped(): Unit = runBlocking {
        val reader = DocumentReader.withCan("654321", emptyList())
        val e = assertFailsWith<CardException.WrongCan> { reader.tap(NfcSimTransport(SimCard.cieExtended()), null) }
        assertContains(cardErrorMessageIt(e), "CAN errato")
    }
}
