//! The stored-record codec, shared by every backend. A stored record is an envelope: the magic
//! [`MAGIC`], the record format version (u16, little-endian), then the payload. Format 1's
//! payload is the record's JSON: self-describing, so a field added with `#[serde(default)]`
//! reads older records without a migration; anything else changes the format and adds a
//! migration here. Bytes without the envelope are format 0 (bincode of the structs of the
//! releases before this codec), decoded through the frozen layouts in [`v0`] and migrated.
//!
//! Encoding never silently writes nothing: a record that cannot be encoded is an error.
//!
//! The envelope itself ([`seal`], [`open`]) is shared with the typed generic records of
//! [`super::records`] (sessions, the outbox, announcements, …), whose payloads each kind defines
//! (JSON, or an attachment's raw bytes) and whose format 0 is what earlier releases wrote bare.

pub mod v0;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::accounts::UserRecord;
use crate::registry::model::{Filing, IpFiling, Subject};

/// Starts every enveloped record. Bytes 4–5 are non-zero, so no format-0 record (whose first
/// eight bytes are a small id or a string length, little-endian) can be mistaken for one.
pub const MAGIC: [u8; 6] = [0xFF, b'B', b'R', b'E', b'C', 0xFF];
/// The record format this build writes.
pub const FORMAT: u16 = 1;
/// The oldest record format this build reads (and migrates).
pub const OLDEST_FORMAT: u16 = 0;

/// A record that cannot be encoded or decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    #[error("{kind} record: format {version} is newer than this beian reads (up to {FORMAT}); upgrade beian")]
    TooNew { kind: &'static str, version: u16 },
    #[error("{kind} record (format {version}): {reason}")]
    Invalid {
        kind: &'static str,
        version: u16,
        reason: String,
    },
    #[error("{kind} record cannot be encoded: {reason}")]
    Encode { kind: &'static str, reason: String },
}

/// A record type the store keeps.
pub trait Persisted: Serialize + DeserializeOwned {
    /// Its name in errors.
    const KIND: &'static str;
    /// Decode a format-0 record (bare bincode of the old layout).
    fn from_v0(bytes: &[u8]) -> Result<Self, String>;
}

impl Persisted for Subject {
    const KIND: &'static str = "subject";
    fn from_v0(bytes: &[u8]) -> Result<Self, String> {
        v0::decode::<v0::Subject>(bytes).map(Into::into)
    }
}

impl Persisted for Filing {
    const KIND: &'static str = "filing";
    fn from_v0(bytes: &[u8]) -> Result<Self, String> {
        v0::decode::<v0::Filing>(bytes).map(Into::into)
    }
}

impl Persisted for UserRecord {
    const KIND: &'static str = "user";
    fn from_v0(bytes: &[u8]) -> Result<Self, String> {
        v0::decode::<v0::UserRecord>(bytes).map(Into::into)
    }
}

impl Persisted for IpFiling {
    const KIND: &'static str = "IP filing";
    fn from_v0(bytes: &[u8]) -> Result<Self, String> {
        v0::decode::<v0::IpFiling>(bytes).map(Into::into)
    }
}

/// The format of stored bytes: the envelope's version, or 0 without one.
pub fn format_of(bytes: &[u8]) -> u16 {
    match bytes.strip_prefix(&MAGIC[..]) {
        Some([a, b, ..]) => u16::from_le_bytes([*a, *b]),
        // Magic without a version: not a valid envelope; report it as "newer" is wrong, so
        // call it format 0 and let decoding fail on it.
        _ => 0,
    }
}

/// Wrap a payload in the envelope of the current format.
pub fn seal(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAGIC.len() + 2 + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Open stored bytes of a `kind` record: its format and payload. Bytes without the envelope
/// are format 0, the whole of them the payload; an envelope of a format this build does not
/// read is an error (a newer one says to upgrade).
pub fn open<'a>(kind: &'static str, bytes: &'a [u8]) -> Result<(u16, &'a [u8]), CodecError> {
    let invalid = |version: u16, reason: &str| CodecError::Invalid {
        kind,
        version,
        reason: reason.into(),
    };
    match bytes.strip_prefix(&MAGIC[..]) {
        None => Ok((0, bytes)),
        Some(rest) => {
            let (Some(v), Some(payload)) = (rest.get(..2), rest.get(2..)) else {
                return Err(invalid(0, "envelope without a version"));
            };
            match u16::from_le_bytes([v[0], v[1]]) {
                FORMAT => Ok((FORMAT, payload)),
                v if v > FORMAT => Err(CodecError::TooNew { kind, version: v }),
                v => Err(invalid(v, "no such format")),
            }
        }
    }
}

/// Encode a record in the current format.
pub fn encode<T: Persisted>(v: &T) -> Result<Vec<u8>, CodecError> {
    let payload = serde_json::to_vec(v).map_err(|e| CodecError::Encode {
        kind: T::KIND,
        reason: e.to_string(),
    })?;
    Ok(seal(&payload))
}

/// Decode a record of any format this build reads.
pub fn decode<T: Persisted>(bytes: &[u8]) -> Result<T, CodecError> {
    let invalid = |version: u16, reason: String| CodecError::Invalid {
        kind: T::KIND,
        version,
        reason,
    };
    match open(T::KIND, bytes)? {
        (0, payload) => T::from_v0(payload).map_err(|r| invalid(0, r)),
        (version, payload) => {
            serde_json::from_slice(payload).map_err(|e| invalid(version, e.to_string()))
        }
    }
}

/// Re-encode stored bytes in the current format, if they are older (`None`: already current).
pub fn migrate<T: Persisted>(bytes: &[u8]) -> Result<Option<Vec<u8>>, CodecError> {
    if format_of(bytes) == FORMAT && bytes.starts_with(&MAGIC) {
        return Ok(None);
    }
    let v: T = decode(bytes)?;
    encode(&v).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::Actor;
    use proptest::prelude::*;

    fn user() -> UserRecord {
        UserRecord {
            username: "zhang_san".into(),
            actor: Actor::Icp {
                username: "zhang_san".into(),
            },
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$abc$def".into(),
            created_at: 1_700_000_000,
            created_by: "register".into(),
        }
    }

    #[test]
    fn current_records_round_trip_in_an_envelope() {
        let u = user();
        let bytes = encode(&u).unwrap();
        assert!(bytes.starts_with(&MAGIC));
        assert_eq!(format_of(&bytes), FORMAT);
        assert_eq!(decode::<UserRecord>(&bytes).unwrap(), u);
        assert_eq!(migrate::<UserRecord>(&bytes).unwrap(), None);
    }

    #[test]
    fn format_0_records_decode_and_migrate() {
        let u = user();
        let legacy = bincode::serialize(&v0::UserRecord::from(u.clone())).unwrap();
        assert_eq!(format_of(&legacy), 0);
        assert_eq!(decode::<UserRecord>(&legacy).unwrap(), u);
        let migrated = migrate::<UserRecord>(&legacy).unwrap().unwrap();
        assert_eq!(decode::<UserRecord>(&migrated).unwrap(), u);
    }

    #[test]
    fn newer_and_broken_records_are_errors_naming_the_kind() {
        let mut newer = MAGIC.to_vec();
        newer.extend_from_slice(&7u16.to_le_bytes());
        newer.extend_from_slice(b"{}");
        let e = decode::<Filing>(&newer).unwrap_err();
        assert_eq!(
            e,
            CodecError::TooNew {
                kind: "filing",
                version: 7
            }
        );
        assert!(e.to_string().contains("upgrade"), "{e}");
        let mut bad = encode(&user()).unwrap();
        bad.truncate(bad.len() - 3);
        assert!(matches!(
            decode::<UserRecord>(&bad),
            Err(CodecError::Invalid { version: 1, .. })
        ));
        assert!(decode::<UserRecord>(&MAGIC).is_err());
        assert!(decode::<Subject>(b"").is_err());
    }

    #[test]
    fn a_field_added_with_a_default_reads_older_records() {
        // Format 1 is self-describing: a record missing a field that has a serde default
        // decodes; bincode (format 0) could not do this.
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct Grown {
            a: u32,
            #[serde(default)]
            b: Vec<String>,
        }
        impl Persisted for Grown {
            const KIND: &'static str = "grown";
            fn from_v0(_: &[u8]) -> Result<Self, String> {
                Err("none".into())
            }
        }
        let mut old = MAGIC.to_vec();
        old.extend_from_slice(&FORMAT.to_le_bytes());
        old.extend_from_slice(br#"{"a":3}"#);
        assert_eq!(decode::<Grown>(&old).unwrap(), Grown { a: 3, b: vec![] });
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode::<Filing>(&bytes);
            let _ = decode::<Subject>(&bytes);
            let _ = decode::<UserRecord>(&bytes);
            let _ = decode::<IpFiling>(&bytes);
        }
    }
}
