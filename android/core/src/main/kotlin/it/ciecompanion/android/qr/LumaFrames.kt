// Camera frames to the core's QR scanner, shared by every screen that reads a QR (desktop
// login, enrolment code, OTP link). The core finds and decodes the code; what the text
// means is decided by the flow that receives it.
package it.ciecompanion.android.qr

import it.ciecompanion.core.QrException
import it.ciecompanion.core.scanQrFrame

/** What the camera analyser feeds while a screen shows the viewfinder. */
interface LumaFrameSink {
    /** `false` once the screen has what it needs: the analyser drops frames. */
    val wantsFrames: Boolean

    /**
     * One frame's 8-bit luma plane (CameraX `planes[0]`, AVFoundation's Y plane), rows
     * [rowStride] bytes apart as the camera gave them. Returns at once when there is no code.
     */
    suspend fun onFrame(width: UInt, height: UInt, rowStride: UInt, luma: ByteArray)
}

/**
 * The text of the QR code in a frame, or `null`: no code, or a frame whose size and buffer
 * disagree (one the camera should not have produced: skip it and keep scanning).
 */
fun scanLumaFrame(width: UInt, height: UInt, rowStride: UInt, luma: ByteArray): String? = try {
    scanQrFrame(width, height, rowStride, luma)
} catch (e: QrException) {
    null
}
