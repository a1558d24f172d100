// A camera frame of a QR the server drew as SVG (runs `M x y h w v1 h-w z` in module units,
// inside a JSON answer): 4 px a module, off-centre on a grey scene, rows padded to a wider
// stride, as CameraX or AVFoundation hand the luma plane over. Test-only.

/** (width, height, row stride, luma) of the frame: [luma] a direct buffer, as CameraX's plane is. */
data class CameraFrame(val width: UInt, val height: UInt, val rowStride: UInt, val luma: java.nio.ByteBuffer)

fun svgFrame(json: String, scale: Int = 4): CameraFrame {
    val size = Regex("viewBox=\\\\\"0 0 (\\d+) ").find(json)?.groupValues?.get(1)?.toInt() ?: error("no QR SVG in $json")
    val (w, h, stride) = Triple(size * scale + 160, size * scale + 60, size * scale + 160 + 48)
    val luma = ByteArray(stride * h) { 150.toByte() }
    for (y in 0 until size * scale) for (x in 0 until size * scale) luma[(y + 30) * stride + x + 100] = 0xF0.toByte()
    for (run in Regex("M(\\d+) (\\d+)h(\\d+)v1h-").findAll(json)) {
        val (mx, my, mw) = run.destructured.toList().map { it.toInt() }
        for (dy in 0 until scale) for (dx in 0 until mw * scale) {
            luma[(my * scale + dy + 30) * stride + mx * scale + dx + 100] = 0x10
        }
    }
    return CameraFrame(w.toUInt(), h.toUInt(), stride.toUInt(), it.ciecompanion.android.qr.directPlane(luma))
}
