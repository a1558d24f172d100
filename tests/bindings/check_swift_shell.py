"""No Swift compiler on Linux CI: check that the iOS shell (ios/Sources) uses the generated
Swift API as it is. For every generated symbol the shell relies on, the shell's use and the
generated declaration must both be there; a renamed field or error case in Rust then fails
here instead of on the first macOS build.

    python3 tests/bindings/check_swift_shell.py build/bindings/swift/cie_core.swift ios/Sources
"""

import pathlib
import re
import sys

# (what the shell writes, what the generated cie_core.swift must declare)
CONTRACT = [
    (r"CardTransport", r"public protocol CardTransport\b"),
    (r"func transmit\(apdu: Data\) async throws -> Data", r"func transmit\(apdu: Data\) async throws\s+-> Data"),
    (r"func info\(\) -> TransportInfo", r"func info\(\)\s+-> TransportInfo"),
    (r"TransportInfo\(\s*kind:", r"public init\(\s*kind: TransportKind"),
    (r"extendedLength:", r"public var extendedLength: Bool"),
    (r"maxCommandLen:", r"public var maxCommandLen: UInt32"),
    (r"maxResponseLen:", r"public var maxResponseLen: UInt32"),
    (r"atr: tag\.historicalBytes", r"public var atr: Data\?"),
    (r"kind: \.nfc", r"case nfc\b"),
    (r"TransportError\.Io\(reason:", r"case Io\(\s*reason: String"),
    (r"\.TagLost\b", r"case TagLost\b"),
    (r"-> TransportError", r"public\s+enum TransportError: Swift\.Error"),
    # The core's messages in the app's language (L10n.swift).
    (r"languageForLocale\(tag: Bundle\.module\.preferredLocalizations\.first", r"public func languageForLocale\(tag: String\)\s*-> Language"),
    (r"flowErrorMessage\(error: \$0, language: coreLanguage\)", r"public func flowErrorMessage\(error: FlowError, language: Language\)\s*-> String"),
    (r"as FlowError", r"public\s+enum FlowError: Swift\.Error"),
    (r"SecretStore", r"public protocol SecretStore\b"),
    (r"func load\(name: String\) throws -> Data\?", r"func load\(name: String\) throws\s+-> Data\?"),
    (r"func save\(name: String, value: Data, protection: Protection\) throws", r"func save\(name: String, value: Data, protection: Protection\) throws"),
    (r"func remove\(name: String\) throws", r"func remove\(name: String\) throws"),
    (r"case \.public, \.deviceOnly", r"case `public`[\s\S]*case deviceOnly"),
    (r"case \.userPresence", r"case userPresence\b"),
    (r"StoreError\.Cancelled", r"case Cancelled\b"),
    (r"StoreError\.Unavailable\(reason:", r"case Unavailable\(\s*reason: String"),
    (r"DeviceSigner", r"public protocol DeviceSigner\b"),
    (r"func publicKey\(\) throws -> Data", r"func publicKey\(\) throws\s+-> Data"),
    (r"func sign\(message: Data\) async throws -> Data", r"func sign\(message: Data\) async throws\s+-> Data"),
    (r"import cie_core", None),
    # QR frames from AVFoundation (QRCamera.swift).
    (r"scanQrFrame\(\s*width: UInt32\(width\), height: UInt32\(height\), rowStride: UInt32\(rowStride\), luma: luma",
     r"public func scanQrFrame\(width: UInt32, height: UInt32, rowStride: UInt32, luma: Data\)\s*throws\s*-> String\?"),
    # The client and its flows (Flows.swift, AppModel.swift).
    # Countdowns on the server's clock (Screens.swift).
    (r"client\.countdown\(expiresAt: until\)", r"func countdown\(expiresAt: UInt64\)\s*-> Countdown"),
    (r"left\.expired[\s\S]*left\.secondsLeft", r"public\s+struct Countdown\b[\s\S]*?public var secondsLeft: UInt64[\s\S]*?public var expired: Bool"),
    (r"client\.startCardLogin\(origin: origin\)", r"func startCardLogin\(origin: String\)\s*async throws\s*-> CardLoginSession"),
    (r"session\.tap\(transport: transport, pin: pin, progress: progress\)",
     r"func tap\(transport: CardTransport, pin: String\?, progress: ProgressListener\?\)\s*async throws\s*-> CardLoginResult"),
    (r"session\.tap\(transport: transport, pin: pin, progress: progress\)",
     r"func tap\(transport: CardTransport, pin: String\?, progress: ProgressListener\?\)\s*async throws\s*-> EnrolledDevice"),
    (r"session\.confirmLastTry\(\)", r"func confirmLastTry\(\)\s*throws"),
    (r"client\.claimDesktopQr\(qrText: text, deviceName: deviceName, deviceId: deviceId\)",
     r"func claimDesktopQr\(qrText: String, deviceName: String, deviceId: String\?\)\s*async throws\s*-> DesktopSession"),
    (r"s\.context\(\)", r"func context\(\)\s*throws\s*-> LoginContext"),
    (r"s\.deviceApprovalAllowed\(\)", r"func deviceApprovalAllowed\(\)\s*throws\s*-> Bool"),
    # "Sblocca carta" / "Cambia PIN" (Flows.swift CardPinChange).
    (r"unblockCardPin\(transport: transport, puk: code, newPin: newPin, newPinAgain: again, lastTryConfirmed: self\.confirmed, store: store\)",
     r"public func unblockCardPin\(transport: CardTransport, puk: String, newPin: String, newPinAgain: String, lastTryConfirmed: Bool, store: SecretStore\?\)\s*async throws"),
    (r"changeCardPin\(transport: transport, oldPin: code, newPin: newPin, newPinAgain: again, lastTryConfirmed: self\.confirmed, store: store\)",
     r"public func changeCardPin\(transport: CardTransport, oldPin: String, newPin: String, newPinAgain: String, lastTryConfirmed: Bool, store: SecretStore\?\)\s*async throws"),
    (r"FlowError\.Card\(error: \.PinNeeded\)", r"case Card\(\s*error: CardError"),
    (r"catch let e as CardError", r"public\s+enum CardError: Swift\.Error"),
    (r"s\.expiresAt\(\)", r"func expiresAt\(\)\s*throws\s*-> UInt64\b"),
    (r"s\.approveWithCard\(transport: transport, pin: pin, progress: progress\)",
     r"func approveWithCard\(transport: CardTransport, pin: String\?, progress: ProgressListener\?\)\s*async throws\s*-> DesktopCode"),
    (r"s\.prepareCardApproval\(\)", r"func prepareCardApproval\(\)\s*async throws"),
    (r"s\.approveWithDevice\(deviceId: deviceId, signer: signer\)",
     r"func approveWithDevice\(deviceId: String, signer: DeviceSigner\)\s*async throws\s*-> DesktopCode"),
    (r"s\.deny\(report: true\)", r"func deny\(report: Bool\)\s*async throws"),
    (r"client\.pendingApprovals\(origin: origin, deviceId: deviceId, signer: signer\)",
     r"func pendingApprovals\(origin: String, deviceId: String, signer: DeviceSigner\)\s*async throws\s*-> \[PendingApprovalInfo\]"),
    (r"client\.decideApproval\(\s*approval: item, deviceId: deviceId, signer: signer, decision: decision, number: number",
     r"func decideApproval\(approval: PendingApprovalInfo, deviceId: String, signer: DeviceSigner, decision: Decision, number: UInt8\?\)\s*async throws"),
    (r"\.approve \? \.approved", r"public\s+enum Decision\b[\s\S]*?case approve\b[\s\S]*?case deny\b"),
    (r"client\.startDeviceEnrollment\(origin: origin, signer: signer, deviceName: deviceName\)",
     r"func startDeviceEnrollment\(origin: String, signer: DeviceSigner, deviceName: String\)\s*async throws\s*-> DeviceEnrollmentSession"),
    (r"client\.enrollDeviceWithCode\(\s*origin: origin, code: code, signer: signer, deviceName: deviceName",
     r"func enrollDeviceWithCode\(origin: String, code: String, signer: DeviceSigner, deviceName: String\)\s*async throws\s*-> EnrolledDevice"),
    # What follows a refusal: the core's decisions (CardTap.swift, Flows.swift).
    (r"cardTapStep\(error: e\)", r"public func cardTapStep\(error: FlowError\)\s*-> CardTapStep"),
    (r"case let \.enterPin\(triesLeft\)", r"public\s+enum CardTapStep\b[\s\S]*?case enterPin\(\s*triesLeft: UInt8\?\s*\)"),
    (r"case \.tapAgain:[\s\S]*case \.confirmLastTry:[\s\S]*case \.pinBlocked:[\s\S]*case \.stop:",
     r"public\s+enum CardTapStep\b[\s\S]*?case tapAgain\b[\s\S]*?case confirmLastTry\b[\s\S]*?case pinBlocked\b[\s\S]*?case stop\b"),
    (r"desktopQrStep\(error: e\)", r"public func desktopQrStep\(error: FlowError\)\s*-> ScanStep"),
    (r"enrolmentCodeStep\(error: e\)", r"public func enrolmentCodeStep\(error: FlowError\)\s*-> ScanStep"),
    (r"case \.scanAgain:", r"public\s+enum ScanStep\b[\s\S]*?case scanAgain\b[\s\S]*?case stop\b"),
    (r"approvalStep\(error: e\)", r"public func approvalStep\(error: FlowError\)\s*-> ApprovalStep"),
    (r"case \.wrongNumber:", r"public\s+enum ApprovalStep\b[\s\S]*?case wrongNumber\b[\s\S]*?case stop\b"),
    # Progress (CardTap.swift).
    (r"ProgressListener", r"public protocol ProgressListener\b"),
    (r"func onStep\(step: LoginStep, done: UInt32, total: UInt32\)", r"func onStep\(step: LoginStep, done: UInt32, total: UInt32\)"),
    (r"func onBytes\(step: LoginStep, done: UInt32, total: UInt32\)", r"func onBytes\(step: LoginStep, done: UInt32, total: UInt32\)"),
    # Records the screens read.
    (r"context\.service", r"public\s+struct LoginContext\b[\s\S]*?public var service: String"),
    (r"Int\(context\.level\)", r"public var level: UInt8"),
    (r"context\.browser, context\.os", r"public var browser: String[\s\S]*?public var os: String"),
    (r"context\.place, context\.ip", r"public var place: String[\s\S]*?public var ip: String"),
    (r"context\.createdAt", r"public var createdAt: UInt64"),
    (r"id: \\\.requestId", r"public\s+struct PendingApprovalInfo\b[\s\S]*?public var requestId: String"),
    (r"item\.context\)", r"public var context: LoginContext"),
    (r"Array\(item\.choices\)", r"public var choices: Data"),
    (r"item\.expiresAt", r"public\s+struct PendingApprovalInfo\b[\s\S]*?public var expiresAt: UInt64"),
    (r"code\.code\)", r"public\s+struct DesktopCode\b[\s\S]*?public var code: String[\s\S]*?public var expiresAt: UInt64"),
    (r"enrolled\.deviceId", r"public\s+struct EnrolledDevice\b[\s\S]*?public var origin: String[\s\S]*?public var deviceId: String[\s\S]*?public var identity: Identity"),
    (r"identity\.givenName\) \\\(\w+\.identity\.surname|identity\.givenName", r"public\s+struct Identity\b[\s\S]*?public var givenName: String[\s\S]*?public var surname: String"),
    # One-time codes (OtpCodes in Flows.swift, OtpView).
    (r"OtpVault\(store: store\)", r"public convenience init\(store: SecretStore\)"),
    (r"vault\.addUri\(uri: uri\)", r"func addUri\(uri: String\)\s*throws\s*-> AddedToken"),
    (r"vault\.list\(\)", r"func list\(\)\s*throws\s*-> \[OtpToken\]"),
    (r"vault\.code\(name: (token\.)?id, deviceUnix: now\)", r"func code\(name: String, deviceUnix: UInt64\)\s*throws\s*-> OtpCode"),
    (r"c\.secondsRemaining", r"public\s+struct OtpCode\b[\s\S]*?public var code: String[\s\S]*?public var secondsRemaining: UInt64"),
    (r"vault\.remove\(name: id\)", r"func remove\(name: String\)\s*throws"),
    (r"t\.issuer \?\? t\.account", r"public\s+struct OtpToken\b[\s\S]*?public var id: String[\s\S]*?public var issuer: String\?[\s\S]*?public var account: String[\s\S]*?public var kind: OtpKind"),
    (r"case let \.totp\(period, _\)", r"case totp\(\s*period: UInt64,\s*t0: UInt64\s*\)"),
    (r"otpErrorMessage\(error: \$0, language: coreLanguage\)", r"public func otpErrorMessage\(error: OtpError, language: Language\)\s*-> String"),
    (r"as\? OtpError", r"public\s+enum OtpError: Swift\.Error"),
    (r"protection: \.deviceOnly", r"case deviceOnly\b"),
    # HTTPS through URLSession (URLSessionHttps.swift, AppModel.swift).
    (r"HttpsTransport", r"public protocol HttpsTransport: AnyObject, Sendable"),
    (r"func send\(request: HttpsRequest\) async throws -> HttpsAnswer", r"func send\(request: HttpsRequest\) async throws\s+-> HttpsAnswer"),
    (r"request\.timeoutMs", r"public var timeoutMs: UInt64"),
    (r"request\.maxBody", r"public var maxBody: UInt64"),
    (r"request\.method == \.post", r"case post\b"),
    (r"request\.headers", r"public var headers: \[HttpsHeader\]"),
    (r"request\.body", r"public var body: Data\?"),
    (r"HttpsAnswer\(status: UInt16\(clamping: http\.statusCode\),\s*date: http\.value\(forHTTPHeaderField: \"Date\"\), body: data\)",
     r"public init\(\s*(?:/\*\*[\s\S]*?\*/)?status: UInt16,\s*(?:/\*\*[\s\S]*?\*/)?date: String\?,\s*(?:/\*\*[\s\S]*?\*/)?body: Data\)"),
    (r"HttpsFailure\.ServerKeyRefused", r"enum HttpsFailure: Swift\.Error[\s\S]*?case ServerKeyRefused\b"),
    (r"HttpsFailure\.Tls\(reason:", r"enum HttpsFailure: Swift\.Error[\s\S]*?case Tls\(\s*reason: String"),
    (r"HttpsFailure\.Offline\(reason:", r"enum HttpsFailure: Swift\.Error[\s\S]*?case Offline\(\s*reason: String"),
    (r"HttpsFailure\.Timeout", r"enum HttpsFailure: Swift\.Error[\s\S]*?case Timeout\b"),
    (r"HttpsFailure\.TooLarge", r"enum HttpsFailure: Swift\.Error[\s\S]*?case TooLarge\b"),
    (r"check\.accepts\(certificate: SecCertificateCopyData\(leaf\) as Data\)", r"open func accepts\(certificate: Data\)\s*-> Bool"),
    (r"try ServerKeyCheck\(pins: \[pin\]\)", r"public convenience init\(pins: \[String\]\)\s*throws"),
    (r"CompanionClient\.withHttpsTransport\(origins: \[origin\], serverKeys: keys, store: store,\s*transport: URLSessionHttps\(check: keys\)\)",
     r"public static func withHttpsTransport\(origins: \[String\], serverKeys: ServerKeyCheck, store: SecretStore\?, transport: HttpsTransport\)\s*throws\s*-> CompanionClient"),
]


def generated_names(generated):
    """The generated module's top-level types and functions."""
    return set(re.findall(r"(?:public|open)\s+(?:protocol|struct|enum|class|func)\s+(\w+)", generated))


def shell_code(text):
    """The shell's Swift without comments and string literals (names in them are not uses)."""
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r'"(?:\\.|[^"\\\n])*"', '""', text)


def check_strings(sources, shell):
    """Every L("key") the shell uses is in both Localizable.strings (it, en), with the same keys."""
    found = {}
    for lang in ("it", "en"):
        path = sources / "CieCompanion" / "Resources" / f"{lang}.lproj" / "Localizable.strings"
        found[lang] = set(re.findall(r'^"([a-z_]+)" = ', path.read_text(), flags=re.M)) if path.exists() else set()
    used = set(re.findall(r'\bL\("([a-z_]+)"', shell)) | set(re.findall(r'(?:format|expired): "([a-z_]+)"', shell))
    failures = [f"{lang}.lproj lacks {k!r}" for lang in found for k in sorted(used - found[lang])]
    if found["it"] != found["en"]:
        failures.append(f"it and en Localizable.strings differ: {sorted(found['it'] ^ found['en'])}")
    return failures


def main():
    generated = pathlib.Path(sys.argv[1]).read_text()
    # Doc comments sit inside parameter lists in the generated code: drop them.
    generated_flat = re.sub(r"/\*\*.*?\*/", "", generated, flags=re.S)
    shell = "\n".join(p.read_text() for p in sorted(pathlib.Path(sys.argv[2]).rglob("*.swift")))
    failures = []
    for use, decl in CONTRACT:
        if not re.search(use, shell):
            failures.append(f"the shell no longer uses {use!r}: update the contract")
        elif decl and not re.search(decl, generated_flat):
            failures.append(f"the shell uses {use!r} but the bindings lack {decl!r}")
    # Every generated type or function the shell names must be covered by a contract entry,
    # so new Swift cannot use the bindings unchecked.
    own = set(re.findall(r"(?:protocol|struct|enum|class|func)\s+(\w+)", shell_code(shell)))
    covered = "\n".join(use + "\n" + (decl or "") for use, decl in CONTRACT)
    for name in sorted(generated_names(generated_flat) - own):
        if re.search(rf"\b{name}\b", shell_code(shell)) and not re.search(rf"\b{name}\b", covered):
            failures.append(f"the shell uses the generated {name!r} with no contract entry: add one")
    failures += check_strings(pathlib.Path(sys.argv[2]), shell)
    for f in failures:
        print("check_swift_shell: FAIL:", f, file=sys.stderr)
    if failures:
        sys.exit(1)
    print(f"check_swift_shell: {len(CONTRACT)} uses of the generated API match")


if __name__ == "__main__":
    main()
