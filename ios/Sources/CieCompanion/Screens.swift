// SwiftUI screens mirroring the Android app: log in with the CIE, log in on a computer,
// approval requests (or enrolling this phone), one-time codes. Texts from
// Localizable.strings (it, en); the core's messages in the same language (L10n.swift).
import SwiftUI
import cie_core

public struct AppView: View {
    @ObservedObject var app: AppModel

    public init(app: AppModel) {
        self.app = app
    }

    public var body: some View {
        TabView {
            LoginView(client: app.client, origin: app.origin, store: app.store)
                .tabItem { Label(L("tab_login"), systemImage: "person.text.rectangle") }
            DesktopLoginView(app: app)
                .tabItem { Label(L("tab_computer"), systemImage: "desktopcomputer") }
            RequestsView(app: app)
                .tabItem { Label(L("tab_requests"), systemImage: "bell") }
            OtpView(store: app.store)
                .tabItem { Label(L("tab_codes"), systemImage: "lock") }
        }
    }
}

// MARK: - PIN and card

/// Any PIN-and-tap operation: PIN pad, tries-left warning, progress, tap again, last try.
struct CardTapView<T, Done: View>: View {
    @ObservedObject var tap: CardTap<T>
    var pinLabel = L("pin_label")
    @ViewBuilder let done: (T) -> Done
    @State var pin = ""

    var body: some View {
        VStack(alignment: .leading, spacing: 16) {
            switch tap.state {
            case let .enterPin(message, triesLeft):
                if let message { Text(message).foregroundColor(.red) }
                if let triesLeft {
                    Text(triesLeft == 1 ? L("tries_left_one") : L("tries_left_other", triesLeft))
                        .font(.headline).foregroundColor(.red)
                }
                SecureField(pinLabel, text: $pin)
                    .keyboardType(.numberPad)
                    .textContentType(.oneTimeCode)
                    .onChange(of: pin) { v in pin = String(v.filter(\.isNumber).prefix(8)) }
                Button(L("continue")) {
                    tap.submitPin(pin)
                    pin = ""
                }
                // 8 digits, or the last 4 on a paired card: the core says which it needs.
                .disabled(pin.count != 4 && pin.count != 8)
                .buttonStyle(.borderedProminent)
            case .waitForCard:
                Text(L("tap_card_ios")).font(.headline)
            case let .reading(_, percent):
                Text(L("reading_card"))
                ProgressView(value: Double(percent), total: 100)
                Text(L("keep_card_still"))
            case let .tapAgain(message):
                if !message.isEmpty { Text(message) }
                Button(L("tap_again")) { tap.tap() }.buttonStyle(.borderedProminent)
            case let .confirmLastTry(message):
                Text(message).foregroundColor(.red)
                HStack {
                    Button(L("no")) { tap.cancelLastTry() }.buttonStyle(.bordered)
                    Button(L("yes_try")) { tap.confirmLastTry() }.buttonStyle(.borderedProminent)
                }
            case let .done(value):
                done(value)
            case let .pinBlocked(message):
                Text(message).font(.headline).foregroundColor(.red)
                Text(L("pin_blocked_help"))
            case let .failed(message):
                Text(message).foregroundColor(.red)
            }
        }
    }
}

struct LoginView: View {
    @StateObject var model: CardLoginModel
    let store: SecretStore
    @State private var pinChange: PinChangeKind?

    // The login session (and its network call) starts once per view, not per redraw.
    init(client: CompanionClient, origin: String, store: SecretStore) {
        _model = StateObject(wrappedValue: CardLoginModel(client: client, origin: origin))
        self.store = store
    }

    var body: some View {
        ScrollView {
            VStack(alignment: .leading, spacing: 16) {
                Text(L("login_title")).font(.title2)
                if let tap = model.tap {
                    CardTapView(tap: tap) { r in
                        Text(L("logged_in", "\(r.identity.givenName) \(r.identity.surname)", Int(r.level))).font(.title3)
                    }
                } else if let failure = model.failure {
                    Text(failure).foregroundColor(.red)
                } else {
                    ProgressView()
                }
                // A blocked PIN is unblocked here, with the PUK; the PIN can be changed any time.
                HStack {
                    Button(L("unblock_title")) { pinChange = .unblockWithPuk }
                    Button(L("change_pin_title")) { pinChange = .changePin }
                }
            }.padding(24)
        }
        .sheet(item: $pinChange) { kind in PinChangeView(model: CardPinChange(kind: kind, store: store)) }
    }
}

/// "Sblocca carta" / "Cambia PIN": the form, then the same tap screens as every card step.
struct PinChangeView: View {
    let model: CardPinChange
    @ObservedObject var tap: CardTap<Void>
    @State private var code = ""
    @State private var newPin = ""
    @State private var again = ""

    init(model: CardPinChange) {
        self.model = model
        tap = model.tap
    }

    private var unblock: Bool { model.kind == .unblockWithPuk }

    var body: some View {
        ScrollView {
            VStack(alignment: .leading, spacing: 16) {
                Text(L(unblock ? "unblock_title" : "change_pin_title")).font(.title2)
                if case let .enterPin(message, triesLeft) = tap.state {
                    if let message { Text(message).foregroundColor(.red) }
                    if let triesLeft {
                        Text(triesLeft == 1 ? L("tries_left_one") : L("tries_left_other", triesLeft))
                            .font(.headline).foregroundColor(.red)
                    }
                    if unblock { Text(L("puk_where")) }
                    digits(L(unblock ? "puk_label" : "current_pin_label"), $code)
                    digits(L("new_pin_label"), $newPin)
                    digits(L("new_pin_again_label"), $again)
                    Button(L("continue")) {
                        model.submit(code: code, newPin: newPin, newPinAgain: again)
                        code = ""; newPin = ""; again = ""
                    }
                    .disabled(code.count != 8 || newPin.count != 8 || again.count != 8)
                    .buttonStyle(.borderedProminent)
                } else {
                    CardTapView(tap: tap) { _ in
                        Text(L("pin_changed")).font(.title3)
                    }
                }
            }.padding(24)
        }
    }

    private func digits(_ label: String, _ value: Binding<String>) -> some View {
        SecureField(label, text: value)
            .keyboardType(.numberPad)
            .onChange(of: value.wrappedValue) { v in value.wrappedValue = String(v.filter(\.isNumber).prefix(8)) }
    }
}

// MARK: - Log in on a computer

/// The core's countdown to a server time, ticking while shown; `expired` once it is over.
struct CountdownText: View {
    let client: CompanionClient
    let until: UInt64
    let format: String
    let expired: String

    var body: some View {
        TimelineView(.periodic(from: .now, by: 1)) { _ in
            let left = client.countdown(expiresAt: until)
            if left.expired {
                Text(L(expired)).foregroundColor(.red)
            } else {
                Text(L(format, Int(left.secondsLeft)))
            }
        }
    }
}

/// Who asks: service, level, the computer's browser and system, place and time.
struct LoginContextCard: View {
    let context: LoginContext

    var body: some View {
        let when = Date(timeIntervalSince1970: TimeInterval(context.createdAt))
        VStack(alignment: .leading, spacing: 6) {
            Text(L("context_service", context.service)).font(.title3).bold()
            Text(L("context_level", Int(context.level)))
            Text(L("context_device", context.browser, context.os))
            Text(L("context_place", context.place, context.ip))
            Text(L("context_time", when.formatted(date: .abbreviated, time: .omitted), when.formatted(date: .omitted, time: .shortened)))
        }
        .padding()
        .frame(maxWidth: .infinity, alignment: .leading)
        .background(RoundedRectangle(cornerRadius: 12).fill(Color(.secondarySystemBackground)))
    }
}

struct DesktopLoginView: View {
    @ObservedObject var app: AppModel
    @State var login: DesktopLogin?

    var body: some View {
        ScrollView {
            VStack(alignment: .leading, spacing: 16) {
                Text(L("desktop_title")).font(.title2)
                if let login {
                    DesktopStateView(login: login, app: app) { self.login = newLogin() }
                }
            }.padding(24)
        }
        .onAppear { if login == nil { login = newLogin() } }
    }

    private func newLogin() -> DesktopLogin {
        DesktopLogin(client: app.client, deviceName: app.deviceName, deviceId: app.device?.deviceId)
    }
}

struct DesktopStateView: View {
    @ObservedObject var login: DesktopLogin
    @ObservedObject var app: AppModel
    let again: () -> Void

    var body: some View {
        switch login.state {
        case let .scanning(hint):
            Text(L("desktop_scan"))
            if let hint { Text(hint).foregroundColor(.red) }
            QRScanner { login.onText($0) }
        case .claiming, .approving:
            ProgressView()
        case let .review(context, expiresAt, deviceAllowed):
            LoginContextCard(context: context)
            CountdownText(client: app.client, until: expiresAt, format: "decide_within", expired: "decide_expired")
            Text(L("desktop_only_if_you"))
            // Approve and deny side by side, the same size and weight: neither is the default.
            HStack(spacing: 12) {
                Button { login.approveWithCard() } label: {
                    Text(L("approve")).frame(maxWidth: .infinity, minHeight: 44)
                }
                .buttonStyle(.borderedProminent)
                Button { login.deny() } label: {
                    Text(L("deny_not_me")).frame(maxWidth: .infinity, minHeight: 44)
                }
                .buttonStyle(.borderedProminent).tint(.red)
            }
            if let device = app.device, deviceAllowed {
                Button(L("approve_with_phone")) {
                    login.approveWithDevice(deviceId: device.deviceId, signer: device.signer)
                }
            } else if app.device != nil {
                Text(L("card_required"))
            }
        case let .withCard(tap):
            CardTapView(tap: tap, pinLabel: L("pin_label_paired")) { code in
                Color.clear.onAppear { login.cardDone(code) }
            }
        case let .code(code):
            Text(L("code_type_it"))
            Text(code.code)
                .font(.system(size: 64, weight: .bold, design: .monospaced))
                .tracking(12)
            CountdownText(client: app.client, until: code.expiresAt, format: "code_expires_in", expired: "code_expired")
            Button(L("scan_another"), action: again).buttonStyle(.bordered)
        case .denied:
            Text(L("desktop_denied")).font(.headline)
            Button(L("scan_another"), action: again).buttonStyle(.bordered)
        case let .failed(message):
            Text(message).foregroundColor(.red)
            Button(L("try_again"), action: again).buttonStyle(.bordered)
        }
    }
}

// MARK: - Requests and enrolment

struct RequestsView: View {
    @ObservedObject var app: AppModel

    var body: some View {
        if let device = app.device {
            InboxView(app: app, device: device).id(device.deviceId)
        } else {
            EnrolView(app: app)
        }
    }
}

struct InboxView: View {
    @StateObject var inbox: ApprovalsInbox
    @ObservedObject var app: AppModel
    let holder: String

    init(app: AppModel, device: AppModel.Device) {
        _inbox = StateObject(wrappedValue: ApprovalsInbox(
            client: app.client, origin: device.origin, deviceId: device.deviceId, signer: device.signer
        ))
        self.app = app
        holder = device.holder
    }

    var body: some View {
        ScrollView {
            VStack(alignment: .leading, spacing: 16) {
                Text(L("inbox_title")).font(.title2)
                Text(L("inbox_enrolled_as", holder))
                switch inbox.state {
                case .loading:
                    ProgressView()
                case let .items(pending):
                    if pending.isEmpty { Text(L("inbox_empty")) }
                    ForEach(pending, id: \.requestId) { item in request(item) }
                    Button(L("refresh")) { inbox.refresh() }.buttonStyle(.bordered)
                case .approved:
                    outcome(L("inbox_approved"))
                case .denied:
                    outcome(L("inbox_denied"))
                case let .wrongNumber(message), let .failed(message):
                    outcome(message)
                }
                Button(L("forget_phone"), role: .destructive) { app.forgetDevice() }
            }.padding(24)
        }
        .onAppear { inbox.refresh() }
        .refreshable { inbox.refresh() }
    }

    @ViewBuilder
    private func request(_ item: PendingApprovalInfo) -> some View {
        VStack(alignment: .leading, spacing: 12) {
            LoginContextCard(context: item.context)
            CountdownText(client: app.client, until: item.expiresAt, format: "decide_within", expired: "decide_expired")
            Text(L("pick_number"))
            HStack(spacing: 12) {
                ForEach(Array(item.choices), id: \.self) { n in
                    Button { inbox.approve(item, number: n) } label: {
                        Text(String(n)).font(.title).frame(maxWidth: .infinity, minHeight: 56)
                    }
                    .buttonStyle(.borderedProminent)
                }
            }
            Button { inbox.deny(item) } label: {
                Text(L("deny_not_me")).frame(maxWidth: .infinity, minHeight: 56)
            }
            .buttonStyle(.borderedProminent).tint(.red)
        }
    }

    @ViewBuilder
    private func outcome(_ text: String) -> some View {
        Text(text).font(.headline)
        Button(L("back_to_requests")) { inbox.refresh() }.buttonStyle(.bordered)
    }
}

struct EnrolView: View {
    @ObservedObject var app: AppModel
    @State var enrolment: Enrolment?
    @State var typed = ""
    @State var failure: String?

    var body: some View {
        ScrollView {
            VStack(alignment: .leading, spacing: 16) {
                Text(L("enrol_title")).font(.title2)
                if let problem = app.problem ?? failure { Text(problem).foregroundColor(.red) }
                if let enrolment {
                    EnrolStateView(enrolment: enrolment, typed: $typed)
                    Button(L("back")) { self.enrolment = nil }.buttonStyle(.bordered)
                } else {
                    Text(L("enrol_why"))
                    Button(L("enrol_with_card")) { start { $0.withCard() } }
                        .buttonStyle(.borderedProminent).frame(maxWidth: .infinity)
                    Button(L("enrol_with_code")) { start { $0.withCode() } }
                        .buttonStyle(.borderedProminent).frame(maxWidth: .infinity)
                    Text(L("enrol_code_hint")).font(.footnote)
                }
            }.padding(24)
        }
    }

    /// A new Secure Enclave key for this enrolment; kept only once the server enrolled it.
    private func start(_ how: (Enrolment) -> Void) {
        do {
            let signer = try app.newSigner()
            let e = Enrolment(client: app.client, origin: app.origin, signer: signer, deviceName: app.deviceName) { [app] device in
                app.enrolled(device, signer: signer)
            }
            failure = nil
            enrolment = e
            how(e)
        } catch let e as StoreError {
            failure = L("enrol_no_key", String(describing: e))
        } catch {
            failure = error.localizedDescription
        }
    }
}

struct EnrolStateView: View {
    @ObservedObject var enrolment: Enrolment
    @Binding var typed: String

    var body: some View {
        switch enrolment.state {
        case .choose, .starting, .enrolling:
            ProgressView()
        case let .withCard(tap):
            CardTapView(tap: tap) { device in
                Color.clear.onAppear { enrolment.cardDone(device) }
            }
        case let .waitingForCode(message):
            Text(L("enrol_scan_code"))
            if let message { Text(message).foregroundColor(.red) }
            QRScanner { enrolment.submit($0, scanned: true) }
            TextField(L("enrol_code_label"), text: $typed)
                .textInputAutocapitalization(.never)
                .autocorrectionDisabled()
            Button(L("continue")) { enrolment.submit(typed, scanned: false) }
                .disabled(typed.trimmingCharacters(in: .whitespaces).isEmpty)
                .buttonStyle(.borderedProminent)
        case let .done(device):
            Text(L("enrolled", "\(device.identity.givenName) \(device.identity.surname)")).font(.headline)
        case let .failed(message):
            Text(message).foregroundColor(.red)
            Button(L("try_again")) { enrolment.back() }.buttonStyle(.bordered)
        }
    }
}

// MARK: - One-time codes

struct OtpView: View {
    @StateObject var codes: OtpCodes

    init(store: SecretStore) {
        _codes = StateObject(wrappedValue: OtpCodes(store: store))
    }
    @State var link = ""
    @State var removing: OtpToken?
    @State var hotp: [String: String] = [:]
    let ticker = Timer.publish(every: 1, on: .main, in: .common).autoconnect()

    var body: some View {
        ScrollView {
            VStack(alignment: .leading, spacing: 16) {
                Text(L("otp_title")).font(.title2)
                if let message = codes.message {
                    Text(message).foregroundColor(.red)
                    Button(L("ok")) { codes.message = nil }
                }
                if codes.scanning {
                    Text(L("otp_scan"))
                    QRScanner { codes.scanned($0) }
                    TextField(L("otp_paste"), text: $link)
                        .textInputAutocapitalization(.never)
                        .autocorrectionDisabled()
                    HStack {
                        Button(L("back")) { codes.stopScan() }.buttonStyle(.bordered)
                        Button(L("otp_add")) { if codes.add(link) { link = "" } }
                            .disabled(link.isEmpty).buttonStyle(.borderedProminent)
                    }
                } else {
                    if codes.rows.isEmpty { Text(L("otp_empty")) }
                    ForEach(codes.rows) { row in tokenRow(row) }
                    Button(L("otp_add_qr")) { codes.startScan() }
                        .buttonStyle(.borderedProminent).frame(maxWidth: .infinity)
                }
            }.padding(24)
        }
        .onAppear { codes.tick() }
        .onReceive(ticker) { _ in codes.tick() }
        .alert(
            L("otp_remove_confirm", removing.map { $0.issuer ?? $0.account } ?? ""),
            isPresented: Binding(get: { removing != nil }, set: { if !$0 { removing = nil } })
        ) {
            Button(L("otp_remove"), role: .destructive) {
                if let t = removing { codes.remove(t.id) }
                removing = nil
            }
            Button(L("no"), role: .cancel) { removing = nil }
        }
    }

    @ViewBuilder
    private func tokenRow(_ row: OtpCodes.Row) -> some View {
        let t = row.token
        VStack(alignment: .leading, spacing: 4) {
            Text(t.issuer ?? t.account).font(.headline)
            if t.issuer != nil { Text(t.account).font(.footnote) }
            HStack(spacing: 16) {
                if case let .totp(period, _) = t.kind {
                    Text(row.code ?? "").font(.system(size: 36, design: .monospaced))
                    let left = row.secondsRemaining ?? 0
                    ProgressView(value: Double(left), total: Double(max(period, 1)))
                        .progressViewStyle(.circular)
                    Text(L("otp_seconds_left", Int(left)))
                } else {
                    Text(hotp[t.id] ?? "······").font(.system(size: 36, design: .monospaced))
                    // Each press spends a counter value: the next code.
                    Button(L("otp_next")) { hotp[t.id] = codes.next(t.id) }.buttonStyle(.bordered)
                }
            }
            Button(L("otp_remove"), role: .destructive) { removing = t }
        }
    }
}
