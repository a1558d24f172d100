// Any operation that needs the PIN and a tap (phone login, desktop approval, enrolment), as
// the screens show it: the Swift twin of the Android shell's CardTap. It decides nothing:
// the core says which screen comes after a failed tap (cardTapStep) and what to tell the
// user (flowErrorMessage, in the app's language); this only keeps the state. iOS opens the
// NFC sheet itself, so "wait for the card" is the sheet (CardReader).
import Foundation
import cie_core

public enum TapState<T> {
    /// Ask for the PIN; after a wrong one, `message` and the tries left.
    case enterPin(message: String?, triesLeft: Int?)
    /// The NFC sheet is up: "hold the CIE near the top of the iPhone".
    case waitForCard
    /// The card is being read: the step and the percent of its bytes.
    case reading(step: LoginStep, percent: Int)
    /// The card left the field or the sheet closed: open it again and the core resumes.
    case tapAgain(message: String)
    /// One try left: the user must say "yes, try it" before the core spends it; `message` is
    /// the core's warning, for the PIN or the PUK as the operation needs.
    case confirmLastTry(message: String)
    case done(T)
    /// The PIN is blocked: `message` says to unblock it with the PUK.
    case pinBlocked(message: String)
    /// Stopped: card refused, server or network; `message` says what to do.
    case failed(message: String)
}

/// Progress from the core (any thread) to the sheet's text and the screen.
final class SheetProgress: ProgressListener, @unchecked Sendable {
    private let sheet: (String) -> Void
    private let state: @MainActor (LoginStep, Int) -> Void

    init(sheet: @escaping (String) -> Void, state: @escaping @MainActor (LoginStep, Int) -> Void) {
        self.sheet = sheet
        self.state = state
    }

    func onStep(step: LoginStep, done: UInt32, total: UInt32) {
        sheet(L("reading_card"))
        let update = state
        Task { @MainActor in update(step, 0) }
    }

    func onBytes(step: LoginStep, done: UInt32, total: UInt32) {
        let percent = total == 0 ? 0 : Int(UInt64(done) * 100 / UInt64(total))
        sheet(L("reading_card_percent", percent))
        let update = state
        Task { @MainActor in update(step, percent) }
    }
}

@MainActor
public final class CardTap<T>: ObservableObject {
    @Published public private(set) var state: TapState<T> = .enterPin(message: nil, triesLeft: nil)
    private let run: (CardTransport, String?, ProgressListener) async throws -> T
    private let confirm: () throws -> Void
    private let reader = CardReader()
    // Held only from "OK" on the PIN pad to the tap that uses it (a Swift String cannot be
    // wiped; the core zeroizes its own copy).
    private var pin: String?

    /// `run`: the core's operation over one tapped card; `confirm`: its `confirmLastTry`.
    public init(
        run: @escaping (CardTransport, String?, ProgressListener) async throws -> T,
        confirm: @escaping () throws -> Void
    ) {
        self.run = run
        self.confirm = confirm
    }

    public func submitPin(_ pin: String) {
        guard case .enterPin = state else { return }
        self.pin = pin
        tap()
    }

    /// "Avvicina di nuovo la carta" after `tapAgain`.
    public func tap() {
        switch state {
        case .enterPin, .tapAgain: startReading()
        default: return
        }
    }

    private func startReading() {
        state = .waitForCard
        Task { await readCard() }
    }

    public func confirmLastTry() {
        guard case .confirmLastTry = state else { return }
        do {
            try confirm()
            startReading()
        } catch let e as FlowError {
            state = .failed(message: coreMessage(e))
        } catch {
            state = .failed(message: error.localizedDescription)
        }
    }

    public func cancelLastTry() {
        guard case .confirmLastTry = state else { return }
        pin = nil
        state = .enterPin(message: nil, triesLeft: nil)
    }

    private func readCard() async {
        do {
            let value: T = try await reader.withCard(prompt: L("tap_card"), done: L("card_done")) { transport, sheet in
                let progress = SheetProgress(sheet: sheet) { [weak self] step, percent in
                    self?.state = .reading(step: step, percent: percent)
                }
                return try await self.run(transport, self.pin, progress)
            }
            pin = nil
            state = .done(value)
        } catch let e as FlowError {
            state = next(e)
        } catch {
            // The sheet was closed (cancel, timeout) before a card answered: nothing spent.
            state = .tapAgain(message: L("sheet_closed"))
        }
    }

    private func next(_ e: FlowError) -> TapState<T> {
        let text = coreMessage(e)
        switch cardTapStep(error: e) {
        case .tapAgain:
            // The PIN is kept: the core resumes, or spends it once the user confirms.
            return .tapAgain(message: text)
        case .confirmLastTry:
            return .confirmLastTry(message: text)
        case let .enterPin(triesLeft):
            pin = nil
            return .enterPin(message: text, triesLeft: triesLeft.map { Int($0) })
        case .pinBlocked:
            pin = nil
            return .pinBlocked(message: text)
        case .stop:
            pin = nil
            return .failed(message: text)
        }
    }
}
