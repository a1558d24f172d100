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
    (r"flowErrorMessageIt\(error:", r"public func flowErrorMessageIt\(error: FlowError\) -> String"),
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
]


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
    for f in failures:
        print("check_swift_shell: FAIL:", f, file=sys.stderr)
    if failures:
        sys.exit(1)
    print(f"check_swift_shell: {len(CONTRACT)} uses of the generated API match")


if __name__ == "__main__":
    main()
