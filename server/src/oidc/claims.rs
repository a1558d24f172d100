//! User claims under the profile's names, from what the store knows: the identity (codice
//! fiscale, names) and, for a registered card, its verified attributes. Never more than the
//! client asked (scope `profile`, or `claims.userinfo`) and is allowed.

use cie_core::flows::wire::Identity;
use serde_json::{Map, Value};

/// `https://attributes.eid.gov.it/fiscal_number` (`TINIT-<CF>`).
pub const FISCAL_NUMBER: &str = "https://attributes.eid.gov.it/fiscal_number";

/// The claims we can release.
pub const SUPPORTED: &[&str] = &[
    "given_name",
    "family_name",
    "birthdate",
    "gender",
    FISCAL_NUMBER,
];

/// What scope `profile` stands for (CIE profile).
const PROFILE: &[&str] = &["given_name", "family_name", "birthdate", FISCAL_NUMBER];

/// The claims asked by `scope` and the `claims` parameter's `userinfo` member, among those
/// we support and the client may receive (`allowed` empty: all supported), in our order.
pub fn requested(scope: &[String], claims: Option<&Value>, allowed: &[String]) -> Vec<String> {
    let asked_by_claims = claims
        .and_then(|c| c.get("userinfo"))
        .and_then(Value::as_object);
    SUPPORTED
        .iter()
        .filter(|name| {
            (scope.iter().any(|s| s == "profile") && PROFILE.contains(name))
                || asked_by_claims.is_some_and(|m| m.contains_key(**name))
        })
        .filter(|name| allowed.is_empty() || allowed.iter().any(|a| a == *name))
        .map(|s| (*s).to_owned())
        .collect()
}

/// Italian and English label of a claim, for the consent page.
pub fn label(name: &str) -> (&'static str, &'static str) {
    match name {
        "given_name" => ("Nome", "Given name"),
        "family_name" => ("Cognome", "Family name"),
        "birthdate" => ("Data di nascita", "Date of birth"),
        "gender" => ("Sesso", "Gender"),
        FISCAL_NUMBER => ("Codice fiscale", "Fiscal code"),
        _ => ("Altro dato", "Other data"),
    }
}

/// The values of `names` that we have for `identity` (`registration`: the attributes JSON
/// of its latest registration with the CIE). A claim we do not have is left out.
pub fn values(
    identity: &Identity,
    registration: Option<&Value>,
    names: &[String],
) -> Map<String, Value> {
    let attr = |k: &str| {
        registration
            .and_then(|r| r.get(k))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let mut out = Map::new();
    for name in names {
        let v = match name.as_str() {
            "given_name" => Some(identity.given_name.clone()).filter(|s| !s.is_empty()),
            "family_name" => Some(identity.surname.clone()).filter(|s| !s.is_empty()),
            FISCAL_NUMBER => Some(format!("TINIT-{}", identity.codice_fiscale)),
            // DG11 gives YYYYMMDD; the MRZ's YYMMDD has no century, so it is not released.
            "birthdate" => attr("date_of_birth").and_then(|d| iso_date(&d)),
            "gender" => match attr("sex").as_deref() {
                Some("F") => Some("female".to_owned()),
                Some("M") => Some("male".to_owned()),
                _ => None,
            },
            _ => None,
        };
        if let Some(v) = v {
            out.insert(name.clone(), Value::String(v));
        }
    }
    out
}

fn iso_date(d: &str) -> Option<String> {
    (d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()))
        .then(|| format!("{}-{}-{}", &d[..4], &d[4..6], &d[6..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_is_asked_and_allowed() {
        let scope = vec!["openid".to_owned()];
        assert!(requested(&scope, None, &[]).is_empty());
        let claims = serde_json::json!({"userinfo": {"given_name": null, FISCAL_NUMBER: {"essential": true}, "email": null}});
        assert_eq!(
            requested(&scope, Some(&claims), &[]),
            ["given_name", FISCAL_NUMBER]
        );
        let profile = vec!["openid".to_owned(), "profile".to_owned()];
        assert_eq!(
            requested(&profile, None, &["family_name".to_owned()]),
            ["family_name"]
        );
        let id = Identity {
            id: "i".into(),
            codice_fiscale: "TSTTST80A01H501X".into(),
            given_name: "Mario".into(),
            surname: "Rossi".into(),
        };
        let reg = serde_json::json!({"date_of_birth": "19800101", "sex": "M"});
        let all: Vec<String> = SUPPORTED.iter().map(|s| (*s).to_owned()).collect();
        let v = values(&id, Some(&reg), &all);
        assert_eq!(v[FISCAL_NUMBER], "TINIT-TSTTST80A01H501X");
        assert_eq!(v["birthdate"], "1980-01-01");
        assert_eq!(v["gender"], "male");
        assert!(!values(&id, None, &all).contains_key("birthdate"));
    }
}
