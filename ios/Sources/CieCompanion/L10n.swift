// Texts from Localizable.strings (it, en) in this package's bundle; the core's own messages
// come in Italian.
import Foundation

func L(_ key: String, _ args: CVarArg...) -> String {
    let format = NSLocalizedString(key, bundle: .module, comment: "")
    return args.isEmpty ? format : String(format: format, locale: Locale.current, arguments: args)
}
