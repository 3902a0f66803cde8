//! PEM files read into rustls' types (certificates, private keys, CA sets), each failure
//! naming its file.

use super::TlsError;
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Reads `path` whole, naming it when it cannot be read.
pub(super) fn read(path: &str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.into(),
        source,
    })
}

/// The certificates of a PEM file, in order (a leaf, then its chain).
///
/// # Errors
/// The file cannot be read, holds no certificate, or a certificate block is malformed.
pub fn certificates(path: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Invalid {
            path: path.into(),
            reason: format!("not a PEM certificate file: {e}"),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Invalid {
            path: path.into(),
            reason: "no certificate in it (a `BEGIN CERTIFICATE` block)".into(),
        });
    }
    Ok(certs)
}

/// The first private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
///
/// # Errors
/// The file cannot be read or holds no key.
pub fn private_key(path: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| TlsError::Invalid {
        path: path.into(),
        reason: format!("no private key in it (PKCS#8, PKCS#1 or SEC1): {e}"),
    })
}

/// The CAs of a PEM file, as trust anchors.
///
/// # Errors
/// As [`certificates`], or a certificate is not a CA rustls can anchor to.
pub fn roots(path: &str) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for cert in certificates(path)? {
        store.add(cert).map_err(|e| TlsError::Invalid {
            path: path.into(),
            reason: format!("not a usable CA certificate: {e}"),
        })?;
    }
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn file(bytes: &[u8]) -> tempfile_like::Temp {
        tempfile_like::Temp::new(bytes)
    }

    /// A file removed when dropped (no tempfile crate for one test).
    mod tempfile_like {
        pub struct Temp(pub String);
        impl Temp {
            pub fn new(bytes: &[u8]) -> Temp {
                let path = std::env::temp_dir().join(format!(
                    "switchboard-pem-{}-{}",
                    std::process::id(),
                    fastrand::u64(..)
                ));
                std::fs::write(&path, bytes).expect("write");
                Temp(path.to_string_lossy().into_owned())
            }
        }
        impl Drop for Temp {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }

    #[test]
    fn a_missing_file_and_an_empty_one_are_named() {
        let e = certificates("/nonexistent/cert.pem").expect_err("missing");
        assert!(e.to_string().contains("/nonexistent/cert.pem"), "{e}");
        let f = file(b"");
        let e = certificates(&f.0).expect_err("empty");
        assert!(e.to_string().contains("no certificate"), "{e}");
        let e = private_key(&f.0).expect_err("empty");
        assert!(e.to_string().contains("no private key"), "{e}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Whatever a file holds, reading it answers (a value or an error), never panics.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512),
                                       pem in "(-----BEGIN (CERTIFICATE|PRIVATE KEY)-----\n[A-Za-z0-9+/=\n]{0,80}-----END (CERTIFICATE|PRIVATE KEY)-----\n){0,2}") {
            for content in [bytes.as_slice(), pem.as_bytes()] {
                let f = file(content);
                let _ = certificates(&f.0);
                let _ = private_key(&f.0);
                let _ = roots(&f.0);
            }
        }
    }
}
