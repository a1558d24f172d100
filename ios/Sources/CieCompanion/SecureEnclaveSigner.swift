// The core's DeviceSigner over a Secure Enclave P-256 key: created on this device, never
// exportable, usable only after Face ID / Touch ID / passcode. Signs ES256 in DER (as
// CryptoKit gives it); the core converts DER to the raw r‖s the protocol sends.
import CryptoKit
import Foundation
import LocalAuthentication
import cie_core

public final class SecureEnclaveSigner: DeviceSigner, @unchecked Sendable {
    // The key handle is immutable; the Secure Enclave serialises its own use.
    private let key: SecureEnclave.P256.Signing.PrivateKey

    /// A new key for enrolment; keep `keyBlob` (an SE-wrapped handle, useless on another
    /// device) in the Keychain to find it again.
    public static func create() throws -> SecureEnclaveSigner {
        var error: Unmanaged<CFError>?
        guard let access = SecAccessControlCreateWithFlags(
            nil, kSecAttrAccessibleWhenPasscodeSetThisDeviceOnly, [.privateKeyUsage, .userPresence], &error
        ) else {
            throw StoreError.Unavailable(reason: "no passcode set: this phone cannot hold a login key")
        }
        do {
            return SecureEnclaveSigner(key: try SecureEnclave.P256.Signing.PrivateKey(accessControl: access))
        } catch {
            throw StoreError.Unavailable(reason: "Secure Enclave: \(error.localizedDescription)")
        }
    }

    /// The key enrolled earlier, from its `keyBlob`.
    public init(keyBlob: Data) throws {
        do {
            key = try SecureEnclave.P256.Signing.PrivateKey(dataRepresentation: keyBlob)
        } catch {
            // A restored backup or a reset Secure Enclave: the phone must be enrolled again.
            throw StoreError.Unavailable(reason: "Secure Enclave key not usable: \(error.localizedDescription)")
        }
    }

    private init(key: SecureEnclave.P256.Signing.PrivateKey) {
        self.key = key
    }

    public var keyBlob: Data { key.dataRepresentation }

    public func publicKey() throws -> Data {
        // SEC1 uncompressed point: 0x04 ‖ X ‖ Y (65 bytes), what the server enrols.
        key.publicKey.x963Representation
    }

    public func sign(message: Data) async throws -> Data {
        do {
            return try key.signature(for: message).derRepresentation
        } catch let error as LAError where error.code == .userCancel || error.code == .appCancel {
            throw StoreError.Cancelled
        } catch {
            throw StoreError.Unavailable(reason: "Secure Enclave: \(error.localizedDescription)")
        }
    }
}
