//! The read-only registry snapshot a scanner needs: for every filing that was ever approved,
//! its numbers, status, domains, IPs, providers, current certificate serial and expiry; the
//! providers' IP blocks; and the public keyring. Exported to one file and loaded fast.

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

/// Current snapshot file format version.
pub const SNAPSHOT_FORMAT: u32 = 1;
const MAGIC: &[u8; 8] = b"BEIANSS\0";

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

    /// Serialise: magic, format version, then bincode.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.filings.len() * 256);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&SNAPSHOT_FORMAT.to_le_bytes());
        // Serialising plain data into a Vec cannot fail.
        if let Ok(body) = bincode::serialize(self) {
            out.extend_from_slice(&body);
        }
        out
    }

    pub fn from_bytes(path: &str, bytes: &[u8]) -> Result<Self, SnapshotError> {
        if bytes.len() < 12 || &bytes[..8] != MAGIC {
            return Err(SnapshotError::BadMagic {
                path: path.to_string(),
            });
        }
        let mut v = [0u8; 4];
        v.copy_from_slice(&bytes[8..12]);
        let found = u32::from_le_bytes(v);
        if found != SNAPSHOT_FORMAT {
            return Err(SnapshotError::Format {
                path: path.to_string(),
                found,
            });
        }
        let mut s: Snapshot = bincode::options()
            .with_fixint_encoding()
            .allow_trailing_bytes()
            .with_limit(bytes.len() as u64 * 4 + 1024)
            .deserialize(&bytes[12..])
            .map_err(|e| SnapshotError::Corrupt {
                path: path.to_string(),
                reason: e.to_string(),
            })?;
        s.index();
        Ok(s)
    }

    /// Write atomically and durably ([`crate::fsutil::write_atomic`]).
    pub fn save(&self, path: &std::path::Path) -> Result<(), SnapshotError> {
        crate::fsutil::write_atomic(path, &self.to_bytes(), None).map_err(|source| {
            SnapshotError::Io {
                path: path.display().to_string(),
                source,
            }
        })
    }

    pub fn load(path: &std::path::Path) -> Result<Self, SnapshotError> {
        let p = path.display().to_string();
        let bytes = crate::fsutil::read_bounded(path, crate::fsutil::MAX_SNAPSHOT_FILE).map_err(
            |source| SnapshotError::Io {
                path: p.clone(),
                source,
            },
        )?;
        Self::from_bytes(&p, &bytes)
    }
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

    #[test]
    fn round_trip_and_lookup() {
        let s = Snapshot::new(
            7,
            Keyring::default(),
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
        let back = Snapshot::from_bytes("mem", &s.to_bytes()).unwrap();
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
            Snapshot::from_bytes("x", b"hello"),
            Err(SnapshotError::BadMagic { .. })
        ));
        let mut b = Snapshot::default().to_bytes();
        b.truncate(14);
        b.extend_from_slice(&[0xff; 3]);
        assert!(Snapshot::from_bytes("x", &b).is_err());
    }
}
