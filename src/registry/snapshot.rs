//! The read-only registry snapshot a scanner needs: for every filing that was ever approved,
//! its numbers, status, domains, IPs, providers, current certificate serial and expiry; the
//! providers' IP blocks; and the public keyring. Exported to one signed file (the signing key
//! stays with `issuance`) and loaded fast, its signature verified first.

use std::collections::HashMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::cert::{FilingFacts, FilingLookup, FilingState, Keyring};
use crate::number::{FilingNumber, LicenceNumber};

/// One service filing as the scanner sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotFiling {
    pub subject_number: FilingNumber,
    pub service_number: FilingNumber,
    pub subject_name: String,
    /// Primary province abbreviation of the filing (`京`, `粤`, …).
    pub province: char,
    pub state: FilingState,
    /// Registrable domains.
    pub domains: Vec<String>,
    pub ips: Vec<IpAddr>,
    /// Access-provider names.
    pub providers: Vec<String>,
    /// Serial of the current certificate, if one was issued.
    pub cert_serial: Option<u64>,
    /// Annual-review deadline, unix seconds.
    pub expires_at: Option<i64>,
    /// Operating (经营性) service: must show its licence.
    pub operating: bool,
    pub licence: Option<LicenceNumber>,
}

/// An address block reported in an IP filing, with the provider that holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderBlock {
    pub provider: String,
    pub network: ipnet::IpNet,
}

/// The snapshot a running `beian serve` keeps fresh in its registry directory (written at
/// start and after every refresh), so that read-only commands can judge against the registry
/// while `serve` holds the store.
pub const SERVE_SNAPSHOT_FILE: &str = "serve-snapshot.bin";

/// Current snapshot file format version. Format 2 is signed: `MAGIC ‖ u32 format ‖ u16
/// key-id length ‖ key id ‖ 64-byte ed25519 signature ‖ body`, the signature over
/// [`SNAPSHOT_SIGNING_PREFIX`] ‖ key id ‖ body, the body the bincode of the snapshot running to
/// the end of the file (so a truncated or extended file fails the signature).
pub const SNAPSHOT_FORMAT: u32 = 2;
/// Domain separation for snapshot signatures (certificates use `beian-cert-v1\0`).
pub const SNAPSHOT_SIGNING_PREFIX: &[u8] = b"beian-snapshot-v2\0";
const MAGIC: &[u8; 8] = b"BEIANSS\0";
const SIGNATURE_LEN: usize = 64;

/// Why a snapshot file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a beian snapshot (bad magic)")]
    BadMagic { path: String },
    #[error("{path}: snapshot format {found} is not supported (expected {SNAPSHOT_FORMAT})")]
    Format { path: String, found: u32 },
    #[error("{path}: corrupt snapshot: {reason}")]
    Corrupt { path: String, reason: String },
    #[error("{path}: an unsigned snapshot (format 1) is not trusted; export it again (`beian snapshot export`)")]
    Unsigned { path: String },
    #[error("{path}: the snapshot's signature does not verify under key {key_id}: it was altered or truncated")]
    BadSignature { path: String, key_id: String },
    #[error("{path}: the snapshot is signed by key {key_id}, which the keyring does not hold")]
    UnknownKey { path: String, key_id: String },
    #[error("{path}: the snapshot is signed by key {key_id}, which is marked compromised")]
    CompromisedKey { path: String, key_id: String },
}

/// The read-only registry view handed to scanners.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Snapshot {
    /// Unix seconds.
    pub generated_at: i64,
    pub keyring: Keyring,
    pub filings: Vec<SnapshotFiling>,
    pub ip_blocks: Vec<ProviderBlock>,
    #[serde(skip)]
    by_domain: HashMap<String, usize>,
    #[serde(skip)]
    by_number: HashMap<FilingNumber, usize>,
}

impl Snapshot {
    /// Build a snapshot and its indexes. When two filings claim one domain, an active one wins
    /// over a cancelled or revoked one.
    pub fn new(
        generated_at: i64,
        keyring: Keyring,
        filings: Vec<SnapshotFiling>,
        ip_blocks: Vec<ProviderBlock>,
    ) -> Self {
        let mut s = Snapshot {
            generated_at,
            keyring,
            filings,
            ip_blocks,
            by_domain: HashMap::new(),
            by_number: HashMap::new(),
        };
        s.index();
        s
    }

    fn index(&mut self) {
        self.by_domain.clear();
        self.by_number.clear();
        for (i, f) in self.filings.iter().enumerate() {
            self.by_number.insert(f.service_number.to_primary(), i);
            for d in &f.domains {
                match self.by_domain.get(d) {
                    Some(&j) if self.filings[j].state == FilingState::Active => {}
                    _ => {
                        self.by_domain.insert(d.clone(), i);
                    }
                }
            }
        }
    }

    /// The filing covering `host` (a normalised host name): its registrable domain's filing.
    pub fn lookup_host(&self, host: &str) -> Option<&SnapshotFiling> {
        let reg = crate::domain::Domain::of_host(host).ok()?;
        self.by_domain.get(reg.as_str()).map(|&i| &self.filings[i])
    }

    /// The filing with this service number (alternative province forms match).
    pub fn lookup_number(&self, number: &FilingNumber) -> Option<&SnapshotFiling> {
        self.by_number
            .get(&number.to_primary())
            .map(|&i| &self.filings[i])
    }

    /// The provider whose reported block holds `ip` (the most specific block wins).
    pub fn provider_of(&self, ip: IpAddr) -> Option<&str> {
        self.ip_blocks
            .iter()
            .filter(|b| b.network.contains(&ip))
            .max_by_key(|b| b.network.prefix_len())
            .map(|b| b.provider.as_str())
    }

    /// The body that is signed: the bincode of the snapshot.
    fn body(&self) -> Result<Vec<u8>, SnapshotError> {
        bincode::serialize(self).map_err(|e| SnapshotError::Corrupt {
            path: "(snapshot being written)".into(),
            reason: e.to_string(),
        })
    }

    /// The SHA-256 of the snapshot's content (hex): two scans judged against the same registry
    /// view have the same digest (sharded scans are merged only then).
    pub fn digest(&self) -> Result<String, SnapshotError> {
        use sha2::Digest;
        Ok(hex::encode(sha2::Sha256::digest(self.body()?)))
    }

    /// Serialise and sign with `key` (whose id is `key_id`): the signed file format (see
    /// [`SNAPSHOT_FORMAT`]). Only the registry's issuance holds signing keys.
    pub fn to_signed_bytes(
        &self,
        key_id: &str,
        key: &ed25519_dalek::SigningKey,
    ) -> Result<Vec<u8>, SnapshotError> {
        use ed25519_dalek::Signer;
        let body = self.body()?;
        let id = key_id.as_bytes();
        let id_len = u16::try_from(id.len()).map_err(|_| SnapshotError::Corrupt {
            path: "(snapshot being written)".into(),
            reason: "key id too long".into(),
        })?;
        let signature = key.sign(&signed_message(id, &body));
        let mut out = Vec::with_capacity(16 + id.len() + SIGNATURE_LEN + body.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&SNAPSHOT_FORMAT.to_le_bytes());
        out.extend_from_slice(&id_len.to_le_bytes());
        out.extend_from_slice(id);
        out.extend_from_slice(&signature.to_bytes());
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Read a signed snapshot and verify its signature against `pinned` (the registry's
    /// public keyring, exported with `beian keys export`), or, when none is given, against
    /// the keyring the snapshot carries (which proves integrity, not origin). Refused: any
    /// other format, a signature that does not verify (a flipped bit, a truncated or
    /// extended file), an unknown or compromised key.
    pub fn from_bytes(
        path: &str,
        bytes: &[u8],
        pinned: Option<&Keyring>,
    ) -> Result<Self, SnapshotError> {
        let p = || path.to_string();
        let corrupt = |reason: &str| SnapshotError::Corrupt {
            path: path.to_string(),
            reason: reason.to_string(),
        };
        if bytes.len() < 12 || &bytes[..8] != MAGIC {
            return Err(SnapshotError::BadMagic { path: p() });
        }
        let mut v = [0u8; 4];
        v.copy_from_slice(&bytes[8..12]);
        let found = u32::from_le_bytes(v);
        if found == 1 {
            return Err(SnapshotError::Unsigned { path: p() });
        }
        if found != SNAPSHOT_FORMAT {
            return Err(SnapshotError::Format { path: p(), found });
        }
        let rest = &bytes[12..];
        let id_len = rest
            .get(..2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
            .ok_or_else(|| corrupt("truncated header"))?;
        let id = rest
            .get(2..2 + id_len)
            .ok_or_else(|| corrupt("truncated key id"))?;
        let key_id = std::str::from_utf8(id).map_err(|_| corrupt("key id is not UTF-8"))?;
        let sig_bytes: [u8; SIGNATURE_LEN] = rest
            .get(2 + id_len..2 + id_len + SIGNATURE_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| corrupt("truncated signature"))?;
        let body = &rest[2 + id_len + SIGNATURE_LEN..];
        let mut s: Snapshot = bincode::options()
            .with_fixint_encoding()
            .reject_trailing_bytes()
            .with_limit(bytes.len() as u64 * 4 + 1024)
            .deserialize(body)
            .map_err(|e| {
                // A body that does not even decode: say what the signature says about it.
                SnapshotError::Corrupt {
                    path: path.to_string(),
                    reason: format!("{e} (the file was altered or truncated)"),
                }
            })?;
        let keyring = pinned.unwrap_or(&s.keyring);
        let entry = keyring
            .get(key_id)
            .ok_or_else(|| SnapshotError::UnknownKey {
                path: p(),
                key_id: key_id.to_string(),
            })?;
        if entry.compromised {
            return Err(SnapshotError::CompromisedKey {
                path: p(),
                key_id: key_id.to_string(),
            });
        }
        let bad = || SnapshotError::BadSignature {
            path: p(),
            key_id: key_id.to_string(),
        };
        let vk = entry.verifying_key().map_err(|_| bad())?;
        let signature = ed25519_dalek::Signature::from_bytes(&sig_bytes);
        vk.verify_strict(&signed_message(id, body), &signature)
            .map_err(|_| bad())?;
        s.index();
        Ok(s)
    }

    /// Sign and write atomically and durably ([`crate::fsutil::write_atomic`]).
    pub fn save_signed(
        &self,
        path: &std::path::Path,
        key_id: &str,
        key: &ed25519_dalek::SigningKey,
    ) -> Result<(), SnapshotError> {
        let bytes = self.to_signed_bytes(key_id, key)?;
        crate::fsutil::write_atomic(path, &bytes, None).map_err(|source| SnapshotError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    /// Read and verify a snapshot file (see [`Snapshot::from_bytes`]).
    pub fn load(path: &std::path::Path, pinned: Option<&Keyring>) -> Result<Self, SnapshotError> {
        let p = path.display().to_string();
        let bytes = crate::fsutil::read_bounded(path, crate::fsutil::MAX_SNAPSHOT_FILE).map_err(
            |source| SnapshotError::Io {
                path: p.clone(),
                source,
            },
        )?;
        Self::from_bytes(&p, &bytes, pinned)
    }

    /// Seconds since the snapshot was generated, at `now`.
    pub fn age(&self, now: i64) -> i64 {
        (now - self.generated_at).max(0)
    }
}

fn signed_message(key_id: &[u8], body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SNAPSHOT_SIGNING_PREFIX.len() + key_id.len() + body.len());
    m.extend_from_slice(SNAPSHOT_SIGNING_PREFIX);
    m.extend_from_slice(key_id);
    m.extend_from_slice(body);
    m
}

use bincode::Options;

impl FilingLookup for Snapshot {
    fn filing_facts(&self, service_number: &FilingNumber) -> Option<FilingFacts> {
        let f = self.lookup_number(service_number)?;
        Some(FilingFacts {
            state: f.state,
            current_serial: f.cert_serial?,
            expires_at: f.expires_at?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filing(num: &str, domains: &[&str], state: FilingState) -> SnapshotFiling {
        let n = FilingNumber::parse(num).unwrap();
        SnapshotFiling {
            subject_number: n.subject_number(),
            service_number: n,
            subject_name: "示例".into(),
            province: '京',
            state,
            domains: domains.iter().map(|d| d.to_string()).collect(),
            ips: vec![],
            providers: vec!["示例接入商".into()],
            cert_serial: Some(3),
            expires_at: Some(100),
            operating: false,
            licence: None,
        }
    }

    /// A signing key and a keyring holding it.
    pub(crate) fn test_key() -> (String, ed25519_dalek::SigningKey, Keyring) {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        let vk = key.verifying_key();
        let id = crate::cert::key_id_for(&vk);
        let mut ring = Keyring::default();
        ring.insert(crate::cert::PublicKeyEntry::new(id.clone(), &vk, 1))
            .unwrap();
        (id, key, ring)
    }

    #[test]
    fn round_trip_and_lookup() {
        let (id, key, ring) = test_key();
        let s = Snapshot::new(
            7,
            ring,
            vec![
                filing(
                    "京ICP备12345678号-1",
                    &["example.com"],
                    FilingState::Revoked,
                ),
                filing(
                    "京ICP备12345679号-1",
                    &["example.com", "b.test"],
                    FilingState::Active,
                ),
            ],
            vec![ProviderBlock {
                provider: "甲".into(),
                network: "203.0.113.0/24".parse().unwrap(),
            }],
        );
        let back =
            Snapshot::from_bytes("mem", &s.to_signed_bytes(&id, &key).unwrap(), None).unwrap();
        let f = back.lookup_host("www.example.com").unwrap();
        assert_eq!(f.service_number.to_string(), "京ICP备12345679号-1");
        assert!(back.lookup_host("other.test").is_none());
        assert_eq!(back.provider_of("203.0.113.9".parse().unwrap()), Some("甲"));
        assert!(back.provider_of("198.51.100.1".parse().unwrap()).is_none());
        let facts = back
            .filing_facts(&FilingNumber::parse("京ICP备12345678号-1").unwrap())
            .unwrap();
        assert_eq!(facts.state, FilingState::Revoked);
    }

    #[test]
    fn garbage_is_refused() {
        assert!(matches!(
            Snapshot::from_bytes("x", b"hello", None),
            Err(SnapshotError::BadMagic { .. })
        ));
        let (id, key, ring) = test_key();
        let mut b = Snapshot::new(1, ring, vec![], vec![])
            .to_signed_bytes(&id, &key)
            .unwrap();
        b.truncate(14);
        b.extend_from_slice(&[0xff; 3]);
        assert!(Snapshot::from_bytes("x", &b, None).is_err());
        // An unsigned format-1 file is refused by name.
        let mut v1 = MAGIC.to_vec();
        v1.extend_from_slice(&1u32.to_le_bytes());
        assert!(matches!(
            Snapshot::from_bytes("x", &v1, None),
            Err(SnapshotError::Unsigned { .. })
        ));
    }

    /// Single-bit flips anywhere, every truncation and an extension are refused.
    #[test]
    fn any_bit_flip_truncation_or_extension_is_refused() {
        let (id, key, ring) = test_key();
        let s = Snapshot::new(
            5,
            ring.clone(),
            vec![filing(
                "京ICP备12345678号-1",
                &["example.com"],
                FilingState::Active,
            )],
            vec![],
        );
        let good = s.to_signed_bytes(&id, &key).unwrap();
        assert!(Snapshot::from_bytes("x", &good, Some(&ring)).is_ok());
        for i in 0..good.len() {
            // Every byte, one of its bits (all eight bits of the header and signature).
            let bits: Vec<u8> = if i < 100 {
                (0..8).collect()
            } else {
                vec![(i % 8) as u8]
            };
            for bit in bits {
                let mut b = good.clone();
                b[i] ^= 1 << bit;
                assert!(
                    Snapshot::from_bytes("x", &b, Some(&ring)).is_err(),
                    "flip of bit {bit} at byte {i} accepted"
                );
                // Without a pinned keyring the embedded one still catches the flip.
                assert!(Snapshot::from_bytes("x", &b, None).is_err());
            }
        }
        for n in 0..good.len() {
            assert!(Snapshot::from_bytes("x", &good[..n], Some(&ring)).is_err());
        }
        let mut longer = good.clone();
        longer.push(0);
        assert!(Snapshot::from_bytes("x", &longer, Some(&ring)).is_err());
    }

    #[test]
    fn unknown_and_compromised_keys_are_refused() {
        let (id, key, ring) = test_key();
        let s = Snapshot::new(5, ring.clone(), vec![], vec![]);
        let bytes = s.to_signed_bytes(&id, &key).unwrap();
        let other = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
        let ovk = other.verifying_key();
        let mut other_ring = Keyring::default();
        other_ring
            .insert(crate::cert::PublicKeyEntry::new(
                crate::cert::key_id_for(&ovk),
                &ovk,
                1,
            ))
            .unwrap();
        assert!(matches!(
            Snapshot::from_bytes("x", &bytes, Some(&other_ring)),
            Err(SnapshotError::UnknownKey { .. })
        ));
        let mut bad_ring = ring.clone();
        bad_ring.mark_compromised(&id);
        assert!(matches!(
            Snapshot::from_bytes("x", &bytes, Some(&bad_ring)),
            Err(SnapshotError::CompromisedKey { .. })
        ));
    }
}
