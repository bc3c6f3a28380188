//! Certificate verification for one scanned host against a pinned keyring and a registry
//! view. Pure: time is passed in.

use ed25519_dalek::Signature;

use super::format::{parse_borrowed, signed_message, Parsed};
use super::{CertVerdict, FilingFacts, FilingLookup, FilingState, Keyring};
use crate::domain::{covers, normalise_host_cow};
use crate::number::FilingNumber;

/// Verify with no registry view: signature, key (unknown or compromised in `keyring`),
/// domain coverage and the certificate's own expiry. Whether the filing is still active and
/// this is its current certificate is not checked: a `Valid` here means "genuine, for this
/// host, not expired", nothing more.
pub fn verify_offline(bytes: &[u8], keyring: &Keyring, host: &str, now: i64) -> CertVerdict {
    /// Takes the certificate's word for the filing's state.
    struct Own(FilingFacts);
    impl FilingLookup for Own {
        fn filing_facts(&self, _: &FilingNumber) -> Option<FilingFacts> {
            Some(self.0.clone())
        }
    }
    match parse_borrowed(bytes) {
        Ok(cert) => {
            let own = Own(FilingFacts {
                state: FilingState::Active,
                current_serial: cert.payload.serial,
                expires_at: cert.payload.expires_at,
            });
            verify_parsed(cert, keyring, host, &own, now)
        }
        Err(e) => CertVerdict::Malformed {
            reason: e.to_string(),
        },
    }
}

/// Verify the bytes served at `host`'s `/cert/bazs.cert`. Only keys in `keyring` (pinned
/// from the registry) are trusted. Checks, in order: format, key known, key not
/// compromised, signature, host covered, filing known, filing active, serial current,
/// not expired (neither the certificate's expiry nor the registry's current one).
pub fn verify(
    bytes: &[u8],
    keyring: &Keyring,
    host: &str,
    view: &dyn FilingLookup,
    now: i64,
) -> CertVerdict {
    match parse_borrowed(bytes) {
        Ok(cert) => verify_parsed(cert, keyring, host, view, now),
        Err(e) => CertVerdict::Malformed {
            reason: e.to_string(),
        },
    }
}

/// Everything after the format check.
fn verify_parsed(
    cert: Parsed<'_>,
    keyring: &Keyring,
    host: &str,
    view: &dyn FilingLookup,
    now: i64,
) -> CertVerdict {
    let key_id = &cert.payload.key_id;
    let Some(entry) = keyring.get(key_id) else {
        return CertVerdict::UnknownKey {
            key_id: key_id.clone(),
        };
    };
    if entry.compromised {
        return CertVerdict::CompromisedKey {
            key_id: key_id.clone(),
        };
    }
    // An entry whose public key does not decode verifies nothing.
    let Ok(key) = keyring.decoded_key(entry) else {
        return CertVerdict::UnknownKey {
            key_id: key_id.clone(),
        };
    };
    let signature = Signature::from_bytes(&cert.signature);
    if key
        .verify_strict(&signed_message(cert.payload_bytes), &signature)
        .is_err()
    {
        return CertVerdict::BadSignature {
            key_id: key_id.clone(),
        };
    }

    let payload = cert.payload;
    // Every domain `parse` returned is one `Domain::parse` accepted unchanged, so coverage
    // is the text comparison `Domain::covers` makes, without parsing each again.
    let covered =
        normalise_host_cow(host).is_ok_and(|h| payload.domains.iter().any(|d| covers(d, &h)));
    if !covered {
        return CertVerdict::DomainNotCovered { payload };
    }
    let Some(facts) = view.filing_facts(&payload.service_number) else {
        return CertVerdict::FilingUnknown { payload };
    };
    if facts.state != FilingState::Active {
        return CertVerdict::FilingRevoked {
            payload,
            state: facts.state,
        };
    }
    if payload.serial < facts.current_serial {
        return CertVerdict::Superseded {
            payload,
            current_serial: facts.current_serial,
        };
    }
    if now > payload.expires_at || now > facts.expires_at {
        return CertVerdict::Expired { payload };
    }
    CertVerdict::Valid { payload }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::super::format::sign;
    use super::super::format::tests::{key, sample_payload};
    use super::super::keys::key_id_for;
    use super::super::{FilingFacts, PublicKeyEntry};
    use super::*;
    use crate::number::FilingNumber;

    #[derive(Default)]
    struct View(HashMap<FilingNumber, FilingFacts>);

    impl FilingLookup for View {
        fn filing_facts(&self, n: &FilingNumber) -> Option<FilingFacts> {
            self.0.get(n).cloned()
        }
    }

    const NOW: i64 = 1_720_000_000; // 2024-07-03, inside the sample's validity

    struct Fixture {
        ring: Keyring,
        view: View,
        key_id: String,
    }

    fn fixture() -> Fixture {
        let vk = key(1).verifying_key();
        let key_id = key_id_for(&vk);
        let mut ring = Keyring::default();
        ring.insert(PublicKeyEntry::new(key_id.clone(), &vk, 0))
            .unwrap();
        let p = sample_payload(&key_id);
        let mut view = View::default();
        view.0.insert(
            p.service_number.clone(),
            FilingFacts {
                state: FilingState::Active,
                current_serial: p.serial,
                expires_at: p.expires_at,
            },
        );
        Fixture { ring, view, key_id }
    }

    fn sample_cert(f: &Fixture) -> Vec<u8> {
        sign(&sample_payload(&f.key_id), &key(1)).unwrap()
    }

    #[test]
    fn round_trip_is_valid_for_covered_hosts() {
        let f = fixture();
        let bytes = sample_cert(&f);
        for host in [
            "example.com",
            "www.example.com",
            "a.b.example.cn",
            "EXAMPLE.com.",
        ] {
            assert_eq!(
                verify(&bytes, &f.ring, host, &f.view, NOW),
                CertVerdict::Valid {
                    payload: sample_payload(&f.key_id)
                },
                "{host}"
            );
        }
    }

    #[test]
    fn every_bit_flip_fails() {
        let f = fixture();
        let bytes = sample_cert(&f);
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut t = bytes.clone();
                t[i] ^= 1 << bit;
                let v = verify(&t, &f.ring, "www.example.com", &f.view, NOW);
                assert!(
                    !matches!(v, CertVerdict::Valid { .. }),
                    "flipping bit {bit} of byte {i} still verifies"
                );
            }
        }
    }

    #[test]
    fn another_registrys_key_under_the_same_id_fails() {
        let f = fixture();
        // A forger signs with their own key but names our key id.
        let forged = sign(&sample_payload(&f.key_id), &key(2)).unwrap();
        assert_eq!(
            verify(&forged, &f.ring, "example.com", &f.view, NOW),
            CertVerdict::BadSignature {
                key_id: f.key_id.clone()
            }
        );
        // Naming their own key id: unknown to our keyring (a site-shipped key is never used).
        let own_id = key_id_for(&key(2).verifying_key());
        let forged = sign(&sample_payload(&own_id), &key(2)).unwrap();
        assert_eq!(
            verify(&forged, &f.ring, "example.com", &f.view, NOW),
            CertVerdict::UnknownKey { key_id: own_id }
        );
    }

    #[test]
    fn copied_certificate_on_another_domain_is_not_covered() {
        let f = fixture();
        let bytes = sample_cert(&f);
        for host in [
            "copycat.com",
            "example.com.evil.test",
            "badexample.com",
            "",
            "1.2.3.4",
        ] {
            assert!(
                matches!(
                    verify(&bytes, &f.ring, host, &f.view, NOW),
                    CertVerdict::DomainNotCovered { .. }
                ),
                "{host}"
            );
        }
    }

    #[test]
    fn rotation_keeps_old_keys_until_compromised() {
        let mut f = fixture();
        let old = sample_cert(&f);
        let new_vk = key(5).verifying_key();
        let new_id = key_id_for(&new_vk);
        f.ring
            .insert(PublicKeyEntry::new(new_id.clone(), &new_vk, 10))
            .unwrap();
        let new = sign(&sample_payload(&new_id), &key(5)).unwrap();
        assert!(matches!(
            verify(&old, &f.ring, "example.com", &f.view, NOW),
            CertVerdict::Valid { .. }
        ));
        assert!(matches!(
            verify(&new, &f.ring, "example.com", &f.view, NOW),
            CertVerdict::Valid { .. }
        ));
        assert!(f.ring.mark_compromised(&f.key_id));
        assert_eq!(
            verify(&old, &f.ring, "example.com", &f.view, NOW),
            CertVerdict::CompromisedKey {
                key_id: f.key_id.clone()
            }
        );
        assert!(matches!(
            verify(&new, &f.ring, "example.com", &f.view, NOW),
            CertVerdict::Valid { .. }
        ));
        // The exported keyring carries the compromise to offline verifiers.
        let offline = Keyring::from_json(&f.ring.to_json()).unwrap();
        assert!(matches!(
            verify(&old, &offline, "example.com", &f.view, NOW),
            CertVerdict::CompromisedKey { .. }
        ));
    }

    #[test]
    fn registry_state_decides_the_rest() {
        let f = fixture();
        let bytes = sample_cert(&f);
        let p = sample_payload(&f.key_id);
        let with = |facts: FilingFacts| {
            let mut v = View::default();
            v.0.insert(p.service_number.clone(), facts);
            verify(&bytes, &f.ring, "example.com", &v, NOW)
        };
        let active = FilingFacts {
            state: FilingState::Active,
            current_serial: p.serial,
            expires_at: p.expires_at,
        };
        assert_eq!(
            verify(&bytes, &f.ring, "example.com", &View::default(), NOW),
            CertVerdict::FilingUnknown { payload: p.clone() }
        );
        for state in [FilingState::Cancelled, FilingState::Revoked] {
            assert_eq!(
                with(FilingFacts {
                    state,
                    ..active.clone()
                }),
                CertVerdict::FilingRevoked {
                    payload: p.clone(),
                    state
                }
            );
        }
        assert_eq!(
            with(FilingFacts {
                current_serial: p.serial + 1,
                ..active.clone()
            }),
            CertVerdict::Superseded {
                payload: p.clone(),
                current_serial: p.serial + 1
            }
        );
        // The certificate's own expiry.
        assert_eq!(
            verify(&bytes, &f.ring, "example.com", &f.view, p.expires_at + 1),
            CertVerdict::Expired { payload: p.clone() }
        );
        assert!(matches!(
            verify(&bytes, &f.ring, "example.com", &f.view, p.expires_at),
            CertVerdict::Valid { .. }
        ));
        // The registry's current expiry (annual review overdue) wins when earlier.
        assert_eq!(
            with(FilingFacts {
                expires_at: NOW - 1,
                ..active.clone()
            }),
            CertVerdict::Expired { payload: p.clone() }
        );
        // Order: a revoked filing's copied certificate reports the domain first.
        let mut v = View::default();
        v.0.insert(
            p.service_number.clone(),
            FilingFacts {
                state: FilingState::Revoked,
                ..active
            },
        );
        assert!(matches!(
            verify(&bytes, &f.ring, "other.com", &v, NOW),
            CertVerdict::DomainNotCovered { .. }
        ));
    }

    #[test]
    fn malformed_inputs() {
        let f = fixture();
        let big = vec![b'x'; crate::cert::MAX_CERT_BYTES + 1];
        assert!(matches!(
            verify(&big, &f.ring, "example.com", &f.view, NOW),
            CertVerdict::Malformed { .. }
        ));
        assert!(matches!(
            verify(
                b"<html>not found</html>",
                &f.ring,
                "example.com",
                &f.view,
                NOW
            ),
            CertVerdict::Malformed { .. }
        ));
    }
    proptest::proptest! {
        /// Coverage by the certificate's domain text equals coverage by each domain parsed
        /// again (the check before), for arbitrary hosts.
        #[test]
        fn coverage_equals_parsing_each_domain(
            host in "[ ]?([a-zA-Z0-9\\-_]{0,6}\\.){0,3}(example|exampl|xample|示例)?\\.?(com|cn|com\\.cn|test|中国)?\\.?"
        ) {
            let f = fixture();
            let bytes = sample_cert(&f);
            let p = sample_payload(&f.key_id);
            let before = crate::domain::normalise_host(&host).is_ok_and(|h| {
                p.domains
                    .iter()
                    .any(|d| crate::domain::Domain::parse(d).is_ok_and(|d| d.covers(&h)))
            });
            let v = verify(&bytes, &f.ring, &host, &f.view, NOW);
            proptest::prop_assert_eq!(matches!(v, CertVerdict::Valid { .. }), before);
            proptest::prop_assert_eq!(matches!(v, CertVerdict::DomainNotCovered { .. }), !before);
        }
    }
}
