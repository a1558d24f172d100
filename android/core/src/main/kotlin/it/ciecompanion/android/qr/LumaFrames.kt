// Camera frames to the core's QR scanner, shared by every screen that reads a QR (desktop
// login, enrolment code, OTP link). The core finds and decodes the code; what the text
// means is decided by the flow that receives it.
package it.ciecompanion.android.qr

import it.ciecompanion.core.QrException
import it.ciecompanion.core.scanQrFrame
import java.nio.ByteBuffer

/** What the camera analyser feeds while a screen shows the viewfinder. */
interface LumaFrameSink {
    /** `false` once the screen has what it needs: the analyser drops frames. */
    val wantsFrames: Boolean

    /**
     * One frame's 8-bit luma plane (CameraX `planes[0].buffer`, from its position), rows
     * [rowStride] bytes apart as the camera gave them. Valid only during the call (the
     * analyser closes the image after it). Returns at once when there is no code.
     */
    suspend fun onFrame(width: UInt, height: UInt, rowStride: UInt, luma: ByteBuffer)
}

/**
 * The text of the QR code in a frame, or `null`: no code, or a frame whose size and buffer
 * disagree (one the camera should not have produced: skip it and keep scanning).
 *
 * The core reads the plane in place: UniFFI hands a direct buffer's memory to Rust for the
 * call. It takes the buffer from its base address, so a buffer read part-way is sliced
 * first; a heap buffer (a test's, a decoded still) is copied into a direct one.
 */
fun scanLumaFrame(width: UInt, height: UInt, rowStride: UInt, luma: ByteBuffer): String? = try {
    val plane = when {
        !luma.isDirect -> ByteBuffer.allocateDirect(luma.remaining()).put(luma.duplicate()).also { it.flip() }
        luma.position() != 0 -> luma.slice()
        else -> luma
    }
    scanQrFrame(width, height, rowStride, plane)
} catch (e: QrException) {
    null
}

/** A copy of [bytes] in a direct buffer, as a camera hands planes over (tests, stills). */
fun directPlane(bytes: ByteArray): ByteBuffer = ByteBuffer.allocateDirect(bytes.size).put(bytes).also { it.flip() }
