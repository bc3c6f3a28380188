//! The embedded store on sled — the only file that names sled. Four trees: `registry`
//! (records and counters), `index` (secondary indexes), `domains` (the domain index alone,
//! compact: domain bytes → 8-byte filing id, so a lookup by domain touches few pages) and
//! `audit` (the hash-chained log and its head, written once and rarely read, kept out of the
//! records' pages). A transaction buffers writes in an overlay keyed as below and commits them
//! with one multi-tree sled transaction (atomic across trees on recovery) followed by one
//! fsync (`flush`).
//!
//! Keys: `s/<id>` subject, `x/<id number>` → subject, `N/<subject number>` → subject,
//! `f/<id>` filing, `d/<domain>` → filing (stored without the `d/` in `domains`),
//! `n/<service number>` → filing, `i/<ip>/<id>` IP index, `p/<id>` IP filing,
//! `P/<network>/<id>` its network index, `g/<gram>\0<lower bound>` the subject-name index
//! (every two-character window of the subject's normalised name, see `name_grams`: the
//! window's subject ids in blocks, see [`super::postings`]), `u/<username>`
//! user, `a/<seq>` audit record, `m/…` counters and the audit head. Ids and sequence numbers
//! are big-endian u64.
//!
//! A name search intersects the posting lists of the fragment's windows by leapfrogging
//! (each list is sorted by subject id, and each step is one ordered seek to the block that
//! may hold the next id), then reads only the
//! subjects every window agrees on and checks the name really contains the fragment: the cost
//! follows the shortest list, not the number of subjects. A transaction collects its
//! subjects' window changes and `commit` rewrites each touched window's blocks once (a
//! thousand new subjects write a few keys per window, not one per window and subject: the
//! windows were half the keys of an import). A store written before it existed gets the
//! index built once on open (marker `m/subject_name_index`), one key per window and subject,
//! which reads as blocks of one.
//!
//! The domain index can also be held in memory (domain → filing id), derived from the
//! `domains` tree: built from it by `warm_lookups` (long-running processes; on 1M filings the
//! build takes seconds, which a one-shot command looking up one domain must not pay: until
//! then lookups read the tree), then kept current by `commit`, which applies a transaction's domain writes to it under its write lock in the
//! same critical section as the sled transaction. Readers take its read lock, so they see a
//! transaction's domain changes all or not at all. It is never written to disk: a reopened
//! store (after a crash too) rebuilds it from the tree. An entry whose stored id does not
//! decode is kept as "ask the tree", so a damaged entry is still reported as before.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::ops::Bound;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, RwLock, RwLockWriteGuard};

use ::sled::Transactional;
use serde::Serialize;

use super::audit::{Appender, AuditRecord};
use super::codec::{self, Persisted};
use super::postings;
use super::*;

/// The sled-backed registry store.
pub struct SledStore {
    db: ::sled::Db,
    tree: Trees,
    writer: Mutex<()>,
    /// The in-memory domain index (see the module docs): `None` until first needed, or after
    /// a commit whose outcome is unknown.
    domain_index: RwLock<Option<DomainMap>>,
}

/// Domain bytes → filing id (see [`DomainEntry`]).
type DomainMap = HashMap<Box<[u8]>, DomainEntry>;

/// An in-memory domain index entry: the filing id, or `None` for a stored id that does not
/// decode.
type DomainEntry = Option<u64>;

/// Build the in-memory domain index from the `domains` tree.
fn load_domain_index(domains: &::sled::Tree) -> Result<DomainMap, StoreError> {
    let mut map = DomainMap::new();
    for kv in domains.iter() {
        let (k, v) = kv.map_err(io("domain index"))?;
        let id = <[u8; 8]>::try_from(v.as_ref()).ok().map(u64::from_be_bytes);
        map.insert(Box::from(k.as_ref()), id);
    }
    Ok(map)
}

/// The store's trees; keys are routed by their prefix (see the module docs).
struct Trees {
    records: ::sled::Tree,
    index: ::sled::Tree,
    domains: ::sled::Tree,
    audit: ::sled::Tree,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Slot {
    Records,
    Index,
    Domains,
    Audit,
}

/// Which tree holds key `k`, and the key within it.
fn route(k: &[u8]) -> (Slot, &[u8]) {
    match k.get(..2) {
        Some(b"d/") => (Slot::Domains, &k[2..]),
        Some(b"a/") => (Slot::Audit, k),
        Some(b"x/" | b"N/" | b"n/" | b"i/" | b"P/" | b"g/") => (Slot::Index, k),
        _ if k == HEAD_KEY => (Slot::Audit, k),
        _ => (Slot::Records, k),
    }
}

impl Trees {
    fn tree(&self, slot: Slot) -> &::sled::Tree {
        match slot {
            Slot::Records => &self.records,
            Slot::Index => &self.index,
            Slot::Domains => &self.domains,
            Slot::Audit => &self.audit,
        }
    }
    fn scan_prefix(&self, p: &[u8]) -> ::sled::Iter {
        let (slot, k) = route(p);
        self.tree(slot).scan_prefix(k)
    }
    fn insert(&self, k: &[u8], v: &[u8]) -> Result<(), ::sled::Error> {
        let (slot, k) = route(k);
        self.tree(slot).insert(k, v).map(|_| ())
    }
}

/// An error opening the store, sorted: held by another process, damaged, or other.
fn open_error(path: &Path, e: ::sled::Error) -> StoreError {
    let p = path.display().to_string();
    match e {
        ::sled::Error::Io(io)
            if io.kind() == std::io::ErrorKind::WouldBlock
                || io
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<std::io::Error>())
                    .is_some_and(|inner| inner.kind() == std::io::ErrorKind::WouldBlock)
                || io.to_string().contains("could not acquire lock") =>
        {
            StoreError::Locked {
                holder: serve_holder(path),
                path: p,
            }
        }
        ::sled::Error::Corruption { .. } => StoreError::Damaged {
            path: p,
            detail: "a page failed its checksum".into(),
        },
        ::sled::Error::Unsupported(reason) => StoreError::Damaged {
            path: p,
            detail: format!("unreadable store metadata: {reason}"),
        },
        ::sled::Error::ReportableBug(reason) => StoreError::Damaged {
            path: p,
            detail: format!("the storage engine failed: {reason}"),
        },
        e => StoreError::Open {
            path: p,
            reason: e.to_string(),
        },
    }
}

/// ` (beian serve, pid N)` when the registry directory (the store's parent) holds the pid
/// file a running `beian serve` writes.
fn serve_holder(store: &Path) -> String {
    let pid = store
        .parent()
        .map(|dir| dir.join(SERVE_PID_FILE))
        .and_then(|p| crate::fsutil::read_bounded_string(&p, 64).ok())
        .and_then(|t| t.trim().parse::<u32>().ok());
    match pid {
        Some(pid) => format!(" (beian serve, pid {pid})"),
        None => String::new(),
    }
}

/// Run a sled call that opens the store. sled may panic on some damaged files instead of
/// returning an error: a panic while opening is a damaged store, not a crash.
fn without_panics<T>(
    path: &Path,
    call: impl FnOnce() -> Result<T, ::sled::Error>,
) -> Result<T, StoreError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(call))
        .map_err(|panic| StoreError::Damaged {
            path: path.display().to_string(),
            detail: format!("the storage engine failed: {}", panic_text(&panic)),
        })?
        .map_err(|e| open_error(path, e))
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

fn io(context: &str) -> impl Fn(::sled::Error) -> StoreError + '_ {
    move |e| match e {
        ::sled::Error::Corruption { .. } => StoreError::Damaged {
            path: "registry store".into(),
            detail: format!("{context}: a page failed its checksum"),
        },
        e => StoreError::Io {
            context: context.to_string(),
            reason: e.to_string(),
        },
    }
}

fn key(prefix: &str, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + rest.len());
    k.extend_from_slice(prefix.as_bytes());
    k.extend_from_slice(rest);
    k
}

fn id_key(prefix: &str, id: u64) -> Vec<u8> {
    key(prefix, &id.to_be_bytes())
}

fn decode<T: Persisted>(k: &[u8], v: &[u8]) -> Result<T, StoreError> {
    codec::decode(v).map_err(|e| StoreError::Corrupt {
        key: String::from_utf8_lossy(k).into_owned(),
        reason: e.to_string(),
    })
}

fn encode<T: Persisted>(v: &T) -> Result<Vec<u8>, StoreError> {
    codec::encode(v).map_err(|e| StoreError::Io {
        context: "encode".into(),
        reason: e.to_string(),
    })
}

fn decode_id(k: &[u8], v: &[u8]) -> Result<u64, StoreError> {
    let b: [u8; 8] = v.try_into().map_err(|_| StoreError::Corrupt {
        key: String::from_utf8_lossy(k).into_owned(),
        reason: "an id is 8 bytes".into(),
    })?;
    Ok(u64::from_be_bytes(b))
}

fn number_key(prefix: &str, n: &FilingNumber) -> Vec<u8> {
    key(prefix, n.to_primary().to_string().as_bytes())
}

fn ip_prefix(ip: IpAddr) -> Vec<u8> {
    let mut k = key("i/", ip.to_string().as_bytes());
    k.push(b'/');
    k
}

const HEAD_KEY: &[u8] = b"m/audit_head";
/// Present once every stored subject is in the subject-name index.
const NAME_INDEX_KEY: &[u8] = b"m/subject_name_index";

/// The subject-name index's posting list of one window: `g/<gram>\0`.
fn gram_prefix(gram: &str) -> Vec<u8> {
    let mut k = key("g/", gram.as_bytes());
    k.push(0);
    k
}

/// The subject-name index key of `gram`'s block with lower bound `id`.
fn gram_key(gram: &str, id: SubjectId) -> Vec<u8> {
    let mut k = gram_prefix(gram);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// The lower bound and ids of the posting block stored under `k` (window prefix of
/// `prefix_len` bytes).
fn decode_block(k: &[u8], prefix_len: usize, v: &[u8]) -> Result<(u64, Vec<u64>), StoreError> {
    let lower = decode_id(k, k.get(prefix_len..).unwrap_or_default())?;
    let ids = postings::decode(lower, v).map_err(|e| StoreError::Corrupt {
        key: String::from_utf8_lossy(k).into_owned(),
        reason: format!("subject-name posting block: {}", e.0),
    })?;
    Ok((lower, ids))
}

/// The posting block of window `prefix` that may hold `id` (the one with the greatest lower
/// bound at or below it), as (key, value).
fn gram_block_at(
    index: &::sled::Tree,
    prefix: &[u8],
    id: u64,
) -> Result<Option<(::sled::IVec, ::sled::IVec)>, StoreError> {
    let mut at = prefix.to_vec();
    at.extend_from_slice(&id.to_be_bytes());
    match index.range(prefix.to_vec()..=at).next_back() {
        None => Ok(None),
        Some(kv) => kv.map(Some).map_err(io("name index")),
    }
}

/// The key of window `prefix`'s first block after key `k`.
fn gram_block_after(
    index: &::sled::Tree,
    prefix: &[u8],
    k: &[u8],
) -> Result<Option<(::sled::IVec, ::sled::IVec)>, StoreError> {
    match index
        .range::<&[u8], _>((Bound::Excluded(k), Bound::Unbounded))
        .next()
    {
        Some(kv) => {
            let (k, v) = kv.map_err(io("name index"))?;
            Ok(k.starts_with(prefix).then_some((k, v)))
        }
        None => Ok(None),
    }
}

/// A key and its new value (`None`: removed).
type KeyWrite = (Vec<u8>, Option<Vec<u8>>);

/// The block writes (key, value or removal) that apply a transaction's window changes
/// (window → subject id → present) to the stored blocks.
fn gram_block_writes(
    index: &::sled::Tree,
    grams: &BTreeMap<String, BTreeMap<u64, bool>>,
) -> Result<Vec<KeyWrite>, StoreError> {
    let mut out = Vec::new();
    for (gram, changes) in grams {
        let prefix = gram_prefix(gram);
        let changes: Vec<(u64, bool)> = changes.iter().map(|(id, p)| (*id, *p)).collect();
        let mut i = 0;
        while let Some(&(x, _)) = changes.get(i) {
            let (lower, ids, old_key, next) = match gram_block_at(index, &prefix, x)? {
                Some((k, v)) => {
                    let (lower, ids) = decode_block(&k, prefix.len(), &v)?;
                    let next = gram_block_after(index, &prefix, &k)?;
                    (lower, ids, Some(k), next)
                }
                None => {
                    // Below every block (or the window's first posting): a new block at `x`.
                    let mut at = prefix.clone();
                    at.extend_from_slice(&x.to_be_bytes());
                    let next = gram_block_after(index, &prefix, &at)?;
                    (x, Vec::new(), None, next)
                }
            };
            let upper = match next {
                Some((k, _)) => Some(decode_id(&k, &k[prefix.len()..])?),
                None => None,
            };
            let end = changes[i..]
                .iter()
                .position(|(id, _)| upper.is_some_and(|u| *id >= u))
                .map_or(changes.len(), |p| i + p);
            let blocks = postings::rewrite(lower, ids, &changes[i..end]);
            if blocks.is_empty() {
                if let Some(k) = old_key {
                    out.push((k.to_vec(), None));
                }
            }
            for (l, ids) in blocks {
                out.push((gram_key(gram, l), Some(postings::encode(l, &ids))));
            }
            i = end;
        }
    }
    Ok(out)
}
/// The record format of the store (u16 little-endian; absent: format 0).
const FORMAT_KEY: &[u8] = b"m/format";

fn seq_key(seq: Sequence) -> &'static [u8] {
    match seq {
        Sequence::Subject => b"m/seq/subject",
        Sequence::Filing => b"m/seq/filing",
        Sequence::SubjectNumber => b"m/seq/subject_number",
        Sequence::IpFiling => b"m/seq/ip_filing",
    }
}

/// Generic reads over something that maps keys to values.
trait KvGet {
    fn kv_get(&self, k: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    fn kv_prefix(&self, p: &[u8]) -> Result<Vec<Vec<u8>>, StoreError>;
    /// The filing id under domain `d` (its bytes, without `d/`).
    fn domain_id(&self, d: &[u8]) -> Result<Option<u64>, StoreError> {
        let k = key("d/", d);
        match self.kv_get(&k)? {
            Some(v) => decode_id(&k, &v).map(Some),
            None => Ok(None),
        }
    }
}

impl KvGet for SledStore {
    fn kv_get(&self, k: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.tree.kv_get(k)
    }
    fn kv_prefix(&self, p: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
        self.tree.kv_prefix(p)
    }
    fn domain_id(&self, d: &[u8]) -> Result<Option<u64>, StoreError> {
        let found = |map: &DomainMap| match map.get(d) {
            None => Ok(None),
            Some(Some(id)) => Ok(Some(*id)),
            // Damaged: the tree's answer (an error naming the key).
            Some(None) => self.tree.domain_id(d),
        };
        let index = self.domain_index.read().unwrap_or_else(|p| p.into_inner());
        match index.as_ref() {
            Some(map) => found(map),
            // Not built (see `warm_lookups`): the tree.
            None => self.tree.domain_id(d),
        }
    }
}

impl KvGet for Trees {
    fn kv_get(&self, k: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let (slot, k) = route(k);
        Ok(self
            .tree(slot)
            .get(k)
            .map_err(io("get"))?
            .map(|v| v.to_vec()))
    }
    fn kv_prefix(&self, p: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
        let (slot, _) = route(p);
        let mut out = Vec::new();
        for kv in self.scan_prefix(p) {
            let (k, _) = kv.map_err(io("scan"))?;
            out.push(match slot {
                Slot::Domains => key("d/", &k),
                _ => k.to_vec(),
            });
        }
        Ok(out)
    }
}

fn read_impl<S: KvGet>(s: &S) -> Reader<'_, S> {
    Reader(s)
}

struct Reader<'a, S>(&'a S);

impl<S: KvGet> Reader<'_, S> {
    fn get_decoded<T: Persisted>(&self, k: &[u8]) -> Result<Option<T>, StoreError> {
        match self.0.kv_get(k)? {
            Some(v) => decode(k, &v).map(Some),
            None => Ok(None),
        }
    }
    fn get_id(&self, k: &[u8]) -> Result<Option<u64>, StoreError> {
        match self.0.kv_get(k)? {
            Some(v) => decode_id(k, &v).map(Some),
            None => Ok(None),
        }
    }
    fn subject(&self, id: SubjectId) -> Result<Option<Subject>, StoreError> {
        self.get_decoded(&id_key("s/", id))
    }
    fn subject_by_id_number(&self, n: &str) -> Result<Option<SubjectId>, StoreError> {
        self.get_id(&key("x/", n.as_bytes()))
    }
    fn subject_by_number(&self, n: &FilingNumber) -> Result<Option<SubjectId>, StoreError> {
        self.get_id(&number_key("N/", &n.subject_number()))
    }
    fn filing(&self, id: FilingId) -> Result<Option<Filing>, StoreError> {
        self.get_decoded(&id_key("f/", id))
    }
    fn filing_by_domain(&self, d: &Domain) -> Result<Option<FilingId>, StoreError> {
        self.0.domain_id(d.as_str().as_bytes())
    }
    fn filing_by_number(&self, n: &FilingNumber) -> Result<Option<FilingId>, StoreError> {
        self.get_id(&number_key("n/", n))
    }
    fn filings_by_ip(&self, ip: IpAddr) -> Result<Vec<FilingId>, StoreError> {
        let p = ip_prefix(ip);
        let mut out = Vec::new();
        for k in self.0.kv_prefix(&p)? {
            out.push(decode_id(&k, &k[p.len()..])?);
        }
        Ok(out)
    }
    fn user(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        self.get_decoded(&key("u/", username.as_bytes()))
    }
}

macro_rules! impl_read {
    ($t:ty, $s:ident => $inner:expr) => {
        impl RegistryRead for $t {
            fn subject(&self, id: SubjectId) -> Result<Option<Subject>, StoreError> {
                {
                    let $s = self;
                    read_impl($inner)
                }
                .subject(id)
            }
            fn subject_by_id_number(&self, n: &str) -> Result<Option<SubjectId>, StoreError> {
                {
                    let $s = self;
                    read_impl($inner)
                }
                .subject_by_id_number(n)
            }
            fn subject_by_number(&self, n: &FilingNumber) -> Result<Option<SubjectId>, StoreError> {
                {
                    let $s = self;
                    read_impl($inner)
                }
                .subject_by_number(n)
            }
            fn filing(&self, id: FilingId) -> Result<Option<Filing>, StoreError> {
                {
                    let $s = self;
                    read_impl($inner)
                }
                .filing(id)
            }
            fn filing_by_domain(&self, d: &Domain) -> Result<Option<FilingId>, StoreError> {
                {
                    let $s = self;
                    read_impl($inner)
                }
                .filing_by_domain(d)
            }
            fn filing_by_number(&self, n: &FilingNumber) -> Result<Option<FilingId>, StoreError> {
                {
                    let $s = self;
                    read_impl($inner)
                }
                .filing_by_number(n)
            }
            fn filings_by_ip(&self, ip: IpAddr) -> Result<Vec<FilingId>, StoreError> {
                {
                    let $s = self;
                    read_impl($inner)
                }
                .filings_by_ip(ip)
            }
            fn user(&self, u: &str) -> Result<Option<UserRecord>, StoreError> {
                {
                    let $s = self;
                    read_impl($inner)
                }
                .user(u)
            }
        }
    };
}

impl_read!(SledStore, s => s);
impl_read!(SledTxn<'_>, t => t);

impl SledStore {
    /// Open (or create) the store in directory `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        // A store closed a moment ago by this process may still be held by sled's background
        // flusher for a few milliseconds: retry briefly, unless a running `serve` holds it.
        let mut tries = 0;
        let db = loop {
            let opened = without_panics(path, || {
                ::sled::Config::new()
                    .path(path)
                    .cache_capacity(1024 * 1024 * 1024)
                    .open()
            });
            match opened {
                Err(StoreError::Locked { holder, .. }) if holder.is_empty() && tries < 40 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(25));
                }
                other => break other?,
            }
        };
        let open = |name: &str| without_panics(path, || db.open_tree(name));
        let tree = Trees {
            records: open("registry")?,
            index: open("index")?,
            domains: open("domains")?,
            audit: open("audit")?,
        };
        let store = SledStore {
            db,
            tree,
            writer: Mutex::new(()),
            domain_index: RwLock::new(None),
        };
        store.upgrade(path)?;
        store.build_name_index()?;
        Ok(store)
    }

    /// Index every stored subject's name, once (see the module docs): a store written before
    /// the name index existed. Idempotent, so a crash midway redoes it on the next open.
    fn build_name_index(&self) -> Result<(), StoreError> {
        if self
            .tree
            .records
            .get(NAME_INDEX_KEY)
            .map_err(io("name index"))?
            .is_some()
        {
            return Ok(());
        }
        let mut n = 0u64;
        for kv in self.tree.records.scan_prefix(b"s/") {
            let (k, v) = kv.map_err(io("name index"))?;
            // A subject that does not decode is left out: reading it reports it.
            let Ok(s) = decode::<Subject>(&k, &v) else {
                continue;
            };
            for g in name_grams(&s.name) {
                self.tree
                    .index
                    .insert(gram_key(&g, s.id), &[][..])
                    .map_err(io("name index"))?;
            }
            n += 1;
        }
        self.tree
            .records
            .insert(NAME_INDEX_KEY, &[1u8][..])
            .map_err(io("name index"))?;
        self.db.flush().map_err(io("flush"))?;
        if n > 0 {
            tracing::info!(subjects = n, "subject-name index built");
        }
        Ok(())
    }

    /// The first subject id at or after `from` in the posting list `prefix`: in the block
    /// that may hold `from`, else the first of the next block.
    fn next_in_postings(&self, prefix: &[u8], from: u64) -> Result<Option<u64>, StoreError> {
        let index = &self.tree.index;
        let mut after = prefix.to_vec();
        after.extend_from_slice(&from.to_be_bytes());
        if let Some((k, v)) = gram_block_at(index, prefix, from)? {
            let (_, ids) = decode_block(&k, prefix.len(), &v)?;
            if let Some(&id) = ids.iter().find(|&&id| id >= from) {
                return Ok(Some(id));
            }
            after = k.to_vec();
        }
        match gram_block_after(index, prefix, &after)? {
            None => Ok(None),
            Some((k, v)) => {
                let (_, ids) = decode_block(&k, prefix.len(), &v)?;
                Ok(ids.first().copied())
            }
        }
    }

    /// Bring every record to the current record format (see [`codec`]): a store written by an
    /// older release is migrated in place on its first open, record by record (each rewrite is
    /// idempotent, so a crash midway resumes on the next open), then flushed, and the store's
    /// format is recorded. A store written by a newer release is refused, untouched.
    fn upgrade(&self, path: &Path) -> Result<(), StoreError> {
        let stored = match self.tree.records.get(FORMAT_KEY).map_err(io("format"))? {
            Some(v) => {
                let b: [u8; 2] = v.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                    key: String::from_utf8_lossy(FORMAT_KEY).into_owned(),
                    reason: "the store format is 2 bytes".into(),
                })?;
                u16::from_le_bytes(b)
            }
            None => 0,
        };
        if stored > codec::FORMAT {
            return Err(StoreError::Open {
                path: path.display().to_string(),
                reason: format!(
                    "written by a newer beian (record format {stored}; this one reads up to {}): upgrade beian",
                    codec::FORMAT
                ),
            });
        }
        if stored == codec::FORMAT {
            return Ok(());
        }
        let mut migrated = 0u64;
        migrated += self.migrate_prefix::<Subject>(b"s/")?;
        migrated += self.migrate_prefix::<Filing>(b"f/")?;
        migrated += self.migrate_prefix::<UserRecord>(b"u/")?;
        migrated += self.migrate_prefix::<IpFiling>(b"p/")?;
        self.tree
            .records
            .insert(FORMAT_KEY, &codec::FORMAT.to_le_bytes())
            .map_err(io("format"))?;
        self.db.flush().map_err(io("flush"))?;
        if migrated > 0 {
            tracing::info!(
                records = migrated,
                from = stored,
                to = codec::FORMAT,
                "registry store migrated to the current record format"
            );
        }
        Ok(())
    }

    fn migrate_prefix<T: Persisted>(&self, prefix: &[u8]) -> Result<u64, StoreError> {
        let mut n = 0;
        for kv in self.tree.records.scan_prefix(prefix) {
            let (k, v) = kv.map_err(io("migrate"))?;
            match codec::migrate::<T>(&v) {
                Ok(Some(new)) => {
                    self.tree.records.insert(&k, new).map_err(io("migrate"))?;
                    n += 1;
                }
                Ok(None) => {}
                // Left as it is: reading it reports it, and `registry check` lists it.
                Err(e) => tracing::warn!(
                    key = %String::from_utf8_lossy(&k),
                    error = %e,
                    "a record that does not decode was not migrated"
                ),
            }
        }
        Ok(n)
    }

    /// Build the in-memory domain index and read the filing records once, so that the lookups
    /// of a long-running server (API, scanner) hit memory instead of the disk. Returns the
    /// number of entries touched. Not done by `open`: one-shot CLI commands do not need it.
    pub fn warm_lookups(&self) -> Result<u64, StoreError> {
        let mut n = self
            .index_for_writing()?
            .as_ref()
            .map_or(0, |m| m.len() as u64);
        for kv in self.tree.records.scan_prefix(b"f/") {
            kv.map_err(io("warm"))?;
            n += 1;
        }
        Ok(n)
    }

    /// The domain index's write lock, with the index built (from the tree) if it was not.
    fn index_for_writing(&self) -> Result<RwLockWriteGuard<'_, Option<DomainMap>>, StoreError> {
        let mut index = self.domain_index.write().unwrap_or_else(|p| p.into_inner());
        if index.is_none() {
            *index = Some(load_domain_index(&self.tree.domains)?);
        }
        Ok(index)
    }

    fn scan_decoded<T: Persisted>(
        &self,
        prefix: &str,
        visit: &mut dyn FnMut(T) -> bool,
    ) -> Result<(), StoreError> {
        for kv in self.tree.scan_prefix(prefix.as_bytes()) {
            let (k, v) = kv.map_err(io("scan"))?;
            if !visit(decode(&k, &v)?) {
                break;
            }
        }
        Ok(())
    }

    /// How many subject, filing, user and IP filing records are stored in each record format.
    pub fn record_formats(&self) -> Result<BTreeMap<u16, u64>, StoreError> {
        let mut out = BTreeMap::new();
        for prefix in [&b"s/"[..], b"f/", b"u/", b"p/"] {
            for kv in self.tree.records.scan_prefix(prefix) {
                let (_, v) = kv.map_err(io("scan"))?;
                *out.entry(codec::format_of(&v)).or_insert(0) += 1;
            }
        }
        Ok(out)
    }

    /// The domain index's answer read from the `domains` tree, bypassing the in-memory index:
    /// the lookup path before that index existed, kept for the benchmark's same-run baseline.
    #[doc(hidden)]
    pub fn filing_by_domain_from_tree(&self, d: &Domain) -> Result<Option<FilingId>, StoreError> {
        self.tree.domain_id(d.as_str().as_bytes())
    }

    /// Raw access for tamper tests: set (`Some`) or remove (`None`) the stored bytes under a
    /// records key (`f/` + big-endian id, …) without going through a transaction or the log.
    #[doc(hidden)]
    pub fn overwrite_record_for_tests(
        &self,
        key: &[u8],
        bytes: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        match bytes {
            Some(b) => self.tree.records.insert(key, b).map(|_| ()),
            None => self.tree.records.remove(key).map(|_| ()),
        }
        .map_err(io("tamper"))?;
        self.db.flush().map_err(io("flush"))?;
        Ok(())
    }

    /// Raw access for tamper tests: overwrite the stored bytes of audit record `seq`.
    #[doc(hidden)]
    pub fn overwrite_audit_record_for_tests(
        &self,
        seq: u64,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        self.tree
            .insert(&id_key("a/", seq), bytes)
            .map_err(io("tamper"))?;
        self.db.flush().map_err(io("flush"))?;
        Ok(())
    }

    /// Raw access for tamper tests: the stored bytes of audit record `seq`.
    #[doc(hidden)]
    pub fn audit_record_bytes_for_tests(&self, seq: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.tree.kv_get(&id_key("a/", seq))
    }
}

impl RegistryScan for SledStore {
    fn scan_filings(&self, visit: &mut dyn FnMut(Filing) -> bool) -> Result<(), StoreError> {
        self.scan_decoded("f/", visit)
    }
    fn scan_subjects(&self, visit: &mut dyn FnMut(Subject) -> bool) -> Result<(), StoreError> {
        self.scan_decoded("s/", visit)
    }
    fn scan_audit_from(
        &self,
        from: u64,
        visit: &mut dyn FnMut(u64, Result<AuditRecord, String>) -> bool,
    ) -> Result<(), StoreError> {
        let start = id_key("a/", from);
        for kv in self.tree.audit.range(start..).take_while(|kv| {
            kv.as_ref()
                .map(|(k, _)| k.starts_with(b"a/"))
                .unwrap_or(true)
        }) {
            let (k, v) = kv.map_err(io("scan audit"))?;
            let seq = decode_id(&k, &k[2..])?;
            let rec = serde_json::from_slice(&v).map_err(|e| e.to_string());
            if !visit(seq, rec) {
                break;
            }
        }
        Ok(())
    }
    fn audit_head(&self) -> Result<Option<(u64, [u8; 32])>, StoreError> {
        read_head(&self.tree)
    }

    fn scan_state(&self, visit: &mut dyn FnMut(&str, &[u8]) -> bool) -> Result<(), StoreError> {
        let id = |k: &[u8]| -> Option<u64> { Some(u64::from_be_bytes(k.try_into().ok()?)) };
        for (prefix, name) in [
            (&b"s/"[..], "subject"),
            (b"f/", "filing"),
            (b"u/", "user"),
            (b"p/", "ip_filing"),
            (b"r/", ""),
        ] {
            for kv in self.tree.records.scan_prefix(prefix) {
                let (k, v) = kv.map_err(io("scan state"))?;
                let rest = &k[prefix.len()..];
                let entity = match name {
                    "user" => format!("user:{}", String::from_utf8_lossy(rest)),
                    // `r/<kind>/<key>` was audited as `<kind>:<key>`.
                    "" => {
                        let text = String::from_utf8_lossy(rest);
                        match text.split_once('/') {
                            Some((kind, key)) => format!("{kind}:{key}"),
                            None => format!("record:{text}"),
                        }
                    }
                    _ => match id(rest) {
                        Some(n) => format!("{name}:{n}"),
                        None => format!("{name}:{}", hex::encode(rest)),
                    },
                };
                if !visit(&entity, &v) {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    // --- Generic records: keys `r/<kind>/<key>` (kinds contain no `/`). ---

    fn record(&self, kind: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.tree.kv_get(&record_key(kind, key))
    }

    fn scan_records(
        &self,
        kind: &str,
        visit: &mut dyn FnMut(&str, &[u8]) -> bool,
    ) -> Result<(), StoreError> {
        let prefix = record_key(kind, "");
        for kv in self.tree.scan_prefix(&prefix) {
            let (k, v) = kv.map_err(io("scan records"))?;
            let key = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            if !visit(&key, &v) {
                break;
            }
        }
        Ok(())
    }

    fn scan_users(&self, visit: &mut dyn FnMut(UserRecord) -> bool) -> Result<(), StoreError> {
        self.scan_decoded("u/", visit)
    }

    fn filings_under_subject_number(
        &self,
        subject_number: &FilingNumber,
    ) -> Result<Vec<FilingId>, StoreError> {
        let mut prefix = number_key("n/", &subject_number.subject_number());
        prefix.push(b'-');
        let mut out = Vec::new();
        for kv in self.tree.index.scan_prefix(&prefix) {
            let (k, v) = kv.map_err(io("number index"))?;
            out.push(decode_id(&k, &v)?);
        }
        Ok(out)
    }

    fn subjects_by_name(
        &self,
        fragment: &str,
        visit: &mut dyn FnMut(Subject) -> bool,
    ) -> Result<(), StoreError> {
        let wanted = normalise_name(fragment);
        if wanted.chars().count() < MIN_NAME_FRAGMENT {
            return Ok(());
        }
        let lists: Vec<Vec<u8>> = name_grams(fragment)
            .iter()
            .map(|g| gram_prefix(g))
            .collect();
        // Leapfrog: move the candidate to the largest next id any list holds, until every
        // list holds it.
        let mut candidate = 0u64;
        loop {
            let mut agreed = true;
            for list in &lists {
                match self.next_in_postings(list, candidate)? {
                    None => return Ok(()),
                    Some(id) if id > candidate => {
                        candidate = id;
                        agreed = false;
                        break;
                    }
                    Some(_) => {}
                }
            }
            if !agreed {
                continue;
            }
            if let Some(s) = read_impl(self).subject(candidate)? {
                if normalise_name(&s.name).contains(&wanted) && !visit(s) {
                    return Ok(());
                }
            }
            candidate = match candidate.checked_add(1) {
                Some(c) => c,
                None => return Ok(()),
            };
        }
    }
}

fn record_key(kind: &str, key: &str) -> Vec<u8> {
    format!("r/{kind}/{key}").into_bytes()
}

fn record_digest(v: &[u8]) -> serde_json::Value {
    use sha2::Digest;
    serde_json::json!({"bytes": v.len(), "sha256": hex::encode(sha2::Sha256::digest(v))})
}

fn read_head<S: KvGet>(s: &S) -> Result<Option<(u64, [u8; 32])>, StoreError> {
    match s.kv_get(HEAD_KEY)? {
        None => Ok(None),
        Some(v) if v.len() == 40 => {
            let mut seq = [0u8; 8];
            seq.copy_from_slice(&v[..8]);
            let mut h = [0u8; 32];
            h.copy_from_slice(&v[8..]);
            Ok(Some((u64::from_be_bytes(seq), h)))
        }
        Some(_) => Err(StoreError::Corrupt {
            key: "m/audit_head".into(),
            reason: "expected 40 bytes".into(),
        }),
    }
}

impl RegistryStore for SledStore {
    type Txn<'a> = SledTxn<'a>;
    fn begin(&self) -> Result<SledTxn<'_>, StoreError> {
        let guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let head = read_head(&self.tree)?;
        Ok(SledTxn {
            store: self,
            _guard: guard,
            overlay: BTreeMap::new(),
            grams: BTreeMap::new(),
            chain: Appender::after(head),
            fresh: FreshIds::default(),
        })
    }
}

/// An open sled transaction: an overlay of pending writes over the tree.
pub struct SledTxn<'a> {
    store: &'a SledStore,
    _guard: MutexGuard<'a, ()>,
    overlay: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Subject-name window changes (window → subject id → present), written as blocks by
    /// `commit`.
    grams: BTreeMap<String, BTreeMap<u64, bool>>,
    chain: Appender,
    fresh: FreshIds,
}

impl KvGet for SledTxn<'_> {
    fn kv_get(&self, k: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.overlay.get(k) {
            Some(v) => Ok(v.clone()),
            None => self.store.tree.kv_get(k),
        }
    }
    fn kv_prefix(&self, p: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut keys: std::collections::BTreeSet<Vec<u8>> =
            self.store.tree.kv_prefix(p)?.into_iter().collect();
        for (k, v) in self.overlay.range(p.to_vec()..) {
            if !k.starts_with(p) {
                break;
            }
            if v.is_some() {
                keys.insert(k.clone());
            } else {
                keys.remove(k);
            }
        }
        Ok(keys.into_iter().collect())
    }
}

impl SledTxn<'_> {
    fn put(&mut self, k: Vec<u8>, v: Vec<u8>) {
        self.overlay.insert(k, Some(v));
    }
    fn del(&mut self, k: Vec<u8>) {
        self.overlay.insert(k, None);
    }
    /// Subject `id`'s name has (`present`) or no longer has window `gram`.
    fn gram(&mut self, gram: &str, id: SubjectId, present: bool) {
        self.grams
            .entry(gram.to_string())
            .or_default()
            .insert(id, present);
    }

    fn append_audit(
        &mut self,
        meta: &AuditMeta,
        entity: String,
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
        stored: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let (seq, bytes) =
            self.chain
                .append(meta, &entity, before.as_ref(), after.as_ref(), stored)?;
        self.put(id_key("a/", seq), bytes);
        Ok(())
    }
}

fn json<T: Serialize>(v: &T) -> Option<serde_json::Value> {
    serde_json::to_value(v).ok()
}

impl RegistryTxn for SledTxn<'_> {
    fn next_id(&mut self, seq: Sequence) -> Result<u64, StoreError> {
        let k = seq_key(seq);
        let cur = match self.kv_get(k)? {
            Some(v) => decode_id(k, &v)?,
            None => match seq {
                Sequence::SubjectNumber => 20_000_000,
                _ => 0,
            },
        };
        let next = cur + 1;
        self.put(k.to_vec(), next.to_be_bytes().to_vec());
        self.fresh.allocated(seq, next);
        Ok(next)
    }

    fn put_subject(&mut self, meta: &AuditMeta, s: &Subject) -> Result<(), StoreError> {
        let before = match self.fresh.take(Sequence::Subject, s.id) {
            true => None,
            false => read_impl(self).subject(s.id)?,
        };
        let grams = name_grams(&s.name);
        let old_grams = before
            .as_ref()
            .map(|b| name_grams(&b.name))
            .unwrap_or_default();
        if let Some(b) = &before {
            if b.id_number != s.id_number {
                self.del(key("x/", b.id_number.as_bytes()));
            }
        }
        for g in old_grams.difference(&grams) {
            self.gram(g, s.id, false);
        }
        for g in grams.difference(&old_grams) {
            self.gram(g, s.id, true);
        }
        self.put(
            key("x/", s.id_number.as_bytes()),
            s.id.to_be_bytes().to_vec(),
        );
        if let Some(n) = &s.number {
            self.put(number_key("N/", n), s.id.to_be_bytes().to_vec());
        }
        let bytes = encode(s)?;
        self.append_audit(
            meta,
            format!("subject:{}", s.id),
            before.as_ref().and_then(json),
            json(s),
            Some(&bytes),
        )?;
        self.put(id_key("s/", s.id), bytes);
        Ok(())
    }

    fn put_filing(&mut self, meta: &AuditMeta, f: &Filing) -> Result<(), StoreError> {
        let before = match self.fresh.take(Sequence::Filing, f.id) {
            true => None,
            false => read_impl(self).filing(f.id)?,
        };
        let idb = f.id.to_be_bytes().to_vec();
        if let Some(b) = &before {
            for d in &b.domains {
                if !f.domains.contains(d) {
                    let k = key("d/", d.as_str().as_bytes());
                    if read_impl(self).get_id(&k)? == Some(f.id) {
                        self.del(k);
                    }
                }
            }
            for ip in &b.ips {
                if !f.ips.contains(ip) {
                    let mut k = ip_prefix(*ip);
                    k.extend_from_slice(&idb);
                    self.del(k);
                }
            }
        }
        for d in &f.domains {
            self.put(key("d/", d.as_str().as_bytes()), idb.clone());
        }
        for ip in &f.ips {
            let mut k = ip_prefix(*ip);
            k.extend_from_slice(&idb);
            self.put(k, Vec::new());
        }
        if let Some(n) = &f.number {
            self.put(number_key("n/", n), idb.clone());
        }
        let bytes = encode(f)?;
        self.append_audit(
            meta,
            format!("filing:{}", f.id),
            before.as_ref().and_then(json),
            json(f),
            Some(&bytes),
        )?;
        self.put(id_key("f/", f.id), bytes);
        Ok(())
    }

    fn put_user(&mut self, meta: &AuditMeta, u: &UserRecord) -> Result<(), StoreError> {
        let before = read_impl(self).user(&u.username)?;
        let bytes = encode(u)?;
        // The password hash is kept out of the audit log.
        let redact = |u: &UserRecord| {
            serde_json::json!({"username": u.username, "actor": u.actor.to_string(),
                "created_at": u.created_at, "created_by": u.created_by})
        };
        self.append_audit(
            meta,
            format!("user:{}", u.username),
            before.as_ref().map(redact),
            Some(redact(u)),
            Some(&bytes),
        )?;
        self.put(key("u/", u.username.as_bytes()), bytes);
        Ok(())
    }

    fn audit(
        &mut self,
        meta: &AuditMeta,
        entity: &str,
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
    ) -> Result<(), StoreError> {
        self.append_audit(meta, entity.to_string(), before, after, None)?;
        Ok(())
    }

    fn replay_next(&mut self, record: AuditRecord) {
        self.chain.replay_next(record);
    }

    fn replay_pending(&self) -> bool {
        self.chain.replay_pending()
    }

    fn commit(mut self) -> Result<u64, StoreError> {
        if self.overlay.is_empty() && self.grams.is_empty() {
            return Ok(0);
        }
        if let Some((seq, hash)) = self.chain.head() {
            let mut head = seq.to_be_bytes().to_vec();
            head.extend_from_slice(&hash);
            self.put(HEAD_KEY.to_vec(), head);
        }
        let mut batches: [::sled::Batch; 4] = Default::default();
        // Read under the writer lock this transaction holds: no other commit moves a block.
        for (k, v) in gram_block_writes(&self.store.tree.index, &self.grams)? {
            let b = &mut batches[Slot::Index as usize];
            match v {
                Some(v) => b.insert(k, v),
                None => b.remove(k),
            }
        }
        // Domain → the new entry (`None`: removed).
        let mut domain_writes: Vec<(Box<[u8]>, Option<DomainEntry>)> = Vec::new();
        for (k, v) in std::mem::take(&mut self.overlay) {
            let (slot, k) = route(&k);
            if slot == Slot::Domains {
                let id = v.as_ref().map(|v| {
                    <[u8; 8]>::try_from(v.as_slice())
                        .ok()
                        .map(u64::from_be_bytes)
                });
                domain_writes.push((Box::from(k), id));
            }
            let b = &mut batches[slot as usize];
            match v {
                Some(v) => b.insert(k, v),
                None => b.remove(k),
            }
        }
        let t = &self.store.tree;
        // Held across the sled transaction, so a reader of the in-memory index sees this
        // transaction's domain changes all or not at all.
        let mut index = self
            .store
            .domain_index
            .write()
            .unwrap_or_else(|p| p.into_inner());
        let committed = (&t.records, &t.index, &t.domains, &t.audit).transaction(|(r, i, d, a)| {
            r.apply_batch(&batches[Slot::Records as usize])?;
            i.apply_batch(&batches[Slot::Index as usize])?;
            d.apply_batch(&batches[Slot::Domains as usize])?;
            a.apply_batch(&batches[Slot::Audit as usize])?;
            Ok::<(), ::sled::transaction::ConflictableTransactionError<()>>(())
        });
        match committed {
            Ok(()) => {
                if let Some(map) = index.as_mut() {
                    for (k, id) in domain_writes {
                        match id {
                            Some(id) => map.insert(k, id),
                            None => map.remove(&k),
                        };
                    }
                }
            }
            Err(e) => {
                // Whether any of it reached the tree is not known here: rebuild on next use.
                *index = None;
                return Err(StoreError::Io {
                    context: "commit".into(),
                    reason: format!("{e:?}"),
                });
            }
        }
        drop(index);
        self.store.db.flush().map_err(io("flush"))?;
        Ok(self.chain.appended())
    }

    // --- Generic records ---

    fn put_record(
        &mut self,
        meta: &AuditMeta,
        kind: &str,
        key: &str,
        value: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let k = record_key(kind, key);
        let before = self.kv_get(&k)?.map(|b| record_digest(&b));
        let after = value.map(record_digest);
        self.append_audit(meta, format!("{kind}:{key}"), before, after, value)?;
        match value {
            Some(v) => self.put(k, v.to_vec()),
            None => self.del(k),
        }
        Ok(())
    }
}

// ---- IP filings ----

use super::super::model::{IpFiling, IpFilingId};

/// `P/` + family (4 or 6) + address bytes + prefix length + `/`.
fn network_prefix(net: &ipnet::IpNet) -> Vec<u8> {
    let mut k = b"P/".to_vec();
    match net {
        ipnet::IpNet::V4(n) => {
            k.push(4);
            k.extend_from_slice(&n.network().octets());
        }
        ipnet::IpNet::V6(n) => {
            k.push(6);
            k.extend_from_slice(&n.network().octets());
        }
    }
    k.push(net.prefix_len());
    k.push(b'/');
    k
}

impl<S: KvGet> Reader<'_, S> {
    fn ip_filing(&self, id: IpFilingId) -> Result<Option<IpFiling>, StoreError> {
        self.get_decoded(&id_key("p/", id))
    }
    fn ip_filings_by_network(&self, net: &ipnet::IpNet) -> Result<Vec<IpFilingId>, StoreError> {
        let p = network_prefix(net);
        let mut out = Vec::new();
        for k in self.0.kv_prefix(&p)? {
            out.push(decode_id(&k, &k[p.len()..])?);
        }
        Ok(out)
    }
    /// Supernets by exact lookups (one per shorter prefix length); subnets by a scan of the
    /// keys sharing the block's whole leading bytes, filtered by containment.
    fn ip_filings_overlapping(&self, net: &ipnet::IpNet) -> Result<Vec<IpFilingId>, StoreError> {
        let mut out = std::collections::BTreeSet::new();
        for len in 0..=net.prefix_len() {
            if let Ok(sup) = ipnet::IpNet::new(net.addr(), len) {
                out.extend(self.ip_filings_by_network(&sup.trunc())?);
            }
        }
        let (family, octets): (u8, Vec<u8>) = match net {
            ipnet::IpNet::V4(n) => (4, n.network().octets().to_vec()),
            ipnet::IpNet::V6(n) => (6, n.network().octets().to_vec()),
        };
        let mut p = b"P/".to_vec();
        p.push(family);
        p.extend_from_slice(&octets[..(net.prefix_len() / 8) as usize]);
        let addr_at = 3;
        let addr_len = octets.len();
        for k in self.0.kv_prefix(&p)? {
            let Some(addr) = k.get(addr_at..addr_at + addr_len) else {
                continue;
            };
            let Some(&len) = k.get(addr_at + addr_len) else {
                continue;
            };
            let sub = match family {
                4 => <[u8; 4]>::try_from(addr)
                    .ok()
                    .and_then(|a| ipnet::Ipv4Net::new(a.into(), len).ok())
                    .map(ipnet::IpNet::V4),
                _ => <[u8; 16]>::try_from(addr)
                    .ok()
                    .and_then(|a| ipnet::Ipv6Net::new(a.into(), len).ok())
                    .map(ipnet::IpNet::V6),
            };
            if sub.is_some_and(|sub| net.contains(&sub)) {
                out.insert(decode_id(
                    &k,
                    k.get(addr_at + addr_len + 2..).unwrap_or(&[]),
                )?);
            }
        }
        Ok(out.into_iter().collect())
    }
}

impl IpFilingRead for SledStore {
    fn ip_filing(&self, id: IpFilingId) -> Result<Option<IpFiling>, StoreError> {
        read_impl(&self.tree).ip_filing(id)
    }
    fn ip_filings_by_network(&self, net: &ipnet::IpNet) -> Result<Vec<IpFilingId>, StoreError> {
        read_impl(&self.tree).ip_filings_by_network(net)
    }
    fn ip_filings_overlapping(&self, net: &ipnet::IpNet) -> Result<Vec<IpFilingId>, StoreError> {
        read_impl(&self.tree).ip_filings_overlapping(net)
    }
}

impl IpFilingRead for SledTxn<'_> {
    fn ip_filing(&self, id: IpFilingId) -> Result<Option<IpFiling>, StoreError> {
        read_impl(self).ip_filing(id)
    }
    fn ip_filings_by_network(&self, net: &ipnet::IpNet) -> Result<Vec<IpFilingId>, StoreError> {
        read_impl(self).ip_filings_by_network(net)
    }
    fn ip_filings_overlapping(&self, net: &ipnet::IpNet) -> Result<Vec<IpFilingId>, StoreError> {
        read_impl(self).ip_filings_overlapping(net)
    }
}

impl IpFilingScan for SledStore {
    fn scan_ip_filings(&self, visit: &mut dyn FnMut(IpFiling) -> bool) -> Result<(), StoreError> {
        self.scan_decoded("p/", visit)
    }
}

impl IpFilingWrite for SledTxn<'_> {
    fn put_ip_filing(&mut self, meta: &AuditMeta, f: &IpFiling) -> Result<(), StoreError> {
        let before = match self.fresh.take(Sequence::IpFiling, f.id) {
            true => None,
            false => read_impl(self).ip_filing(f.id)?,
        };
        if let Some(b) = &before {
            if b.network != f.network {
                let mut k = network_prefix(&b.network);
                k.extend_from_slice(&f.id.to_be_bytes());
                self.del(k);
            }
        }
        let mut k = network_prefix(&f.network);
        k.extend_from_slice(&f.id.to_be_bytes());
        self.put(k, Vec::new());
        let bytes = encode(f)?;
        self.append_audit(
            meta,
            format!("ip_filing:{}", f.id),
            before.as_ref().and_then(json),
            json(f),
            Some(&bytes),
        )?;
        self.put(id_key("p/", f.id), bytes);
        Ok(())
    }

    fn delete_ip_filing(&mut self, meta: &AuditMeta, id: IpFilingId) -> Result<(), StoreError> {
        let Some(before) = read_impl(self).ip_filing(id)? else {
            return Ok(());
        };
        let mut k = network_prefix(&before.network);
        k.extend_from_slice(&id.to_be_bytes());
        self.del(k);
        self.append_audit(meta, format!("ip_filing:{id}"), json(&before), None, None)?;
        self.del(id_key("p/", id));
        Ok(())
    }
}
