// The viewfinder of every QR screen (desktop login, enrolment code, OTP link): AVFoundation
// video frames in the camera's native bi-planar YUV, the Y plane handed to the core's
// scanner as it lies in memory (base address + bytesPerRow, no conversion, no crop). The
// core finds and decodes the code; what the text means is decided by the flow receiving it.
import AVFoundation
import SwiftUI
import UIKit
import cie_core

/// Runs the capture session and scans frames on its own serial queue; found texts go to
/// `onText` on the main actor. Late frames are dropped while one is being scanned.
public final class QRCamera: NSObject, AVCaptureVideoDataOutputSampleBufferDelegate, @unchecked Sendable {
    public let session = AVCaptureSession()
    private let queue = DispatchQueue(label: "it.ciecompanion.qr-camera")
    private let onText: @MainActor (String) -> Void
    // The last text handed over: a code stays in view for many frames.
    private var last: String?

    public init(onText: @escaping @MainActor (String) -> Void) {
        self.onText = onText
        super.init()
    }

    /// Asks for the camera (Info.plist NSCameraUsageDescription) and starts; `false` when refused.
    public func start() async -> Bool {
        guard await AVCaptureDevice.requestAccess(for: .video) else { return false }
        return await withCheckedContinuation { done in
            queue.async {
                if !self.session.isRunning, self.session.inputs.isEmpty, !self.configure() {
                    done.resume(returning: false)
                    return
                }
                self.last = nil
                self.session.startRunning()
                done.resume(returning: true)
            }
        }
    }

    public func stop() {
        queue.async { self.session.stopRunning() }
    }

    private func configure() -> Bool {
        guard let device = AVCaptureDevice.default(.builtInWideAngleCamera, for: .video, position: .back),
              let input = try? AVCaptureDeviceInput(device: device) else { return false }
        session.beginConfiguration()
        defer { session.commitConfiguration() }
        // 1280×720 is plenty for a QR on a screen and keeps each scan short.
        session.sessionPreset = .hd1280x720
        let output = AVCaptureVideoDataOutput()
        // Full-range bi-planar 4:2:0: plane 0 is the 8-bit luma the core reads.
        output.videoSettings = [
            kCVPixelBufferPixelFormatTypeKey as String: kCVPixelFormatType_420YpCbCr8BiPlanarFullRange,
        ]
        output.alwaysDiscardsLateVideoFrames = true
        output.setSampleBufferDelegate(self, queue: queue)
        guard session.canAddInput(input), session.canAddOutput(output) else { return false }
        session.addInput(input)
        session.addOutput(output)
        return true
    }

    public func captureOutput(_ output: AVCaptureOutput, didOutput sampleBuffer: CMSampleBuffer, from connection: AVCaptureConnection) {
        guard let pixels = CMSampleBufferGetImageBuffer(sampleBuffer) else { return }
        guard CVPixelBufferLockBaseAddress(pixels, .readOnly) == kCVReturnSuccess else { return }
        defer { CVPixelBufferUnlockBaseAddress(pixels, .readOnly) }
        guard CVPixelBufferGetPlaneCount(pixels) >= 1,
              let base = CVPixelBufferGetBaseAddressOfPlane(pixels, 0) else { return }
        let width = CVPixelBufferGetWidthOfPlane(pixels, 0)
        let height = CVPixelBufferGetHeightOfPlane(pixels, 0)
        let rowStride = CVPixelBufferGetBytesPerRowOfPlane(pixels, 0)
        // The plane's memory as Data without a copy (valid while the buffer is locked, i.e.
        // for this call). `scanQrFrame` borrows it (`&[u8]` in Rust): UniFFI lends the bytes
        // inside `Data.withUnsafeBytes` for the call, no copy on either side.
        let luma = Data(bytesNoCopy: base, count: rowStride * height, deallocator: .none)
        // A frame the core refuses (size and buffer disagree) is skipped like one without a code.
        guard let text = try? scanQrFrame(
            width: UInt32(width), height: UInt32(height), rowStride: UInt32(rowStride), luma: luma
        ), text != last else { return }
        last = text
        let deliver = onText
        Task { @MainActor in deliver(text) }
    }
}

/// The camera's preview layer in SwiftUI; starts the camera when shown, stops it when gone.
public struct QRCameraView: UIViewRepresentable {
    let camera: QRCamera

    public init(camera: QRCamera) {
        self.camera = camera
    }

    public final class PreviewView: UIView {
        override public class var layerClass: AnyClass { AVCaptureVideoPreviewLayer.self }
        var preview: AVCaptureVideoPreviewLayer { layer as! AVCaptureVideoPreviewLayer }
    }

    public func makeUIView(context: Context) -> PreviewView {
        let view = PreviewView()
        view.preview.session = camera.session
        view.preview.videoGravity = .resizeAspectFill
        return view
    }

    public func updateUIView(_ uiView: PreviewView, context: Context) {}
}

/// The viewfinder with its permission handling, for any screen that reads a QR.
struct QRScanner: View {
    let onText: @MainActor (String) -> Void
    @State var camera: QRCamera?
    @State var refused = false

    var body: some View {
        Group {
            if refused {
                Text(L("camera_needed"))
            } else if let camera {
                QRCameraView(camera: camera)
                    .aspectRatio(3.0 / 4.0, contentMode: .fit)
                    .onDisappear { camera.stop() }
            } else {
                ProgressView()
            }
        }
        .task {
            let c = QRCamera(onText: onText)
            camera = c
            refused = !(await c.start())
        }
    }
}
