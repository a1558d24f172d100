// The screens' models, the Swift twins of the Android shell's platform-independent Kotlin
// (android/core/src/main/kotlin/…): desktop QR login, approvals inbox, enrolment with the
// card or a code, one-time codes. Every rule is the core's (what follows a refusal:
// cardTapStep, desktopQrStep, enrolmentCodeStep, approvalStep; countdowns on the server's
// clock: client.countdown); these only keep what the screen shows.
import Foundation
import cie_core

/// The phone-tap login: the challenge is fetched before the NFC sheet.
@MainActor
public final class CardLoginModel: ObservableObject {
    @Published public private(set) var tap: CardTap<CardLoginResult>?
    @Published public private(set) var failure: String?

    public init(client: CompanionClient, origin: String) {
        Task {
            do {
                let session = try await client.startCardLogin(origin: origin)
                tap = CardTap(
                    run: { transport, pin, progress in try await session.tap(transport: transport, pin: pin, progress: progress) },
                    confirm: { try session.confirmLastTry() }
                )
            } catch let e as FlowError {
                failure = coreMessage(e)
            } catch {
                failure = error.localizedDescription
            }
        }
    }
}

/// "Accedi su un computer": QR → who asks → approve (card or this phone's key) or deny → code.
@MainActor
public final class DesktopLogin: ObservableObject {
    public enum State {
        case scanning(hint: String?)
        case claiming
        /// `deviceAllowed` is false when the service asked for the card (level 3).
        case review(LoginContext, expiresAt: UInt64, deviceAllowed: Bool)
        case withCard(CardTap<DesktopCode>)
        case approving
        case code(DesktopCode)
        case denied
        case failed(String)
    }

    @Published public private(set) var state: State = .scanning(hint: nil)
    private let client: CompanionClient
    private let deviceName: String
    private let deviceId: String?
    private var session: DesktopSession?
    // The last QR refused while the camera stays on: it keeps seeing it.
    private var refused: String?

    public init(client: CompanionClient, deviceName: String, deviceId: String?) {
        self.client = client
        self.deviceName = deviceName
        self.deviceId = deviceId
    }

    /// A QR text from the camera.
    public func onText(_ text: String) {
        guard case .scanning = state, text != refused else { return }
        state = .claiming
        Task {
            do {
                let s = try await client.claimDesktopQr(qrText: text, deviceName: deviceName, deviceId: deviceId)
                session = s
                let context = try s.context()
                let expiresAt = try s.expiresAt()
                let deviceAllowed = try s.deviceApprovalAllowed()
                state = .review(context, expiresAt: expiresAt, deviceAllowed: deviceAllowed)
            } catch let e as FlowError {
                switch desktopQrStep(error: e) {
                case .scanAgain:
                    refused = text
                    state = .scanning(hint: coreMessage(e))
                case .stop:
                    state = .failed(coreMessage(e))
                }
            } catch {
                state = .failed(coreMessage(error))
            }
        }
    }

    /// "Approva": the PIN (last 4 digits on a paired card), then the sheet.
    public func approveWithCard() {
        guard let s = session, case .review = state else { return }
        let tap = CardTap<DesktopCode>(
            run: { transport, pin, progress in try await s.approveWithCard(transport: transport, pin: pin, progress: progress) },
            confirm: { try s.confirmLastTry() }
        )
        state = .withCard(tap)
        // The card challenge is fetched while the user types the PIN.
        Task { try? await s.prepareCardApproval() }
    }

    /// The card step finished: show its code.
    public func cardDone(_ code: DesktopCode) {
        state = .code(code)
    }

    /// "Approva con questo telefono": the Secure Enclave asks for Face ID.
    public func approveWithDevice(deviceId: String, signer: DeviceSigner) {
        guard let s = session, case .review = state else { return }
        state = .approving
        Task {
            do {
                state = .code(try await s.approveWithDevice(deviceId: deviceId, signer: signer))
            } catch {
                state = .failed(coreMessage(error))
            }
        }
    }

    /// "Nega, non sono stato io": denied and reported as a possible phishing.
    public func deny() {
        guard let s = session else { return }
        Task {
            do {
                try await s.deny(report: true)
                state = .denied
            } catch {
                state = .failed(coreMessage(error))
            }
        }
    }
}

/// "Richieste di accesso": pending logins for this enrolled phone, number matching.
@MainActor
public final class ApprovalsInbox: ObservableObject {
    public enum State {
        case loading
        case items([PendingApprovalInfo])
        case approved
        case denied
        case wrongNumber(String)
        case failed(String)
    }

    @Published public private(set) var state: State = .loading
    private let client: CompanionClient
    private let origin: String
    private let deviceId: String
    private let signer: DeviceSigner

    public init(client: CompanionClient, origin: String, deviceId: String, signer: DeviceSigner) {
        self.client = client
        self.origin = origin
        self.deviceId = deviceId
        self.signer = signer
    }

    public func refresh() {
        state = .loading
        Task {
            do {
                state = .items(try await client.pendingApprovals(origin: origin, deviceId: deviceId, signer: signer))
            } catch {
                state = .failed(coreMessage(error))
            }
        }
    }

    /// The number the user picked among `item.choices` (the computer shows one of them).
    public func approve(_ item: PendingApprovalInfo, number: UInt8) {
        decide(item, .approve, number)
    }

    public func deny(_ item: PendingApprovalInfo) {
        decide(item, .deny, nil)
    }

    private func decide(_ item: PendingApprovalInfo, _ decision: Decision, _ number: UInt8?) {
        Task {
            do {
                try await client.decideApproval(
                    approval: item, deviceId: deviceId, signer: signer, decision: decision, number: number
                )
                state = decision == .approve ? .approved : .denied
            } catch let e as FlowError {
                switch approvalStep(error: e) {
                case .wrongNumber: state = .wrongNumber(coreMessage(e))
                case .stop: state = .failed(coreMessage(e))
                }
            } catch {
                state = .failed(coreMessage(error))
            }
        }
    }
}

/// "Registra questo telefono": with the CIE (PIN + tap) or the page's one-time code.
@MainActor
public final class Enrolment: ObservableObject {
    public enum State {
        case choose
        case starting
        case withCard(CardTap<EnrolledDevice>)
        /// Camera and a field for the code; `message` after a refused code.
        case waitingForCode(message: String?)
        case enrolling
        case done(EnrolledDevice)
        case failed(String)
    }

    @Published public private(set) var state: State = .choose
    private let client: CompanionClient
    private let origin: String
    private let signer: DeviceSigner
    private let deviceName: String
    private let saved: @MainActor (EnrolledDevice) -> Void
    // The code the server refused: the camera keeps seeing its QR.
    private var refused: String?

    public init(client: CompanionClient, origin: String, signer: DeviceSigner, deviceName: String,
                saved: @escaping @MainActor (EnrolledDevice) -> Void) {
        self.client = client
        self.origin = origin
        self.signer = signer
        self.deviceName = deviceName
        self.saved = saved
    }

    public func withCard() {
        state = .starting
        Task {
            do {
                let session = try await client.startDeviceEnrollment(origin: origin, signer: signer, deviceName: deviceName)
                state = .withCard(CardTap(
                    run: { transport, pin, progress in try await session.tap(transport: transport, pin: pin, progress: progress) },
                    confirm: { try session.confirmLastTry() }
                ))
            } catch {
                state = .failed(coreMessage(error))
            }
        }
    }

    public func withCode() {
        refused = nil
        state = .waitingForCode(message: nil)
    }

    /// The card step finished.
    public func cardDone(_ device: EnrolledDevice) {
        saved(device)
        state = .done(device)
    }

    /// A scanned code (skipped when it is the one just refused) or a typed one.
    public func submit(_ code: String, scanned: Bool) {
        guard case .waitingForCode = state, !(scanned && code == refused) else { return }
        state = .enrolling
        Task {
            do {
                let device = try await client.enrollDeviceWithCode(
                    origin: origin, code: code, signer: signer, deviceName: deviceName
                )
                saved(device)
                state = .done(device)
            } catch let e as FlowError {
                switch enrolmentCodeStep(error: e) {
                case .scanAgain:
                    // The code itself was refused: the message says to ask the page for a new one.
                    refused = code
                    state = .waitingForCode(message: coreMessage(e))
                case .stop:
                    state = .failed(coreMessage(e))
                }
            } catch {
                state = .failed(coreMessage(error))
            }
        }
    }

    public func back() {
        state = .choose
    }
}

/// "Codici": the vault's tokens and their codes; add from a scanned or pasted link.
@MainActor
public final class OtpCodes: ObservableObject {
    public struct Row: Identifiable {
        public let token: OtpToken
        public let code: String?
        public let secondsRemaining: UInt64?
        public var id: String { token.id }
    }

    @Published public private(set) var rows: [Row] = []
    @Published public private(set) var scanning = false
    @Published public var message: String?
    private let vault: OtpVault
    private var refused: String?

    public init(store: SecretStore) {
        vault = OtpVault(store: store)
    }

    private var now: UInt64 { UInt64(Date().timeIntervalSince1970) }

    /// Every second while shown. HOTP codes only on request (`next`): computing one advances its counter.
    public func tick() {
        do {
            rows = try vault.list().map { token in
                if case .totp = token.kind {
                    let c = try vault.code(name: token.id, deviceUnix: now)
                    return Row(token: token, code: c.code, secondsRemaining: c.secondsRemaining)
                }
                return Row(token: token, code: nil, secondsRemaining: nil)
            }
        } catch {
            fail(error)
        }
    }

    public func next(_ id: String) -> String? {
        do {
            return try vault.code(name: id, deviceUnix: now).code
        } catch {
            fail(error)
            return nil
        }
    }

    @discardableResult
    public func add(_ uri: String) -> Bool {
        do {
            _ = try vault.addUri(uri: uri)
            scanning = false
            message = nil
            tick()
            return true
        } catch {
            fail(error)
            return false
        }
    }

    /// A text from the camera; the one just refused is not tried again.
    public func scanned(_ text: String) {
        guard scanning, text != refused else { return }
        if !add(text) { refused = text }
    }

    public func remove(_ id: String) {
        do {
            try vault.remove(name: id)
            tick()
        } catch {
            fail(error)
        }
    }

    public func startScan() {
        refused = nil
        message = nil
        scanning = true
    }

    public func stopScan() {
        scanning = false
    }

    private func fail(_ error: Error) {
        message = (error as? OtpError).map { otpErrorMessage(error: $0, language: coreLanguage) } ?? error.localizedDescription
    }
}

/// Which of the two PIN operations a `CardPinChange` runs.
public enum PinChangeKind: Identifiable { case unblockWithPuk, changePin; public var id: Self { self } }

/// "Sblocca carta" (PUK + new PIN) and "Cambia PIN" (current PIN + new PIN), mirroring the
/// Android shell's `CardPinChange`: the form's codes, then one tap through `CardTap`. The core
/// checks every rule (8 digits, typed twice the same, not a run, the PUK's tries, the last try
/// confirmed) and forgets this card's pairing in `store` before the PIN changes.
@MainActor
public final class CardPinChange {
    public let kind: PinChangeKind
    public private(set) var tap: CardTap<Void>!
    // The form's codes, held from "OK" to the tap that uses them.
    private var codes: (String, String, String)?
    private var confirmed = false

    public init(kind: PinChangeKind, store: SecretStore?) {
        self.kind = kind
        tap = CardTap<Void>(
            run: { [unowned self] transport, _, _ in
                guard let codes = self.codes else { throw FlowError.Card(error: .PinNeeded) }
                let (code, newPin, again) = codes
                do {
                    switch self.kind {
                    case .unblockWithPuk:
                        try await unblockCardPin(transport: transport, puk: code, newPin: newPin, newPinAgain: again, lastTryConfirmed: self.confirmed, store: store)
                    case .changePin:
                        try await changeCardPin(transport: transport, oldPin: code, newPin: newPin, newPinAgain: again, lastTryConfirmed: self.confirmed, store: store)
                    }
                    self.codes = nil
                } catch let e as CardError {
                    throw FlowError.Card(error: e)
                }
            },
            confirm: { [unowned self] in self.confirmed = true }
        )
    }

    /// The form's OK: the PUK (unblock) or the current PIN (change), the new PIN typed twice.
    public func submit(code: String, newPin: String, newPinAgain: String) {
        codes = (code, newPin, newPinAgain)
        confirmed = false
        tap.submitPin(code)
    }
}
