// What the app keeps: one client of its server, the Keychain store, and this phone's
// enrolment (the Secure Enclave key's wrapped handle in the Keychain, device-only; the
// device id and holder's name in UserDefaults: not secret).
import Foundation
import UIKit
import cie_core

@MainActor
public final class AppModel: ObservableObject {
    public struct Device {
        public let origin: String
        public let deviceId: String
        public let holder: String
        public let signer: SecureEnclaveSigner
    }

    public let client: CompanionClient
    public let origin: String
    public let store: KeychainSecretStore
    public let deviceName: String
    @Published public private(set) var device: Device?
    /// Set when the enrolment could not be kept (the Keychain refused the key handle).
    @Published public var problem: String?
    private let defaults = UserDefaults.standard
    private static let keyBlob = "device-key"

    /// `origin` and `pin`: the server and its key pin, set per build.
    public init(origin: String, pin: String) throws {
        self.origin = origin
        deviceName = UIDevice.current.name
        store = KeychainSecretStore()
        // Requests go through URLSession (URLSessionHttps), its TLS trusting only the key the
        // core's check accepts.
        let keys = try ServerKeyCheck(pins: [pin])
        client = try CompanionClient.withHttpsTransport(origins: [origin], serverKeys: keys, store: store,
                                                        transport: URLSessionHttps(check: keys))
        if let id = defaults.string(forKey: "device_id"),
           let blob = try? store.load(name: Self.keyBlob),
           let signer = try? SecureEnclaveSigner(keyBlob: blob) {
            device = Device(origin: defaults.string(forKey: "device_origin") ?? origin, deviceId: id,
                            holder: defaults.string(forKey: "device_holder") ?? "", signer: signer)
        }
    }

    /// A new Secure Enclave key for an enrolment; kept once the server has enrolled it.
    public func newSigner() throws -> SecureEnclaveSigner {
        try SecureEnclaveSigner.create()
    }

    public func enrolled(_ enrolled: EnrolledDevice, signer: SecureEnclaveSigner) {
        do {
            try store.save(name: Self.keyBlob, value: signer.keyBlob, protection: .deviceOnly)
        } catch {
            problem = L("enrol_not_kept")
            return
        }
        let holder = "\(enrolled.identity.givenName) \(enrolled.identity.surname)"
        defaults.set(enrolled.deviceId, forKey: "device_id")
        defaults.set(enrolled.origin, forKey: "device_origin")
        defaults.set(holder, forKey: "device_holder")
        device = Device(origin: enrolled.origin, deviceId: enrolled.deviceId, holder: holder, signer: signer)
    }

    public func forgetDevice() {
        try? store.remove(name: Self.keyBlob)
        for key in ["device_id", "device_origin", "device_holder"] { defaults.removeObject(forKey: key) }
        device = nil
    }
}
