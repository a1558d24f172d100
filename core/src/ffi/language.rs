//! The language of the core's messages to the user. The shells show their own texts in
//! Italian or English (Android `values-it`/`values`, iOS `it.lproj`/`en.lproj`); the core's
//! messages follow the same choice through [`language_for_locale`], so neither shell maps a
//! locale to a language on its own.

/// A language the core writes its messages in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Language {
    /// Italian: the citizens' language, and the default of the CIE's own texts.
    It,
    /// English: every other locale (the shells' default resources are English).
    En,
}

/// The language for a locale as the platform gives it (`it`, `it-IT`, `it_CH`, `ita`,
/// `en-GB`, `de`…): Italian for Italian, English for everything else — the same rule the
/// shells' resources follow (Italian texts for Italian, the English default otherwise).
#[uniffi::export]
pub fn language_for_locale(tag: String) -> Language {
    let primary = tag.trim().split(['-', '_', '.', '@']).next().unwrap_or("");
    if primary.eq_ignore_ascii_case("it") || primary.eq_ignore_ascii_case("ita") {
        Language::It
    } else {
        Language::En
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn italian_locales_are_italian_every_other_is_english() {
        for tag in [
            "it",
            "IT",
            "it-IT",
            "it_CH",
            "it-IT-u-ca-gregory",
            "ita",
            " it ",
            "it_IT.UTF-8",
        ] {
            assert_eq!(language_for_locale(tag.into()), Language::It, "{tag}");
        }
        for tag in [
            "en", "en-GB", "de-DE", "fr_FR", "", "i", "itx", "sq-IT", "und",
        ] {
            assert_eq!(language_for_locale(tag.into()), Language::En, "{tag}");
        }
    }
}
