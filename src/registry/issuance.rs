//! Issuance: the only code that loads the registry's ed25519 signing keys. Keys live under
//! `<registry>/keys/`: `<key id>.key` (secret, hex, file mode 0600), `keyring.json` (the
//! public keyring offline verifiers pin) and `current` (the id of the key that signs new
//! certificates and snapshots). Rotation adds a key; old keys keep verifying unless marked
//! compromised. A replica's key directory holds the public keyring only
//! ([`Issuer::open_public`], [`Issuer::set_public_keyring`]): it never signs.

use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;

use crate::cert::{key_id_for, CertPayload, KeyId, Keyring, PublicKeyEntry};

use super::model::{Filing, IssuedCert, Subject};

/// Why a key could not be created, loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum IssuanceError {
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
    #[error("{path}: corrupt key material: {reason}")]
    Corrupt { path: String, reason: String },
    #[error("key {0} is not in the keyring")]
    UnknownKey(KeyId),
    #[error("{path}: keys already exist (the registry is initialised)")]
    Exists { path: String },
    #[error("no usable signing key: every key is compromised; rotate first")]
    NoUsableKey,
    #[error("cannot sign the certificate of filing {filing}: {reason}")]
    Sign { filing: u64, reason: String },
    #[error("cannot issue a certificate for filing {0}: it has no number")]
    Unnumbered(u64),
    #[error("cannot sign the snapshot: {0}")]
    SignSnapshot(String),
    /// Another process on the same database rotated the keys: this one's key directory is
    /// out of date, and signing with it could use a compromised key.
    #[error("the signing keys were rotated by another server (current key {current}); copy DIR/keys from it and restart, then try again")]
    Rotated { current: KeyId },
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> IssuanceError {
    IssuanceError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rotation {
    /// The new current key, if a new key was created.
    pub new_key: Option<KeyId>,
    pub compromised: Option<KeyId>,
    pub current: KeyId,
    /// Filings whose certificate (signed by the compromised key) was re-issued.
    pub reissued: Vec<super::model::FilingId>,
}

/// The key directory of a registry, with the current signing key loaded on first use.
pub struct Issuer {
    dir: PathBuf,
    keyring: Keyring,
    current: KeyId,
    signing: Option<SigningKey>,
}

fn write_file(path: &Path, bytes: &[u8], secret: bool) -> Result<(), IssuanceError> {
    crate::fsutil::write_atomic(path, bytes, secret.then_some(0o600)).map_err(|e| io_err(path, e))
}

impl Issuer {
    pub fn keys_dir(registry_dir: &Path) -> PathBuf {
        registry_dir.join("keys")
    }

    /// Create the key directory with a first key. Fails if keys already exist.
    pub fn create(registry_dir: &Path, now: i64) -> Result<Issuer, IssuanceError> {
        let dir = Self::keys_dir(registry_dir);
        if dir.join("keyring.json").exists() {
            return Err(IssuanceError::Exists {
                path: dir.display().to_string(),
            });
        }
        std::fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
        }
        let mut issuer = Issuer {
            dir,
            keyring: Keyring::default(),
            current: String::new(),
            signing: None,
        };
        issuer.add_key(now)?;
        Ok(issuer)
    }

    /// Open an existing key directory (public parts only; the secret loads when signing).
    pub fn open(registry_dir: &Path) -> Result<Issuer, IssuanceError> {
        let dir = Self::keys_dir(registry_dir);
        let ring_path = dir.join("keyring.json");
        let text = crate::fsutil::read_bounded_string(&ring_path, crate::fsutil::MAX_TEXT_FILE)
            .map_err(|e| io_err(&ring_path, e))?;
        let keyring = Keyring::from_json(&text).map_err(|e| IssuanceError::Corrupt {
            path: ring_path.display().to_string(),
            reason: e.to_string(),
        })?;
        let cur_path = dir.join("current");
        let current = crate::fsutil::read_bounded_string(&cur_path, crate::fsutil::MAX_TEXT_FILE)
            .map_err(|e| io_err(&cur_path, e))?
            .trim()
            .to_string();
        if !keyring.keys.contains_key(&current) {
            return Err(IssuanceError::UnknownKey(current));
        }
        Ok(Issuer {
            dir,
            keyring,
            current,
            signing: None,
        })
    }

    /// Open the public half of a key directory: a replica's, which holds the keyring it
    /// follows and never a secret or a current key. A missing directory is an empty keyring.
    pub fn open_public(registry_dir: &Path) -> Result<Issuer, IssuanceError> {
        let dir = Self::keys_dir(registry_dir);
        let ring_path = dir.join("keyring.json");
        let keyring = if ring_path.exists() {
            let text = crate::fsutil::read_bounded_string(&ring_path, crate::fsutil::MAX_TEXT_FILE)
                .map_err(|e| io_err(&ring_path, e))?;
            Keyring::from_json(&text).map_err(|e| IssuanceError::Corrupt {
                path: ring_path.display().to_string(),
                reason: e.to_string(),
            })?
        } else {
            Keyring::default()
        };
        Ok(Issuer {
            dir,
            keyring,
            current: KeyId::new(),
            signing: None,
        })
    }

    /// Replace the public keyring (a replica following its primary's `keyring` records),
    /// durably.
    pub fn set_public_keyring(&mut self, keyring: Keyring) -> Result<(), IssuanceError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| io_err(&self.dir, e))?;
        self.keyring = keyring;
        self.save_keyring()
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    pub fn current_key_id(&self) -> &str {
        &self.current
    }

    fn add_key(&mut self, now: i64) -> Result<KeyId, IssuanceError> {
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        let vk = key.verifying_key();
        let id = key_id_for(&vk);
        let key_path = self.dir.join(key_file_name(&id));
        write_file(&key_path, hex::encode(key.to_bytes()).as_bytes(), true)?;
        self.keyring
            .insert(PublicKeyEntry::new(id.clone(), &vk, now))
            .map_err(|e| IssuanceError::Corrupt {
                path: key_path.display().to_string(),
                reason: e.to_string(),
            })?;
        self.save_keyring()?;
        write_file(&self.dir.join("current"), id.as_bytes(), false)?;
        self.current = id.clone();
        self.signing = Some(key);
        Ok(id)
    }

    fn save_keyring(&self) -> Result<(), IssuanceError> {
        write_file(
            &self.dir.join("keyring.json"),
            self.keyring.to_json().as_bytes(),
            false,
        )
    }

    /// Rotate: a new key signs from now on. With `compromised`, that key is marked
    /// compromised first (everything it signed stops verifying); a rotation happens anyway.
    pub fn rotate(
        &mut self,
        compromised: Option<&str>,
        now: i64,
    ) -> Result<Rotation, IssuanceError> {
        if let Some(k) = compromised {
            if !self.keyring.mark_compromised(k) {
                return Err(IssuanceError::UnknownKey(k.to_string()));
            }
            self.save_keyring()?;
        }
        let new = self.add_key(now)?;
        Ok(Rotation {
            new_key: Some(new.clone()),
            compromised: compromised.map(str::to_string),
            current: new,
            reissued: Vec::new(),
        })
    }

    /// The signed file of a scanner snapshot, signed with the current key.
    pub fn sign_snapshot(
        &mut self,
        snapshot: &crate::registry::snapshot::Snapshot,
    ) -> Result<Vec<u8>, IssuanceError> {
        let key_id = self.current.clone();
        let key = self.signing_key()?;
        snapshot
            .to_signed_bytes(&key_id, key)
            .map_err(|e| IssuanceError::SignSnapshot(e.to_string()))
    }

    fn signing_key(&mut self) -> Result<&SigningKey, IssuanceError> {
        if self
            .keyring
            .keys
            .get(&self.current)
            .is_none_or(|e| e.compromised)
        {
            return Err(IssuanceError::NoUsableKey);
        }
        if self.signing.is_none() {
            let path = self.dir.join(key_file_name(&self.current));
            let text = crate::fsutil::read_bounded_string(&path, crate::fsutil::MAX_TEXT_FILE)
                .map_err(|e| io_err(&path, e))?;
            let corrupt = |reason: &str| IssuanceError::Corrupt {
                path: path.display().to_string(),
                reason: reason.to_string(),
            };
            let bytes = hex::decode(text.trim()).map_err(|_| corrupt("not hex"))?;
            let arr: [u8; 32] = bytes.try_into().map_err(|_| corrupt("not 32 bytes"))?;
            let key = SigningKey::from_bytes(&arr);
            if key_id_for(&key.verifying_key()) != self.current {
                return Err(corrupt("the key does not match its key id"));
            }
            self.signing = Some(key);
        }
        self.signing.as_ref().ok_or(IssuanceError::NoUsableKey)
    }

    /// Sign a certificate for the filing's current content with serial `filing.cert_serial`.
    pub fn issue(
        &mut self,
        filing: &Filing,
        subject: &Subject,
        now: i64,
    ) -> Result<IssuedCert, IssuanceError> {
        let number = filing
            .number
            .clone()
            .ok_or(IssuanceError::Unnumbered(filing.id))?;
        let expires_at = filing
            .expires_at
            .unwrap_or_else(|| super::model::one_year_after(now));
        let key_id = self.current.clone();
        let payload = CertPayload {
            version: 1,
            serial: filing.cert_serial,
            subject_number: number.subject_number(),
            service_number: number,
            subject_name: subject.name.clone(),
            domains: filing
                .domains
                .iter()
                .map(|d| d.as_str().to_string())
                .collect(),
            issued_at: now,
            expires_at,
            key_id: key_id.clone(),
        };
        let key = self.signing_key()?;
        let bytes = crate::cert::sign(&payload, key).map_err(|e| IssuanceError::Sign {
            filing: filing.id,
            reason: e.to_string(),
        })?;
        Ok(IssuedCert {
            serial: filing.cert_serial,
            key_id,
            issued_at: now,
            expires_at,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        })
    }
}

/// The secret key file of a key id (`ed25519:ab…` → `ed25519_ab….key`).
pub fn key_file_name(key_id: &str) -> String {
    let safe: String = key_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}.key")
}
