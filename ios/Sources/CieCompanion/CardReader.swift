// One NFC sheet: NFCTagReaderSession(.iso14443) until a CIE is tapped, then `body` runs
// the core over it. iOS ends a session after ~60 s: the caller opens a new one and the core
// resumes (its flows keep their state across taps). The alert text shows progress.
import CoreNFC
import Foundation
import cie_core

@MainActor
public final class CardReader: NSObject, NFCTagReaderSessionDelegate {
    private var session: NFCTagReaderSession?
    private var continuation: CheckedContinuation<NFCISO7816Tag, Error>?

    /// Shows the sheet with `prompt`, waits for a tag, runs `body`, closes the sheet with
    /// `done` (or the core's message on error, rethrown).
    public func withCard<T>(
        prompt: String,
        done: String,
        _ body: (NFCTransport, _ progress: @escaping (String) -> Void) async throws -> T
    ) async throws -> T {
        let tag: NFCISO7816Tag = try await withCheckedThrowingContinuation { c in
            continuation = c
            session = NFCTagReaderSession(pollingOption: .iso14443, delegate: self, queue: nil)
            session?.alertMessage = prompt
            session?.begin()
        }
        do {
            let result = try await body(NFCTransport(tag: tag)) { [weak self] text in
                Task { @MainActor in self?.session?.alertMessage = text }
            }
            session?.alertMessage = done
            session?.invalidate()
            return result
        } catch let error as FlowError {
            session?.invalidate(errorMessage: coreMessage(error))
            throw error
        } catch {
            session?.invalidate()
            throw error
        }
    }

    public nonisolated func tagReaderSessionDidBecomeActive(_ session: NFCTagReaderSession) {}

    public nonisolated func tagReaderSession(_ session: NFCTagReaderSession, didInvalidateWithError error: Error) {
        Task { @MainActor in
            continuation?.resume(throwing: (error as? NFCReaderError).map(NFCTransport.map) ?? error)
            continuation = nil
        }
    }

    public nonisolated func tagReaderSession(_ session: NFCTagReaderSession, didDetect tags: [NFCTag]) {
        guard case let .iso7816(tag)? = tags.first else {
            session.restartPolling()
            return
        }
        session.connect(to: tags[0]) { error in
            Task { @MainActor in
                if let error {
                    self.continuation?.resume(throwing: error)
                } else {
                    self.continuation?.resume(returning: tag)
                }
                self.continuation = nil
            }
        }
    }
}
