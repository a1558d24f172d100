// The core's CardTransport over a CoreNFC ISO 7816 tag: moves APDUs, nothing else. Every
// protocol rule (chaining, GET RESPONSE, secure messaging, PIN tries) is in the Rust core.
import CoreNFC
import Foundation
import cie_core

public final class NFCTransport: CardTransport, @unchecked Sendable {
    // CoreNFC tags are used from the session's queue only; the core awaits one command at a
    // time, so there is no concurrent use (hence @unchecked Sendable).
    private let tag: NFCISO7816Tag

    public init(tag: NFCISO7816Tag) {
        self.tag = tag
    }

    public func transmit(apdu: Data) async throws -> Data {
        guard let command = NFCISO7816APDU(data: apdu) else {
            throw TransportError.Io(reason: "CoreNFC refused the command encoding")
        }
        do {
            let (data, sw1, sw2) = try await tag.sendCommand(apdu: command)
            return data + Data([sw1, sw2])
        } catch let error as NFCReaderError {
            throw Self.map(error)
        } catch {
            throw TransportError.Io(reason: error.localizedDescription)
        }
    }

    public func info() -> TransportInfo {
        // CoreNFC reports no extended-length capability. NFCISO7816APDU encodes Lc up to
        // 65535 and Le up to 65536 and the CIE supports extended length (PACE DH needs
        // 264-byte commands) [unsure: Apple does not state that every iPhone passes them;
        // to be confirmed on devices].
        TransportInfo(
            kind: .nfc,
            extendedLength: true,
            maxCommandLen: 65_544,
            maxResponseLen: 65_538,
            atr: tag.historicalBytes  // NFC-A historical bytes or nil
        )
    }

    /// Lost tag and expired session both mean "tap again": the core resumes where it stopped.
    static func map(_ error: NFCReaderError) -> TransportError {
        switch error.code {
        case .readerTransceiveErrorTagConnectionLost,
             .readerTransceiveErrorTagNotConnected,
             .readerTransceiveErrorSessionInvalidated,
             .readerSessionInvalidationErrorSessionTimeout,
             .readerSessionInvalidationErrorSessionTerminatedUnexpectedly:
            return .TagLost
        default:
            return .Io(reason: error.localizedDescription)
        }
    }
}
