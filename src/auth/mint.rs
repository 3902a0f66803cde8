//! Minting tokens: with a shared secret (HS256) or a private key in PEM (RS*, PS*, ES*,
//! EdDSA, with a `kid`), for `switchboard token`, re-signing for backends, and tests. A
//! signer also gives its public key as a JWK, to publish in a key set.

use super::keys::{Family, KeyError};
use super::{AuthError, Claims};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Signs tokens with one key.
#[derive(Clone)]
pub struct Signer {
    alg: Algorithm,
    key: EncodingKey,
    kid: Option<String>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// HS256 with `secret`.
    pub fn hs256(secret: &str) -> Signer {
        Signer {
            alg: Algorithm::HS256,
            key: EncodingKey::from_secret(secret.as_bytes()),
            kid: None,
        }
    }

    /// A private key in PEM (PKCS#1 or PKCS#8 for RSA, PKCS#8 for EC and Ed25519) for
    /// `alg`, naming `kid` in the tokens' header.
    ///
    /// # Errors
    /// An HMAC algorithm, or a PEM that is not a private key of `alg`'s family.
    pub fn from_pem(pem: &[u8], alg: Algorithm, kid: Option<String>) -> Result<Signer, KeyError> {
        let key = match Family::of(alg)? {
            Family::Rsa => EncodingKey::from_rsa_pem(pem),
            Family::P256 | Family::P384 => EncodingKey::from_ec_pem(pem),
            Family::Ed25519 => EncodingKey::from_ed_pem(pem),
        }
        .map_err(|e| KeyError::BadPem {
            alg,
            reason: e.to_string(),
        })?;
        Ok(Signer { alg, key, kid })
    }

    /// Reads a private key file (see [`Signer::from_pem`]).
    ///
    /// # Errors
    /// Unreadable, or not a private key of `alg`.
    pub fn from_pem_file(
        path: &std::path::Path,
        alg: Algorithm,
        kid: Option<String>,
    ) -> Result<Signer, KeyError> {
        let pem = std::fs::read(path).map_err(|e| KeyError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Signer::from_pem(&pem, alg, kid)
    }

    /// Its algorithm.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// Its public key as a JWK (with its `kid` and `alg`), for a key set.
    ///
    /// # Errors
    /// An HMAC signer: a secret is never published.
    pub fn public_jwk(&self) -> Result<Jwk, AuthError> {
        if matches!(
            self.alg,
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
        ) {
            return Err(AuthError::Invalid("a secret has no public key".into()));
        }
        let mut jwk = Jwk::from_encoding_key(&self.key, self.alg)
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        jwk.common.key_id = self.kid.clone();
        Ok(jwk)
    }

    /// A key set of the given signers' public keys.
    ///
    /// # Errors
    /// As [`Signer::public_jwk`].
    pub fn key_set(signers: &[&Signer]) -> Result<JwkSet, AuthError> {
        Ok(JwkSet {
            keys: signers
                .iter()
                .map(|s| s.public_jwk())
                .collect::<Result<_, _>>()?,
        })
    }

    /// Mints a token for `user` valid for `ttl` from now.
    ///
    /// # Errors
    /// Only if signing fails.
    pub fn mint(
        &self,
        user: &str,
        name: Option<&str>,
        rooms: Option<Vec<String>>,
        ttl: Duration,
    ) -> Result<String, AuthError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.sign(&Claims {
            sub: user.to_string(),
            name: name.map(str::to_string),
            rooms,
            iat: now,
            exp: now.saturating_add(ttl.as_secs()),
            nbf: None,
        })
    }

    /// Signs arbitrary claims.
    ///
    /// # Errors
    /// Only if signing fails.
    pub fn sign<C: Serialize>(&self, claims: &C) -> Result<String, AuthError> {
        let mut header = Header::new(self.alg);
        header.kid = self.kid.clone();
        jsonwebtoken::encode(&header, claims, &self.key)
            .map_err(|e| AuthError::Invalid(e.to_string()))
    }
}
