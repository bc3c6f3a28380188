//! Typed generic records: the one way the program reads and writes the store's generic
//! records (sessions, login challenges, pending registrations, reset tokens, contacts, contact
//! changes, import authorisations, the outbox, notices, announcements and their attachments,
//! the signing keys every server checks before it signs).
//!
//! A kind of record is a [`RecordKind`]: its name in the store and the type of its value.
//! Values are stored in the versioned envelope of [`super::codec`] ([`codec::seal`]); each kind
//! says what its payload is — JSON for most ([`JsonKind`]), the raw bytes for an attachment.
//! Bytes without the envelope are format 0, what releases before typed records wrote (bare
//! JSON, raw bytes) and still read as such. They are not migrated in place: each write's audit
//! entry holds the SHA-256 of the bytes it stored, so rewriting them outside the log would be
//! "edited outside the log"; a legacy record is rewritten in the current format the next time
//! it is written through the log.
//!
//! [`TypedRecords`] (every [`RegistryScan`]) reads, [`TypedRecordsTxn`] (every
//! [`RegistryTxn`]) writes and deletes. Encoding failure is an error, never empty bytes; a
//! stored record that does not decode is [`StoreError::Corrupt`] naming `kind:key`. The untyped
//! `record` / `scan_records` / `put_record` stay the backends' primitive under this layer (and
//! replication's, which copies public records' bytes as they are).

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::codec::{self, CodecError};
use super::{AuditMeta, RegistryScan, RegistryTxn, StoreError};

/// A kind of generic record.
pub trait RecordKind {
    /// The kind's name in the store: the `kind` of the untyped primitive and the prefix of its
    /// audit entities (`session:<key>`). Stored data names it: never change it.
    const KIND: &'static str;
    /// What a record of this kind holds.
    type Value;
    /// The value's payload in the current record format.
    fn to_payload(value: &Self::Value) -> Result<Vec<u8>, String>;
    /// A value from the payload of a record of `format` (0: written without the envelope).
    fn from_payload(format: u16, payload: &[u8]) -> Result<Self::Value, String>;
}

/// A kind whose payload is its value's JSON in every format (format 0 being the bare JSON
/// earlier releases wrote). Implementing it implements [`RecordKind`].
pub trait JsonKind {
    /// See [`RecordKind::KIND`].
    const KIND: &'static str;
    type Value: Serialize + DeserializeOwned;
}

impl<K: JsonKind> RecordKind for K {
    const KIND: &'static str = <K as JsonKind>::KIND;
    type Value = <K as JsonKind>::Value;
    fn to_payload(value: &Self::Value) -> Result<Vec<u8>, String> {
        serde_json::to_vec(value).map_err(|e| e.to_string())
    }
    fn from_payload(_format: u16, payload: &[u8]) -> Result<Self::Value, String> {
        serde_json::from_slice(payload).map_err(|e| e.to_string())
    }
}

/// A value of kind `K` as stored bytes, in the current format.
pub fn encode<K: RecordKind>(value: &K::Value) -> Result<Vec<u8>, CodecError> {
    K::to_payload(value)
        .map(|p| codec::seal(&p))
        .map_err(|reason| CodecError::Encode {
            kind: K::KIND,
            reason,
        })
}

/// Stored bytes of a `K` record, of any format this build reads.
pub fn decode<K: RecordKind>(bytes: &[u8]) -> Result<K::Value, CodecError> {
    let (version, payload) = codec::open(K::KIND, bytes)?;
    K::from_payload(version, payload).map_err(|reason| CodecError::Invalid {
        kind: K::KIND,
        version,
        reason,
    })
}

/// The error for a `K` record under `key` that does not decode.
pub fn corrupt<K: RecordKind>(key: &str, e: CodecError) -> StoreError {
    StoreError::Corrupt {
        key: format!("{}:{key}", K::KIND),
        reason: e.to_string(),
    }
}

fn decode_at<K: RecordKind>(key: &str, bytes: &[u8]) -> Result<K::Value, StoreError> {
    decode::<K>(bytes).map_err(|e| corrupt::<K>(key, e))
}

/// What [`TypedRecords::scan_kind_each`] calls with each record: its key and its value or why
/// it does not decode; `false` stops.
pub type EachVisitor<'a, K> =
    dyn FnMut(&str, Result<<K as RecordKind>::Value, StoreError>) -> bool + 'a;

/// Typed reads of generic records, for every store.
pub trait TypedRecords: RegistryScan {
    /// The `K` record under `key`; one that does not decode is [`StoreError::Corrupt`].
    fn load_record<K: RecordKind>(&self, key: &str) -> Result<Option<K::Value>, StoreError> {
        self.record(K::KIND, key)?
            .map(|b| decode_at::<K>(key, &b))
            .transpose()
    }

    /// The `K` record under `key`, which `valid` must accept (e.g. against a digest kept
    /// elsewhere): one it refuses is [`StoreError::Corrupt`]. For kinds whose format 0 is any
    /// bytes (attachments), a bare record of an earlier release that happens to begin with the
    /// envelope's magic reads as enveloped; when that reading is refused and the bare one is
    /// accepted, the bare one is the record.
    fn load_record_checked<K: RecordKind>(
        &self,
        key: &str,
        valid: &dyn Fn(&K::Value) -> bool,
    ) -> Result<Option<K::Value>, StoreError> {
        let Some(bytes) = self.record(K::KIND, key)? else {
            return Ok(None);
        };
        let enveloped = match decode::<K>(&bytes) {
            Ok(v) if valid(&v) => return Ok(Some(v)),
            other => other,
        };
        if bytes.starts_with(&codec::MAGIC) {
            if let Ok(bare) = K::from_payload(0, &bytes) {
                if valid(&bare) {
                    return Ok(Some(bare));
                }
            }
        }
        Err(match enveloped {
            Err(e) => corrupt::<K>(key, e),
            Ok(_) => StoreError::Corrupt {
                key: format!("{}:{key}", K::KIND),
                reason: "it is not what refers to it says (its check failed, e.g. a digest)".into(),
            },
        })
    }

    /// Whether a `K` record is stored under `key` (not decoded: for kinds whose presence is
    /// their meaning).
    fn has_record<K: RecordKind>(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.record(K::KIND, key)?.is_some())
    }

    /// Every `K` record in key order, as (key, value); the visitor returns `false` to stop.
    /// The first record that does not decode stops the scan as [`StoreError::Corrupt`].
    fn scan_kind<K: RecordKind>(
        &self,
        visit: &mut dyn FnMut(&str, K::Value) -> bool,
    ) -> Result<(), StoreError> {
        let mut bad = None;
        self.scan_records(K::KIND, &mut |k, v| match decode_at::<K>(k, v) {
            Ok(value) => visit(k, value),
            Err(e) => {
                bad = Some(e);
                false
            }
        })?;
        bad.map_or(Ok(()), Err)
    }

    /// Every `K` record in key order, each decoded or its [`StoreError::Corrupt`]: for the
    /// callers that pass over a damaged record (housekeeping) instead of failing.
    fn scan_kind_each<K: RecordKind>(
        &self,
        visit: &mut EachVisitor<'_, K>,
    ) -> Result<(), StoreError> {
        self.scan_records(K::KIND, &mut |k, v| visit(k, decode_at::<K>(k, v)))
    }
}

impl<S: RegistryScan + ?Sized> TypedRecords for S {}

/// Add a line (`kind:key: why`) to `out` for each `K` record that does not decode: what
/// `registry check` reports, including the records housekeeping passes over.
pub fn find_damaged<K: RecordKind, S: RegistryScan + ?Sized>(
    store: &S,
    out: &mut Vec<String>,
) -> Result<(), StoreError> {
    store.scan_records(K::KIND, &mut |k, v| {
        if let Err(e) = decode::<K>(v) {
            out.push(format!("{}:{k}: {e}", K::KIND));
        }
        true
    })
}

/// Typed writes of generic records, in a transaction (audited by the primitive: size and
/// SHA-256 of the stored bytes, never the content).
pub trait TypedRecordsTxn: RegistryTxn {
    /// Store `value` as the `K` record under `key`. A value that cannot be encoded is an error
    /// and nothing is written.
    fn store_record<K: RecordKind>(
        &mut self,
        meta: &AuditMeta,
        key: &str,
        value: &K::Value,
    ) -> Result<(), StoreError> {
        let bytes = encode::<K>(value).map_err(|e| StoreError::Io {
            context: format!("encode {}:{key}", K::KIND),
            reason: e.to_string(),
        })?;
        self.put_record(meta, K::KIND, key, Some(&bytes))
    }

    /// Delete the `K` record under `key` (audited even when there was none).
    fn delete_record<K: RecordKind>(
        &mut self,
        meta: &AuditMeta,
        key: &str,
    ) -> Result<(), StoreError> {
        self.put_record(meta, K::KIND, key, None)
    }
}

impl<T: RegistryTxn + ?Sized> TypedRecordsTxn for T {}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::accounts::service::{
        Channel, Contact, ImportAuthorisation, ImportAuthorisations, Message, Notices,
        OutboxMessages, Session, Sessions,
    };
    use crate::accounts::Actor;
    use crate::api::announcements::{
        Announcement, AnnouncementCategory, Announcements, AttachmentMeta, Attachments,
    };
    use crate::registry::store::sled::SledStore;
    use crate::registry::store::RegistryStore;
    use proptest::prelude::*;

    fn session() -> Session {
        Session {
            username: "zhang_san".into(),
            created_at: 1_700_000_000,
            expires_at: 1_700_043_200,
        }
    }

    fn message() -> Message {
        Message::notice(
            Channel::Sms,
            "13800000000",
            "备案已通过",
            "京ICP备20000001号-1".into(),
            1_700_000_000,
        )
    }

    fn announcement() -> Announcement {
        Announcement {
            id: "00170000000012ab34cd".into(),
            category: AnnouncementCategory::Law,
            title: "备案管理办法".into(),
            body: "正文".into(),
            author: "miit".into(),
            created_at: 1_700_000_000,
            attachments: vec![AttachmentMeta {
                id: "0017000000005678abcd".into(),
                filename: "表格.xlsx".into(),
                content_type: "application/octet-stream".into(),
                size: 3,
                sha256: "00".repeat(32),
            }],
        }
    }

    /// Encoding `v` enveloped, decoding it back, and decoding its bare JSON (format 0, as
    /// releases before typed records wrote it) give `v`.
    fn round_trips<K>(v: &K::Value)
    where
        K: JsonKind,
        K::Value: PartialEq + std::fmt::Debug,
    {
        let bytes = encode::<K>(v).unwrap();
        assert!(bytes.starts_with(&codec::MAGIC), "{}", K::KIND);
        assert_eq!(codec::format_of(&bytes), codec::FORMAT);
        assert_eq!(&decode::<K>(&bytes).unwrap(), v, "{}", K::KIND);
        let legacy = serde_json::to_vec(v).unwrap();
        assert_eq!(codec::format_of(&legacy), 0);
        assert_eq!(&decode::<K>(&legacy).unwrap(), v, "{} (format 0)", K::KIND);
    }

    #[test]
    fn records_round_trip_and_read_their_bare_json_form() {
        round_trips::<Sessions>(&session());
        round_trips::<OutboxMessages>(&message());
        round_trips::<Notices>(&message());
        round_trips::<Contacts>(&Contact {
            email: Some("a@example.cn".into()),
            mobile: None,
        });
        let a = announcement();
        let bytes = encode::<Announcements>(&a).unwrap();
        let back = decode::<Announcements>(&bytes).unwrap();
        assert_eq!(
            serde_json::to_value(back).unwrap(),
            serde_json::to_value(&a).unwrap()
        );
        // An announcement of the release before categories: a notice.
        let mut old = serde_json::to_value(&a).unwrap();
        old.as_object_mut().unwrap().remove("category");
        let back = decode::<Announcements>(&serde_json::to_vec(&old).unwrap()).unwrap();
        assert_eq!(back.category, AnnouncementCategory::Notice);
        assert_eq!(back.title, a.title);
    }

    use crate::accounts::service::Contacts;

    #[test]
    fn attachments_are_their_bytes_in_the_envelope_and_bare_ones_still_read() {
        let file: Vec<u8> = (0..=255u8).rev().collect();
        let bytes = encode::<Attachments>(&file).unwrap();
        assert_eq!(&bytes[..codec::MAGIC.len()], &codec::MAGIC);
        assert_eq!(&bytes[codec::MAGIC.len() + 2..], &file[..], "not JSON");
        assert_eq!(decode::<Attachments>(&bytes).unwrap(), file);
        // Format 0: the raw bytes, whatever they are (here: not UTF-8, not JSON).
        assert_eq!(decode::<Attachments>(&file).unwrap(), file);
        assert_eq!(decode::<Attachments>(b"").unwrap(), b"");
    }

    #[test]
    fn an_import_authorisation_of_an_earlier_release_is_its_flag() {
        assert_eq!(
            decode::<ImportAuthorisations>(b"1").unwrap(),
            ImportAuthorisation::default()
        );
        assert!(decode::<ImportAuthorisations>(b"true").is_err());
        let grant = ImportAuthorisation {
            granted_by: Some(Actor::bureau('京').to_string()),
            granted_at: Some(1_700_000_000),
        };
        let bytes = encode::<ImportAuthorisations>(&grant).unwrap();
        assert_eq!(decode::<ImportAuthorisations>(&bytes).unwrap(), grant);
    }

    #[test]
    fn newer_formats_and_broken_envelopes_are_errors_naming_the_kind() {
        let mut newer = codec::MAGIC.to_vec();
        newer.extend_from_slice(&(codec::FORMAT + 1).to_le_bytes());
        newer.extend_from_slice(b"{}");
        let e = decode::<Sessions>(&newer).unwrap_err();
        assert!(
            matches!(
                e,
                CodecError::TooNew {
                    kind: "session",
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("upgrade"), "{e}");
        // Newer formats are refused even for kinds whose payload is raw bytes.
        assert!(decode::<Attachments>(&newer).is_err());
        let mut truncated = encode::<Sessions>(&session()).unwrap();
        truncated.truncate(truncated.len() - 2);
        let e = decode::<Sessions>(&truncated).unwrap_err();
        assert!(
            matches!(
                e,
                CodecError::Invalid {
                    kind: "session",
                    version: 1,
                    ..
                }
            ),
            "{e}"
        );
        assert!(decode::<Sessions>(&codec::MAGIC).is_err());
        assert!(decode::<OutboxMessages>(b"").is_err());
    }

    /// A kind whose values cannot be JSON (map keys that are not strings).
    struct Unencodable;
    impl JsonKind for Unencodable {
        const KIND: &'static str = "unencodable";
        type Value = BTreeMap<Vec<u8>, u8>;
    }

    fn store() -> (tempfile::TempDir, SledStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(&dir.path().join("store")).unwrap();
        (dir, store)
    }

    fn meta() -> AuditMeta {
        AuditMeta::new(&Actor::Miit, "test", 1_700_000_000)
    }

    #[test]
    fn a_record_that_cannot_be_encoded_is_an_error_and_nothing_is_written() {
        let (_dir, store) = store();
        let mut txn = store.begin().unwrap();
        let v = BTreeMap::from([(vec![1u8], 1u8)]);
        let e = txn
            .store_record::<Unencodable>(&meta(), "k", &v)
            .unwrap_err();
        assert!(
            matches!(&e, StoreError::Io { context, .. } if context == "encode unencodable:k"),
            "{e}"
        );
        assert_eq!(txn.commit().unwrap(), 0, "no audit record");
        assert!(!store.has_record::<Unencodable>("k").unwrap());
    }

    #[test]
    fn typed_records_are_stored_enveloped_and_garbage_is_corrupt_naming_kind_and_key() {
        let (_dir, store) = store();
        let mut txn = store.begin().unwrap();
        txn.store_record::<Sessions>(&meta(), "a", &session())
            .unwrap();
        // What an earlier release wrote: bare JSON.
        let legacy = serde_json::to_vec(&session()).unwrap();
        txn.put_record(&meta(), <Sessions as RecordKind>::KIND, "b", Some(&legacy))
            .unwrap();
        txn.put_record(
            &meta(),
            <Sessions as RecordKind>::KIND,
            "c",
            Some(b"\x00garbage"),
        )
        .unwrap();
        txn.put_record(&meta(), <Sessions as RecordKind>::KIND, "d", Some(&legacy))
            .unwrap();
        txn.commit().unwrap();

        let raw = store
            .record(<Sessions as RecordKind>::KIND, "a")
            .unwrap()
            .unwrap();
        assert!(raw.starts_with(&codec::MAGIC));
        assert_eq!(store.load_record::<Sessions>("a").unwrap(), Some(session()));
        assert_eq!(store.load_record::<Sessions>("b").unwrap(), Some(session()));
        assert_eq!(store.load_record::<Sessions>("none").unwrap(), None);
        match store.load_record::<Sessions>("c") {
            Err(StoreError::Corrupt { key, reason }) => {
                assert_eq!(key, "session:c");
                assert!(reason.contains("session record (format 0)"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        // A strict scan stops at the damaged record with its name…
        let mut seen = Vec::new();
        let e = store
            .scan_kind::<Sessions>(&mut |k, _| {
                seen.push(k.to_string());
                true
            })
            .unwrap_err();
        assert_eq!(seen, ["a", "b"]);
        assert!(e.to_string().contains("session:c"), "{e}");
        // …a lenient one hands it over and goes on.
        let mut each = Vec::new();
        store
            .scan_kind_each::<Sessions>(&mut |k, v| {
                each.push((k.to_string(), v.is_ok()));
                true
            })
            .unwrap();
        assert_eq!(
            each,
            [("a", true), ("b", true), ("c", false), ("d", true)]
                .map(|(k, ok)| (k.to_string(), ok))
        );
        // A different kind under the same key is another record.
        assert_eq!(store.load_record::<OutboxMessages>("a").unwrap(), None);
        let mut txn = store.begin().unwrap();
        txn.delete_record::<Sessions>(&meta(), "a").unwrap();
        txn.commit().unwrap();
        assert!(!store.has_record::<Sessions>("a").unwrap());
    }

    #[test]
    fn a_checked_read_tells_a_bare_attachment_that_looks_enveloped() {
        let (_dir, store) = store();
        let digest = |b: &[u8]| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b));
        // A file an earlier release stored bare, which begins with the envelope's magic and
        // this build's format.
        let mut odd = codec::MAGIC.to_vec();
        odd.extend_from_slice(&codec::FORMAT.to_le_bytes());
        odd.extend_from_slice(b"rest of the file");
        let normal: Vec<u8> = b"%PDF-1.7 a file".to_vec();
        let mut txn = store.begin().unwrap();
        txn.put_record(
            &meta(),
            <Attachments as RecordKind>::KIND,
            "a/odd",
            Some(&odd),
        )
        .unwrap();
        txn.store_record::<Attachments>(&meta(), "a/new", &normal)
            .unwrap();
        txn.put_record(
            &meta(),
            <Attachments as RecordKind>::KIND,
            "a/old",
            Some(&normal),
        )
        .unwrap();
        txn.commit().unwrap();
        let read = |key: &str, want: &[u8]| {
            let want = digest(want);
            store.load_record_checked::<Attachments>(key, &|b| digest(b) == want)
        };
        assert_eq!(read("a/odd", &odd).unwrap(), Some(odd.clone()));
        assert_eq!(read("a/new", &normal).unwrap(), Some(normal.clone()));
        assert_eq!(read("a/old", &normal).unwrap(), Some(normal.clone()));
        assert_eq!(read("a/none", &normal).unwrap(), None);
        match read("a/new", b"another file") {
            Err(StoreError::Corrupt { key, .. }) => assert_eq!(key, "attachment:a/new"),
            other => panic!("{other:?}"),
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_the_decoder(
            bytes in proptest::collection::vec(any::<u8>(), 0..400),
            enveloped in any::<bool>(),
            version in 0u16..4,
        ) {
            let bytes = if enveloped {
                let mut b = codec::MAGIC.to_vec();
                b.extend_from_slice(&version.to_le_bytes());
                b.extend_from_slice(&bytes);
                b
            } else {
                bytes
            };
            let _ = decode::<Sessions>(&bytes);
            let _ = decode::<OutboxMessages>(&bytes);
            let _ = decode::<Notices>(&bytes);
            let _ = decode::<Contacts>(&bytes);
            let _ = decode::<ImportAuthorisations>(&bytes);
            let _ = decode::<Announcements>(&bytes);
            let _ = decode::<Attachments>(&bytes);
        }

        #[test]
        fn attachments_round_trip_whatever_their_bytes(
            file in proptest::collection::vec(any::<u8>(), 0..400),
        ) {
            let bytes = encode::<Attachments>(&file).unwrap();
            prop_assert_eq!(decode::<Attachments>(&bytes).unwrap(), file);
        }
    }
}
