// Texts from Localizable.strings (it, en) in this package's bundle; the core's messages in
// the same language (the core maps the localization iOS picked to its Language).
import Foundation
import cie_core

/// The language of the core's messages: the one this package's texts are shown in.
let coreLanguage: Language = languageForLocale(tag: Bundle.module.preferredLocalizations.first ?? "it")

/// The core's message for a flow error, in the app's language (a platform error's own text
/// otherwise).
func coreMessage(_ error: Error) -> String {
    (error as? FlowError).map { flowErrorMessage(error: $0, language: coreLanguage) } ?? error.localizedDescription
}

func L(_ key: String, _ args: CVarArg...) -> String {
    let format = NSLocalizedString(key, bundle: .module, comment: "")
    return args.isEmpty ? format : String(format: format, locale: Locale.current, arguments: args)
}
