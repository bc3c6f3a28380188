//! The registry's public keyring: key ids, rotation (old keys keep verifying), compromise
//! marking, and the JSON export offline verifiers pin (`beian keys export`).

use std::collections::BTreeMap;

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::format::check_key_id;
use super::{KeyId, Keyring, PublicKeyEntry};

/// The `format` tag of an exported keyring.
pub const KEYRING_FORMAT: &str = "beian-keyring";
/// The exported keyring version written and accepted.
pub const KEYRING_VERSION: u32 = 1;

/// Why a key or keyring is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    #[error("key {key_id:?} is not in the keyring")]
    UnknownKey { key_id: KeyId },
    #[error("key id {key_id:?}: {reason}")]
    BadKeyId { key_id: KeyId, reason: &'static str },
    #[error("key {key_id:?}: public key is not hex: {reason}")]
    BadHex { key_id: KeyId, reason: String },
    #[error("key {key_id:?}: public key is {len} bytes, expected 32")]
    BadLength { key_id: KeyId, len: usize },
    #[error("key {key_id:?}: public key is not a usable ed25519 point")]
    BadPoint { key_id: KeyId },
    #[error("key id {key_id:?} is already in the keyring with a different public key")]
    Conflict { key_id: KeyId },
    #[error("keyring JSON (line {line}, column {column}): {reason}")]
    Json {
        line: usize,
        column: usize,
        reason: String,
    },
    #[error("keyring JSON: format {format:?} version {version} is not {KEYRING_FORMAT:?} version {KEYRING_VERSION}")]
    UnsupportedFormat { format: String, version: u32 },
    #[error("keyring JSON: key {key_id:?} listed twice")]
    Duplicate { key_id: KeyId },
}

/// The key id for a public key: `ed25519:` and the first 16 hex digits of its SHA-256.
pub fn key_id_for(public: &VerifyingKey) -> KeyId {
    let digest = Sha256::digest(public.as_bytes());
    format!("ed25519:{}", &hex::encode(digest)[..16])
}

impl PublicKeyEntry {
    /// The entry for `public` under `key_id` (use [`key_id_for`] unless the registry names
    /// keys otherwise), not compromised.
    pub fn new(key_id: KeyId, public: &VerifyingKey, created_at: i64) -> Self {
        PublicKeyEntry {
            key_id,
            public_key: hex::encode(public.as_bytes()),
            created_at,
            compromised: false,
        }
    }

    /// Decode and check the public key (and the key id's form).
    pub fn verifying_key(&self) -> Result<VerifyingKey, KeyringError> {
        check_key_id(&self.key_id).map_err(|reason| KeyringError::BadKeyId {
            key_id: self.key_id.clone(),
            reason,
        })?;
        let raw = hex::decode(&self.public_key).map_err(|e| KeyringError::BadHex {
            key_id: self.key_id.clone(),
            reason: e.to_string(),
        })?;
        let bytes: [u8; 32] = raw
            .as_slice()
            .try_into()
            .map_err(|_| KeyringError::BadLength {
                key_id: self.key_id.clone(),
                len: raw.len(),
            })?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| KeyringError::BadPoint {
            key_id: self.key_id.clone(),
        })?;
        if key.is_weak() {
            return Err(KeyringError::BadPoint {
                key_id: self.key_id.clone(),
            });
        }
        Ok(key)
    }
}

/// The serialised shape of a [`Keyring`]: its entries only (the decoded keys are derived).
#[derive(Serialize, Deserialize)]
pub(super) struct KeyringData {
    keys: BTreeMap<KeyId, PublicKeyEntry>,
}

impl From<KeyringData> for Keyring {
    fn from(data: KeyringData) -> Keyring {
        let decoded = DecodedKeys(
            data.keys
                .values()
                .filter_map(|e| {
                    let key = e.verifying_key().ok()?;
                    Some((e.key_id.clone(), (e.public_key.clone(), key)))
                })
                .collect(),
        );
        Keyring {
            keys: data.keys,
            decoded,
        }
    }
}

impl From<Keyring> for KeyringData {
    fn from(ring: Keyring) -> KeyringData {
        KeyringData { keys: ring.keys }
    }
}

/// Decoded public keys by key id, each with the hex text it was decoded from.
#[derive(Clone, Default)]
pub(super) struct DecodedKeys(BTreeMap<KeyId, (String, VerifyingKey)>);

impl std::fmt::Debug for DecodedKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DecodedKeys({} keys)", self.0.len())
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyringExport {
    format: String,
    version: u32,
    keys: Vec<PublicKeyEntry>,
}

impl Keyring {
    /// Add a key (rotation: existing keys stay and keep verifying). Re-adding the same key is
    /// a no-op that never clears a compromise mark; the same id with another key is refused.
    pub fn insert(&mut self, entry: PublicKeyEntry) -> Result<(), KeyringError> {
        let new_key = entry.verifying_key()?;
        if let Some(existing) = self.keys.get_mut(&entry.key_id) {
            let same = existing
                .verifying_key()
                .map(|k| k == new_key)
                .unwrap_or(false);
            if !same {
                return Err(KeyringError::Conflict {
                    key_id: entry.key_id,
                });
            }
            existing.compromised |= entry.compromised;
            return Ok(());
        }
        let entry = PublicKeyEntry {
            public_key: hex::encode(new_key.as_bytes()),
            ..entry
        };
        self.decoded
            .0
            .insert(entry.key_id.clone(), (entry.public_key.clone(), new_key));
        self.keys.insert(entry.key_id.clone(), entry);
        Ok(())
    }

    /// The decoded key of `entry` (an entry of this keyring): from the cache while the entry
    /// holds the text it was decoded from, decoded afresh otherwise.
    pub(super) fn decoded_key(&self, entry: &PublicKeyEntry) -> Result<VerifyingKey, KeyringError> {
        match self.decoded.0.get(&entry.key_id) {
            Some((hex, key)) if *hex == entry.public_key => Ok(*key),
            _ => entry.verifying_key(),
        }
    }

    /// Mark a key compromised: it verifies nothing from now on. False if it is unknown.
    pub fn mark_compromised(&mut self, key_id: &str) -> bool {
        match self.keys.get_mut(key_id) {
            Some(e) => {
                e.compromised = true;
                true
            }
            None => false,
        }
    }

    pub fn get(&self, key_id: &str) -> Option<&PublicKeyEntry> {
        self.keys.get(key_id)
    }

    /// The public key for `key_id` (whether or not it is compromised: check
    /// [`PublicKeyEntry::compromised`]).
    pub fn verifying_key(&self, key_id: &str) -> Result<VerifyingKey, KeyringError> {
        self.keys
            .get(key_id)
            .ok_or_else(|| KeyringError::UnknownKey {
                key_id: key_id.to_string(),
            })
            .and_then(|entry| self.decoded_key(entry))
    }

    /// The export offline verifiers pin: `{"format":"beian-keyring","version":1,"keys":[…]}`.
    pub fn to_json(&self) -> String {
        let export = KeyringExport {
            format: KEYRING_FORMAT.to_string(),
            version: KEYRING_VERSION,
            keys: self.keys.values().cloned().collect(),
        };
        // Serialising plain strings, integers and booleans cannot fail.
        serde_json::to_string_pretty(&export).unwrap_or_default()
    }

    /// Read an export, validating every key (hex, length, curve point, key id).
    pub fn from_json(text: &str) -> Result<Keyring, KeyringError> {
        let export: KeyringExport = serde_json::from_str(text).map_err(|e| KeyringError::Json {
            line: e.line(),
            column: e.column(),
            reason: e.to_string(),
        })?;
        if export.format != KEYRING_FORMAT || export.version != KEYRING_VERSION {
            return Err(KeyringError::UnsupportedFormat {
                format: export.format,
                version: export.version,
            });
        }
        let mut ring = Keyring::default();
        for entry in export.keys {
            if ring.keys.contains_key(&entry.key_id) {
                return Err(KeyringError::Duplicate {
                    key_id: entry.key_id,
                });
            }
            ring.insert(entry)?;
        }
        Ok(ring)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    fn vk(seed: u8) -> VerifyingKey {
        SigningKey::from_bytes(&[seed; 32]).verifying_key()
    }

    #[test]
    fn key_ids_are_stable_and_distinct() {
        let a = key_id_for(&vk(1));
        assert!(a.starts_with("ed25519:"));
        assert_eq!(a.len(), "ed25519:".len() + 16);
        assert_eq!(a, key_id_for(&vk(1)));
        assert_ne!(a, key_id_for(&vk(2)));
        let expected = hex::encode(Sha256::digest(vk(1).as_bytes()));
        assert_eq!(&a[8..], &expected[..16]);
    }

    #[test]
    fn insert_rotate_and_compromise() {
        let mut ring = Keyring::default();
        let e1 = PublicKeyEntry::new(key_id_for(&vk(1)), &vk(1), 100);
        ring.insert(e1.clone()).unwrap();
        ring.insert(PublicKeyEntry::new(key_id_for(&vk(2)), &vk(2), 200))
            .unwrap();
        assert_eq!(ring.verifying_key(&e1.key_id).unwrap(), vk(1));
        // Same id, other key: refused.
        let clash = PublicKeyEntry::new(e1.key_id.clone(), &vk(3), 300);
        assert_eq!(
            ring.insert(clash),
            Err(KeyringError::Conflict {
                key_id: e1.key_id.clone()
            })
        );
        assert!(ring.mark_compromised(&e1.key_id));
        assert!(!ring.mark_compromised("nope"));
        // Re-inserting does not clear the mark.
        ring.insert(e1.clone()).unwrap();
        assert!(ring.get(&e1.key_id).unwrap().compromised);
        assert!(matches!(
            ring.verifying_key("nope"),
            Err(KeyringError::UnknownKey { .. })
        ));
    }

    #[test]
    fn decoded_keys_follow_the_entries() {
        let mut ring = Keyring::default();
        ring.insert(PublicKeyEntry::new("k1".into(), &vk(1), 100))
            .unwrap();
        assert_eq!(ring.verifying_key("k1").unwrap(), vk(1));
        // The serialised shape is the entries only, and reading it rebuilds the cache.
        let text = serde_json::to_string(&ring).unwrap();
        assert!(
            text.starts_with(r#"{"keys":{"k1":{"key_id":"k1","#),
            "{text}"
        );
        let back: Keyring = serde_json::from_str(&text).unwrap();
        assert_eq!(back, ring);
        assert_eq!(back.decoded.0.len(), 1);
        assert_eq!(back.verifying_key("k1").unwrap(), vk(1));
        // An entry changed through the public field is decoded afresh, never from the cache.
        let mut changed = back.clone();
        changed.keys.get_mut("k1").unwrap().public_key = hex::encode(vk(2).as_bytes());
        assert_eq!(changed.verifying_key("k1").unwrap(), vk(2));
        changed.keys.get_mut("k1").unwrap().public_key = "zz".into();
        assert!(matches!(
            changed.verifying_key("k1"),
            Err(KeyringError::BadHex { .. })
        ));
        // A serialised entry that does not decode is not cached and still refused.
        let bad = text.replace(&hex::encode(vk(1).as_bytes()), &"00".repeat(32));
        let bad: Keyring = serde_json::from_str(&bad).unwrap();
        assert!(bad.decoded.0.is_empty());
        assert!(bad.verifying_key("k1").is_err());
    }

    #[test]
    fn json_round_trip_and_validation() {
        let mut ring = Keyring::default();
        ring.insert(PublicKeyEntry::new("k1".into(), &vk(1), 100))
            .unwrap();
        ring.insert(PublicKeyEntry::new("k2".into(), &vk(2), 200))
            .unwrap();
        ring.mark_compromised("k1");
        let json = ring.to_json();
        assert!(json.contains("\"format\": \"beian-keyring\""));
        assert_eq!(Keyring::from_json(&json).unwrap(), ring);

        let good = hex::encode(vk(1).as_bytes());
        let doc = |id: &str, key: &str| {
            format!(
                r#"{{"format":"beian-keyring","version":1,"keys":[{{"key_id":"{id}","public_key":"{key}","created_at":1,"compromised":false}}]}}"#
            )
        };
        assert!(Keyring::from_json(&doc("k1", &good)).is_ok());
        assert!(matches!(
            Keyring::from_json(&doc("k1", "zz")),
            Err(KeyringError::BadHex { .. })
        ));
        assert!(matches!(
            Keyring::from_json(&doc("k1", &good[..62])),
            Err(KeyringError::BadLength { len: 31, .. })
        ));
        // The identity point is a weak (small-order) key.
        let identity = format!("01{}", "00".repeat(31));
        assert!(matches!(
            Keyring::from_json(&doc("k1", &identity)),
            Err(KeyringError::BadPoint { .. })
        ));
        assert!(matches!(
            Keyring::from_json(&doc("k 1", &good)),
            Err(KeyringError::BadKeyId { .. })
        ));
        assert!(matches!(
            Keyring::from_json(r#"{"format":"other","version":1,"keys":[]}"#),
            Err(KeyringError::UnsupportedFormat { .. })
        ));
        assert!(matches!(
            Keyring::from_json(r#"{"format":"beian-keyring","version":1,"keys":[],"x":1}"#),
            Err(KeyringError::Json { .. })
        ));
        let dup = format!(
            r#"{{"format":"beian-keyring","version":1,"keys":[{e},{e}]}}"#,
            e = format_args!(
                r#"{{"key_id":"k1","public_key":"{good}","created_at":1,"compromised":false}}"#
            )
        );
        assert!(matches!(
            Keyring::from_json(&dup),
            Err(KeyringError::Duplicate { .. })
        ));
    }
}
