//! Verification keys, each bound to one algorithm: HMAC secrets, the keys of a JSON Web
//! Key Set, a PEM public key. The algorithm comes from the key (its JWK `alg`, else its
//! type), never from a token's header.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};
use std::str::FromStr;
use thiserror::Error;

/// One key and the one algorithm it verifies.
#[derive(Clone)]
pub struct Key {
    /// Its `kid`, if it has one.
    pub kid: Option<String>,
    /// The algorithm it verifies.
    pub alg: Algorithm,
    /// The key.
    pub decoding: DecodingKey,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// Why keys could not be had.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    /// The JWKS is not a JSON Web Key Set.
    #[error("not a JSON Web Key Set: {0}")]
    NotJwks(String),
    /// It holds no key switchboard can verify with.
    #[error("no usable key ({0})")]
    NoUsableKey(String),
    /// A PEM file that is not a public key of the configured algorithm.
    #[error("not a {alg:?} public key in PEM: {reason}")]
    BadPem {
        /// The configured algorithm.
        alg: Algorithm,
        /// What the parser said.
        reason: String,
    },
    /// A file could not be read.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// An algorithm name that is not one of jsonwebtoken's.
    #[error("unknown algorithm `{0}`")]
    UnknownAlgorithm(String),
}

/// Parses algorithm names (`RS256`, `EdDSA`).
///
/// # Errors
/// A name that is not an algorithm.
pub fn algorithms(names: &[String]) -> Result<Vec<Algorithm>, KeyError> {
    names
        .iter()
        .map(|n| Algorithm::from_str(n).map_err(|_| KeyError::UnknownAlgorithm(n.clone())))
        .collect()
}

/// HMAC keys: each secret with each accepted algorithm.
pub fn from_secrets(secrets: &[String], algs: &[Algorithm]) -> Vec<Key> {
    secrets
        .iter()
        .flat_map(|s| {
            algs.iter().map(move |alg| Key {
                kid: None,
                alg: *alg,
                decoding: DecodingKey::from_secret(s.as_bytes()),
            })
        })
        .collect()
}

/// The verification keys of a JWKS document. Keys switchboard cannot use (symmetric
/// ones, unknown curves, encryption keys, a malformed member) are skipped and named in
/// the returned notes; a set with no usable key is an error.
///
/// `allowed`: the algorithms a key without `alg` may have (empty: its type's default).
///
/// # Errors
/// Not JSON, not a key set, or nothing usable in it.
pub fn from_jwks(bytes: &[u8], allowed: &[Algorithm]) -> Result<(Vec<Key>, Vec<String>), KeyError> {
    let set: JwkSet =
        serde_json::from_slice(bytes).map_err(|e| KeyError::NotJwks(e.to_string()))?;
    let mut keys = Vec::new();
    let mut notes = Vec::new();
    for jwk in &set.keys {
        let kid = jwk.common.key_id.clone();
        match from_jwk(jwk, allowed) {
            Ok(k) => keys.extend(k),
            Err(why) => notes.push(format!(
                "key {}: {why}",
                kid.as_deref().unwrap_or("(no kid)")
            )),
        }
    }
    if keys.is_empty() {
        return Err(KeyError::NoUsableKey(if notes.is_empty() {
            "the set is empty".into()
        } else {
            notes.join("; ")
        }));
    }
    Ok((keys, notes))
}

/// One JWK's keys (one per algorithm it may verify).
fn from_jwk(jwk: &Jwk, allowed: &[Algorithm]) -> Result<Vec<Key>, String> {
    if let Some(u) = &jwk.common.public_key_use
        && *u != jsonwebtoken::jwk::PublicKeyUse::Signature
    {
        return Err("not a signature key (`use`)".into());
    }
    let family = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Family::Rsa,
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => Family::P256,
            EllipticCurve::P384 => Family::P384,
            _ => return Err(format!("unsupported curve {:?}", p.curve)),
        },
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            Family::Ed25519
        }
        AlgorithmParameters::OctetKeyPair(p) => {
            return Err(format!("unsupported curve {:?}", p.curve));
        }
        // A shared secret published in a key set is not a public key: never trusted.
        AlgorithmParameters::OctetKey(_) => return Err("symmetric keys are not accepted".into()),
        _ => return Err("unsupported key type".into()),
    };
    let algs: Vec<Algorithm> = match jwk.common.key_algorithm {
        Some(ka) => vec![jwk_alg(ka).ok_or_else(|| format!("unsupported alg {ka:?}"))?],
        None if allowed.is_empty() => vec![family.default_alg()],
        None => allowed.to_vec(),
    };
    let algs: Vec<Algorithm> = algs.into_iter().filter(|a| family.fits(*a)).collect();
    if algs.is_empty() {
        return Err("its alg does not fit its key type".into());
    }
    let decoding = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    Ok(algs
        .into_iter()
        .map(|alg| Key {
            kid: jwk.common.key_id.clone(),
            alg,
            decoding: decoding.clone(),
        })
        .collect())
}

/// A PEM public key for `alg`.
///
/// # Errors
/// Not a PEM public key of that algorithm's family.
pub fn from_pem(bytes: &[u8], alg: Algorithm) -> Result<Key, KeyError> {
    let decoding = match Family::of(alg)? {
        Family::Rsa => DecodingKey::from_rsa_pem(bytes),
        Family::P256 | Family::P384 => DecodingKey::from_ec_pem(bytes),
        Family::Ed25519 => DecodingKey::from_ed_pem(bytes),
    }
    .map_err(|e| KeyError::BadPem {
        alg,
        reason: e.to_string(),
    })?;
    Ok(Key {
        kid: None,
        alg,
        decoding,
    })
}

/// What a key is, for which algorithms fit it.
#[derive(Clone, Copy)]
pub(super) enum Family {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl Family {
    /// The family of keys `alg` signs with.
    ///
    /// # Errors
    /// HMAC: a secret, not a key pair.
    pub(super) fn of(alg: Algorithm) -> Result<Family, KeyError> {
        [Family::Rsa, Family::P256, Family::P384, Family::Ed25519]
            .into_iter()
            .find(|f| f.fits(alg))
            .ok_or(KeyError::BadPem {
                alg,
                reason: "HMAC signs with a secret, not a key pair".into(),
            })
    }

    fn default_alg(self) -> Algorithm {
        match self {
            Family::Rsa => Algorithm::RS256,
            Family::P256 => Algorithm::ES256,
            Family::P384 => Algorithm::ES384,
            Family::Ed25519 => Algorithm::EdDSA,
        }
    }

    fn fits(self, alg: Algorithm) -> bool {
        use Algorithm as A;
        match self {
            Family::Rsa => matches!(
                alg,
                A::RS256 | A::RS384 | A::RS512 | A::PS256 | A::PS384 | A::PS512
            ),
            Family::P256 => alg == A::ES256,
            Family::P384 => alg == A::ES384,
            Family::Ed25519 => alg == A::EdDSA,
        }
    }
}

/// A JWK `alg` as a signature algorithm (encryption algorithms are not).
fn jwk_alg(ka: KeyAlgorithm) -> Option<Algorithm> {
    Algorithm::from_str(&format!("{ka:?}")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_sets_keep_what_verifies_and_say_what_they_skip() {
        let jwks = br#"{"keys":[
            {"kty":"oct","k":"c2VjcmV0","kid":"s"},
            {"kty":"EC","crv":"P-256","kid":"e","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty":"EC","crv":"P-256","kid":"wrong","alg":"RS256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty":"EC","crv":"P-256","kid":"enc","use":"enc","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}
        ]}"#;
        let (keys, notes) = from_jwks(jwks, &[]).expect("one usable key");
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid.as_deref(), Some("e"));
        assert_eq!(keys[0].alg, Algorithm::ES256);
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert!(matches!(
            from_jwks(b"not json", &[]),
            Err(KeyError::NotJwks(_))
        ));
        assert!(matches!(
            from_jwks(br#"{"keys":[]}"#, &[]),
            Err(KeyError::NoUsableKey(_))
        ));
        assert!(matches!(
            from_jwks(br#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#, &[]),
            Err(KeyError::NoUsableKey(_))
        ));
        assert!(matches!(
            from_pem(
                b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
                Algorithm::RS256
            ),
            Err(KeyError::BadPem { .. })
        ));
        assert!(matches!(
            algorithms(&["HS999".into()]),
            Err(KeyError::UnknownAlgorithm(_))
        ));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Any bytes a JWKS endpoint or file holds give keys or a reason: no panic.
        #[test]
        fn any_jwks_bytes_give_keys_or_a_reason(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = from_jwks(&bytes, &[]);
            let _ = from_pem(&bytes, Algorithm::RS256);
            let _ = from_pem(&bytes, Algorithm::ES256);
            let _ = from_pem(&bytes, Algorithm::EdDSA);
        }

        /// JWK-shaped JSON with arbitrary members: keys or a reason, no panic.
        #[test]
        fn jwk_shaped_json_gives_keys_or_a_reason(
            kty in "(RSA|EC|OKP|oct|[A-Z]{0,3})",
            crv in "(P-256|P-384|P-521|Ed25519|X25519|[a-z]{0,4})",
            alg in "(RS256|ES256|EdDSA|HS256|RSA-OAEP|none|[A-Z0-9]{0,5})",
            x in "[A-Za-z0-9_-]{0,60}",
            n in "[A-Za-z0-9_-]{0,60}",
        ) {
            let jwks = serde_json::json!({"keys": [
                {"kty": kty, "crv": crv, "alg": alg, "x": x, "y": x, "n": n, "e": "AQAB", "kid": "k"}
            ]});
            let _ = from_jwks(jwks.to_string().as_bytes(), &[Algorithm::RS256]);
        }
    }
}
