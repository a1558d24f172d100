//! Authentication context classes: the profile's three SPID URIs (used by CIE too) and our
//! levels 1–3 (level 3 = the card; 2 = an enrolled phone's key; 1 = an approval alone).

/// `acr` values by level (index 0 = level 1).
pub const ACR_VALUES: [&str; 3] = [
    "https://www.spid.gov.it/SpidL1",
    "https://www.spid.gov.it/SpidL2",
    "https://www.spid.gov.it/SpidL3",
];

/// The level an `acr` value asks for.
pub fn level_of(acr: &str) -> Option<u8> {
    ACR_VALUES
        .iter()
        .position(|a| *a == acr)
        .and_then(|i| u8::try_from(i + 1).ok())
}

/// The `acr` of a level reached (a session above 3 is still 3; below 1, none).
pub fn acr_of(level: u8) -> Option<&'static str> {
    ACR_VALUES
        .get(usize::from(level.min(3)).checked_sub(1)?)
        .copied()
}

/// The least level that satisfies `acr_values` (listed by preference, any is acceptable;
/// unknown values ignored), or `None` when none is known.
pub fn required_level<'a>(acr_values: impl IntoIterator<Item = &'a str>) -> Option<u8> {
    acr_values.into_iter().filter_map(level_of).min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        assert_eq!(required_level(["https://www.spid.gov.it/SpidL3"]), Some(3));
        assert_eq!(
            required_level([
                "https://www.spid.gov.it/SpidL2",
                "x",
                "https://www.spid.gov.it/SpidL1"
            ]),
            Some(1)
        );
        assert_eq!(required_level(["SpidL2"]), None);
        assert_eq!(acr_of(0), None);
        assert_eq!(acr_of(2), Some("https://www.spid.gov.it/SpidL2"));
        assert_eq!(acr_of(9), Some("https://www.spid.gov.it/SpidL3"));
    }
}
