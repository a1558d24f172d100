// The core's SecretStore over the iOS Keychain. The core decides what to keep and how it is
// protected; this only maps Protection to Keychain attributes: every item is
// ThisDeviceOnly (never in backups or iCloud), userPresence items need Face ID / Touch ID
// or the passcode each time they are read.
import Foundation
import LocalAuthentication
import Security
import cie_core

public final class KeychainSecretStore: SecretStore, @unchecked Sendable {
    // Stateless apart from the service name; the Keychain serialises access itself.
    private let service: String

    public init(service: String = "it.ciecompanion.secrets") {
        self.service = service
    }

    public func load(name: String) throws -> Data? {
        var query = item(name)
        query[kSecReturnData as String] = true
        query[kSecMatchLimit as String] = kSecMatchLimitOne
        let context = LAContext()
        context.localizedReason = "Sblocca i dati della tua CIE / Unlock your CIE data"
        query[kSecUseAuthenticationContext as String] = context
        var out: CFTypeRef?
        let status = SecItemCopyMatching(query as CFDictionary, &out)
        switch status {
        case errSecSuccess:
            return out as? Data
        case errSecItemNotFound:
            return nil
        case errSecUserCanceled, errSecAuthFailed:
            throw StoreError.Cancelled
        default:
            throw StoreError.Unavailable(reason: "Keychain read: OSStatus \(status)")
        }
    }

    public func save(name: String, value: Data, protection: Protection) throws {
        SecItemDelete(item(name) as CFDictionary)
        var attributes = item(name)
        attributes[kSecValueData as String] = value
        switch protection {
        case .public, .deviceOnly:
            attributes[kSecAttrAccessible as String] = kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly
        case .userPresence:
            var error: Unmanaged<CFError>?
            guard let access = SecAccessControlCreateWithFlags(
                nil, kSecAttrAccessibleWhenPasscodeSetThisDeviceOnly, .userPresence, &error
            ) else {
                throw StoreError.Unavailable(reason: "no passcode set: the PIN digits cannot be kept")
            }
            attributes[kSecAttrAccessControl as String] = access
        }
        let status = SecItemAdd(attributes as CFDictionary, nil)
        guard status == errSecSuccess else {
            throw StoreError.Unavailable(reason: "Keychain write: OSStatus \(status)")
        }
    }

    public func remove(name: String) throws {
        let status = SecItemDelete(item(name) as CFDictionary)
        guard status == errSecSuccess || status == errSecItemNotFound else {
            throw StoreError.Unavailable(reason: "Keychain delete: OSStatus \(status)")
        }
    }

    private func item(_ name: String) -> [String: Any] {
        [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: service,
            kSecAttrAccount as String: name,
        ]
    }
}
