//! Metadata policy (OpenID Federation 1.0 §6.1): the operators `value`, `add`, `default`,
//! `one_of`, `subset_of`, `superset_of` and `essential`, applied to one entity type's
//! metadata. Superiors' policies are applied one after the other, the Trust Anchor's first
//! (with one superior, as in the SPID/CIE federations, the same as merging then applying).
//! Operators we do not know are ignored (none is marked critical by the profile; the
//! reference Trust Anchor emits a stray `max_path_length` inside its policy).

use serde_json::{Map, Value, json};

/// Why metadata cannot satisfy a policy (the parameter named, never its value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The policy itself is not well formed (an operator of the wrong type, or `value`
    /// combined with operators it excludes).
    #[error("metadata policy for {0} is malformed")]
    Malformed(String),
    /// The metadata breaks an operator (`one_of`, `superset_of`, `essential`).
    #[error("metadata parameter {0} does not satisfy the federation's policy")]
    Violated(String),
}

/// Apply `policy` (`{parameter: {operator: …}}`) to `metadata`, in place.
pub fn apply(metadata: &mut Map<String, Value>, policy: &Value) -> Result<(), PolicyError> {
    let Some(policy) = policy.as_object() else {
        return Err(PolicyError::Malformed("the entity type".into()));
    };
    for (name, ops) in policy {
        let Some(ops) = ops.as_object() else {
            return Err(PolicyError::Malformed(name.clone()));
        };
        // `scope` is a space-separated string: the operators see its words (§6.1.3.1).
        let words = name == "scope" && metadata.get(name).is_some_and(Value::is_string);
        if words {
            split_words(metadata, name);
        }
        apply_one(metadata, name, ops)?;
        if words {
            join_words(metadata, name);
        }
    }
    Ok(())
}

fn split_words(metadata: &mut Map<String, Value>, name: &str) {
    if let Some(Value::String(s)) = metadata.get(name) {
        let words = s.split_whitespace().map(|w| json!(w)).collect();
        metadata.insert(name.to_owned(), Value::Array(words));
    }
}

fn join_words(metadata: &mut Map<String, Value>, name: &str) {
    if let Some(Value::Array(items)) = metadata.get(name) {
        let words: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
        let joined = words.join(" ");
        metadata.insert(name.to_owned(), Value::String(joined));
    }
}

fn apply_one(
    metadata: &mut Map<String, Value>,
    name: &str,
    ops: &Map<String, Value>,
) -> Result<(), PolicyError> {
    let malformed = || PolicyError::Malformed(name.to_owned());
    let violated = || PolicyError::Violated(name.to_owned());
    let list = |op: &str| -> Result<Option<&Vec<Value>>, PolicyError> {
        match ops.get(op) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(_) => Err(malformed()),
        }
    };
    let essential = match ops.get("essential") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(malformed()),
    };
    let (one_of, subset_of, superset_of, add) = (
        list("one_of")?,
        list("subset_of")?,
        list("superset_of")?,
        list("add")?,
    );
    if let Some(value) = ops.get("value") {
        // `value` combines only with `essential` (§6.1.3.1.1).
        if ops.contains_key("add") || ops.contains_key("default") || one_of.is_some() {
            return Err(malformed());
        }
        if value.is_null() {
            metadata.remove(name);
        } else {
            metadata.insert(name.to_owned(), value.clone());
        }
        return if essential && value.is_null() {
            Err(violated())
        } else {
            Ok(())
        };
    }
    if one_of.is_some() && (subset_of.is_some() || superset_of.is_some()) {
        return Err(malformed());
    }
    if let Some(add) = add {
        let current = metadata
            .entry(name.to_owned())
            .or_insert_with(|| Value::Array(Vec::new()));
        let Value::Array(items) = current else {
            return Err(violated());
        };
        for v in add {
            if !items.contains(v) {
                items.push(v.clone());
            }
        }
    }
    if let Some(default) = ops.get("default")
        && !metadata.contains_key(name)
        && !default.is_null()
    {
        metadata.insert(name.to_owned(), default.clone());
    }
    if let (Some(allowed), Some(v)) = (one_of, metadata.get(name))
        && !allowed.contains(v)
    {
        return Err(violated());
    }
    if let (Some(allowed), Some(v)) = (subset_of, metadata.get(name)) {
        let Value::Array(items) = v else {
            return Err(violated());
        };
        let kept: Vec<Value> = items
            .iter()
            .filter(|i| allowed.contains(i))
            .cloned()
            .collect();
        if kept.is_empty() {
            metadata.remove(name);
        } else {
            metadata.insert(name.to_owned(), Value::Array(kept));
        }
    }
    if let (Some(required), Some(v)) = (superset_of, metadata.get(name)) {
        let Value::Array(items) = v else {
            return Err(violated());
        };
        if !required.iter().all(|r| items.contains(r)) {
            return Err(violated());
        }
    }
    if essential && !metadata.contains_key(name) {
        return Err(violated());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(metadata: Value, policy: Value) -> Result<Value, PolicyError> {
        let mut m = metadata.as_object().cloned().unwrap_or_default();
        apply(&mut m, &policy).map(|()| Value::Object(m))
    }

    #[test]
    fn each_operator() {
        let md = json!({
            "grant_types": ["authorization_code", "refresh_token", "implicit"],
            "token_endpoint_auth_method": "private_key_jwt",
            "contacts": ["a@rp"],
            "scope": "openid",
        });
        let policy = json!({
            "grant_types": {"subset_of": ["authorization_code", "refresh_token"]},
            "token_endpoint_auth_method": {"one_of": ["private_key_jwt"], "essential": true},
            "contacts": {"add": ["ops@ta"]},
            "client_registration_types": {"default": ["automatic"]},
            "scope": {"value": "openid profile"},
            "response_types": {"superset_of": ["code"]},
            "id_token_signed_response_alg": {"max_path_length": 1},
        });
        let out = run(md, policy).unwrap();
        assert_eq!(
            out["grant_types"],
            json!(["authorization_code", "refresh_token"])
        );
        assert_eq!(out["contacts"], json!(["a@rp", "ops@ta"]));
        assert_eq!(out["client_registration_types"], json!(["automatic"]));
        assert_eq!(out["scope"], "openid profile");
        // superset_of on an absent parameter, and an unknown operator: no effect.
        assert!(out.get("response_types").is_none());
        assert!(out.get("id_token_signed_response_alg").is_none());
    }

    /// The reference Trust Anchor's default policy on `scope`, a space-separated string.
    #[test]
    fn scope_words() {
        let policy = json!({"scope": {"superset_of": ["openid"], "subset_of": ["openid", "offline_access"]}});
        let out = run(
            json!({"scope": "openid profile offline_access"}),
            policy.clone(),
        );
        assert_eq!(out.unwrap()["scope"], "openid offline_access");
        // Nothing left: the parameter goes (and the provider then allows its defaults).
        let out = run(json!({"scope": "profile"}), policy).unwrap();
        assert!(out.get("scope").is_none());
    }

    #[test]
    fn violations_and_malformed_policies() {
        let md = json!({"token_endpoint_auth_method": "client_secret_basic",
            "response_types": ["id_token"], "grant_types": ["implicit"]});
        let cases = [
            (
                json!({"token_endpoint_auth_method": {"one_of": ["private_key_jwt"]}}),
                PolicyError::Violated("token_endpoint_auth_method".into()),
            ),
            (
                json!({"response_types": {"superset_of": ["code"]}}),
                PolicyError::Violated("response_types".into()),
            ),
            (
                json!({"jwks": {"essential": true}}),
                PolicyError::Violated("jwks".into()),
            ),
            // subset_of leaving nothing removes the parameter; essential then fails.
            (
                json!({"grant_types": {"subset_of": ["authorization_code"], "essential": true}}),
                PolicyError::Violated("grant_types".into()),
            ),
            (
                json!({"scope": {"value": "openid", "add": ["x"]}}),
                PolicyError::Malformed("scope".into()),
            ),
            (
                json!({"grant_types": {"one_of": ["a"], "subset_of": ["a"]}}),
                PolicyError::Malformed("grant_types".into()),
            ),
            (
                json!({"grant_types": {"subset_of": "a"}}),
                PolicyError::Malformed("grant_types".into()),
            ),
            (
                json!({"grant_types": 1}),
                PolicyError::Malformed("grant_types".into()),
            ),
        ];
        for (policy, want) in cases {
            assert_eq!(run(md.clone(), policy.clone()), Err(want), "{policy}");
        }
        assert!(run(md.clone(), json!([])).is_err());
    }

    /// `value: null` removes a parameter; superiors apply in order (TA first).
    #[test]
    fn value_null_and_sequence() {
        let mut m = json!({"logo_uri": "https://rp/logo", "grant_types": ["authorization_code", "refresh_token"]})
            .as_object()
            .cloned()
            .unwrap();
        apply(&mut m, &json!({"logo_uri": {"value": null}})).unwrap();
        apply(
            &mut m,
            &json!({"grant_types": {"subset_of": ["authorization_code"]}}),
        )
        .unwrap();
        assert_eq!(
            Value::Object(m),
            json!({"grant_types": ["authorization_code"]})
        );
    }
}
