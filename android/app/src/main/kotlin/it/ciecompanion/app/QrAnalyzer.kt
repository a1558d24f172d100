// CameraX analyser for the desktop-login QR: hands the Y plane with its row stride to the
// core's scanner (through DesktopQrModel). The plane's direct ByteBuffer is copied once into
// a reused array (UniFFI passes bytes, not buffers); no per-frame allocation, no RGB
// conversion, no cropping or scaling here — the core decides what to look at.
package it.ciecompanion.app

import androidx.camera.core.ImageAnalysis
import androidx.camera.core.ImageProxy
import it.ciecompanion.android.desktop.DesktopQrModel
import it.ciecompanion.android.desktop.DesktopQrState
import kotlinx.coroutines.runBlocking

/** Use with `STRATEGY_KEEP_ONLY_LATEST` and `OUTPUT_IMAGE_FORMAT_YUV_420_888` on its own executor. */
class QrAnalyzer(private val model: DesktopQrModel) : ImageAnalysis.Analyzer {
    private var luma = ByteArray(0)

    override fun analyze(image: ImageProxy) {
        image.use {
            if (model.state.value !is DesktopQrState.Scanning) return
            val plane = it.planes[0] // Y: pixelStride 1, rowStride ≥ width
            val buffer = plane.buffer
            val size = buffer.remaining()
            if (luma.size != size) luma = ByteArray(size)
            buffer.get(luma)
            // The analyser's executor is ours: blocking it drops frames, which is what
            // KEEP_ONLY_LATEST wants while a frame is being decoded.
            runBlocking {
                model.onFrame(it.width.toUInt(), it.height.toUInt(), plane.rowStride.toUInt(), luma)
            }
        }
    }
}
