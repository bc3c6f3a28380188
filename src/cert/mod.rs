//! The filing certificate served at `/cert/bazs.cert`: format, canonical payload bytes,
//! signing, the public keyring and verification. Pure: no network, disk or clock reads
//! (time is passed in). Only `registry::issuance` holds a signing key and calls [`sign`].
//!
//! - `format`: the versioned text format, [`parse`], [`sign`], [`inspect`];
//! - `keys`: key ids, the [`Keyring`] and its JSON export;
//! - `verify`: [`verify()`] for one host against a pinned keyring.

mod format;
mod keys;
mod verify;

pub use format::{
    inspect, parse, sign, signed_message, CertError, HEADER_V1, MAX_KEY_ID_LEN,
    MAX_SUBJECT_NAME_CHARS, SIGNATURE_DOMAIN,
};
pub use keys::{key_id_for, KeyringError, KEYRING_FORMAT, KEYRING_VERSION};
pub use verify::{verify, verify_offline};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::number::FilingNumber;

/// Largest certificate file accepted or produced, in bytes.
pub const MAX_CERT_BYTES: usize = 16 * 1024;

/// A signing key's id, e.g. `k1-3f9a2c…` (stable, printable ASCII).
pub type KeyId = String;

/// One public key of the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicKeyEntry {
    pub key_id: KeyId,
    /// ed25519 public key, 32 bytes, hex.
    pub public_key: String,
    /// Unix seconds.
    pub created_at: i64,
    /// A compromised key verifies nothing.
    pub compromised: bool,
}

/// The registry's public keys: what offline verifiers pin.
///
/// Serialised as `{"keys": {…}}` only; the decoded keys are a cache derived from `keys`,
/// built when the keyring is built or read (see `keys.rs`), so verification neither
/// hex-decodes nor decompresses a key. A cached key is used only while its entry still holds
/// the same hex text, so an entry changed through the public field is decoded afresh.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(from = "keys::KeyringData", into = "keys::KeyringData")]
pub struct Keyring {
    pub keys: BTreeMap<KeyId, PublicKeyEntry>,
    decoded: keys::DecodedKeys,
}

impl PartialEq for Keyring {
    fn eq(&self, other: &Self) -> bool {
        self.keys == other.keys
    }
}

impl Eq for Keyring {}

/// The signed content of a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertPayload {
    pub version: u32,
    pub serial: u64,
    pub subject_number: FilingNumber,
    pub service_number: FilingNumber,
    pub subject_name: String,
    /// Registrable domains, normalised (see `crate::domain`).
    pub domains: Vec<String>,
    /// Unix seconds.
    pub issued_at: i64,
    /// Unix seconds: the annual-review deadline.
    pub expires_at: i64,
    pub key_id: KeyId,
}

/// Where a filing stands, as far as a certificate verifier cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilingState {
    Active,
    Cancelled,
    Revoked,
}

/// The registry's current facts about one service filing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilingFacts {
    pub state: FilingState,
    pub current_serial: u64,
    pub expires_at: i64,
}

/// The read-only registry view verification needs.
pub trait FilingLookup {
    fn filing_facts(&self, service_number: &FilingNumber) -> Option<FilingFacts>;
}

/// A parsed certificate: the exact payload bytes that were signed, their parsed form, and
/// the signature. Verification checks `payload_bytes` as received; it never re-serialises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    pub payload: CertPayload,
    pub payload_bytes: Vec<u8>,
    pub signature: [u8; 64],
}

/// The outcome of verifying a certificate for a host. Every variant but `Valid` is a problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CertVerdict {
    Valid {
        payload: CertPayload,
    },
    /// Unparseable, wrong version, or larger than [`MAX_CERT_BYTES`].
    Malformed {
        reason: String,
    },
    BadSignature {
        key_id: KeyId,
    },
    UnknownKey {
        key_id: KeyId,
    },
    CompromisedKey {
        key_id: KeyId,
    },
    /// Genuine, but the scanned host is not under any signed domain.
    DomainNotCovered {
        payload: CertPayload,
    },
    /// Genuine, but the registry's current serial for the filing is higher.
    Superseded {
        payload: CertPayload,
        current_serial: u64,
    },
    /// Genuine, but the annual review is overdue.
    Expired {
        payload: CertPayload,
    },
    /// Genuine, but the filing was cancelled or revoked.
    FilingRevoked {
        payload: CertPayload,
        state: FilingState,
    },
    /// Genuine, but the registry view has no issued certificate for this service number.
    FilingUnknown {
        payload: CertPayload,
    },
}
