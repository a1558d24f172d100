// CameraX analyser for every QR the app reads (desktop login, enrolment code, OTP link):
// hands the Y plane with its row stride to the core's scanner through the screen's
// LumaFrameSink. The plane's direct ByteBuffer goes to the core as it is (UniFFI lends a
// direct buffer's memory to Rust for the call: no copy); no per-frame allocation, no RGB
// conversion, no cropping or scaling here — the core decides what to look at.
package it.ciecompanion.app

import androidx.camera.core.ImageAnalysis
import androidx.camera.core.ImageProxy
import it.ciecompanion.android.qr.LumaFrameSink
import kotlinx.coroutines.runBlocking

/** Use with `STRATEGY_KEEP_ONLY_LATEST` and `OUTPUT_IMAGE_FORMAT_YUV_420_888` on its own executor. */
class QrAnalyzer(private val sink: LumaFrameSink) : ImageAnalysis.Analyzer {
    override fun analyze(image: ImageProxy) {
        image.use {
            if (!sink.wantsFrames) return
            val plane = it.planes[0] // Y: pixelStride 1, rowStride ≥ width
            // The analyser's executor is ours: blocking it drops frames, which is what
            // KEEP_ONLY_LATEST wants while a frame is being decoded. The buffer stays valid
            // until `use` closes the image, after the scan.
            runBlocking {
                sink.onFrame(it.width.toUInt(), it.height.toUInt(), plane.rowStride.toUInt(), plane.buffer)
            }
        }
    }
}
