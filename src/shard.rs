//! Sharded scans: which targets belong to shard `I` of `N` (a stable hash of the target, so
//! every process of an Indexed Job agrees without talking to the others), the manifest each
//! shard writes beside its records, and the checks `beian scan merge` makes before joining
//! shards into one scan (every shard exactly once, all of one snapshot and one policy, each
//! finished). Pure: the files are read and written by the binary.

use serde::{Deserialize, Serialize};
use sha2::Digest;

/// The manifest's format version.
pub const SHARD_MANIFEST_FORMAT: u32 = 1;
/// The suffix of a shard's manifest, appended to its records file's name.
pub const MANIFEST_SUFFIX: &str = ".shard.json";
/// At most this many shards.
pub const MAX_SHARDS: u32 = 100_000;

/// Shard `index` of `count` (0-based, as Kubernetes' `JOB_COMPLETION_INDEX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

/// A shard specification that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ShardError {
    #[error("shard {0:?}: expected I/N with 0 <= I < N <= {MAX_SHARDS} (e.g. 0/4)")]
    Spec(String),
    #[error("{path}: not a shard manifest: {reason}")]
    Manifest { path: String, reason: String },
    #[error("shard {index} of {count} is missing")]
    Missing { index: u32, count: u32 },
    #[error("shard {index} is given twice ({first} and {second})")]
    Duplicate {
        index: u32,
        first: String,
        second: String,
    },
    #[error("{path}: {what} differs from {first}'s: the shards were not made for one scan")]
    Mismatch {
        path: String,
        first: String,
        what: &'static str,
    },
    #[error("{path}: shard {index} did not finish (no end time); run it again")]
    Unfinished { path: String, index: u32 },
    #[error("no shards given")]
    Empty,
}

impl Shard {
    /// Parse `I/N`.
    pub fn parse(s: &str) -> Result<Shard, ShardError> {
        let bad = || ShardError::Spec(s.to_string());
        let (i, n) = s.trim().split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        Shard::new(index, count).ok_or_else(bad)
    }

    /// Shard `index` of `count`, if valid.
    pub fn new(index: u32, count: u32) -> Option<Shard> {
        ((1..=MAX_SHARDS).contains(&count) && index < count).then_some(Shard { index, count })
    }

    /// Whether `target` belongs to this shard: the first 8 bytes of SHA-256 of the trimmed,
    /// lower-cased target, modulo the count. Stable across processes, versions and machines.
    pub fn contains(&self, target: &str) -> bool {
        shard_of(target, self.count) == self.index
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The shard (of `count`) a target belongs to.
pub fn shard_of(target: &str, count: u32) -> u32 {
    let key = target.trim().to_ascii_lowercase();
    let h = sha2::Sha256::digest(key.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&h[..8]);
    (u64::from_be_bytes(first) % u64::from(count.max(1))) as u32
}

/// What a shard writes beside its records (`<records>.shard.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardManifest {
    pub format: u32,
    pub shard: Shard,
    /// [`crate::registry::snapshot::Snapshot::digest`] of the registry view judged against.
    pub snapshot_sha256: String,
    /// When the snapshot was generated (unix seconds).
    pub snapshot_generated_at: i64,
    pub policy_sha256: String,
    /// SHA-256 of the whole target list before sharding (each target and a newline).
    pub targets_sha256: String,
    /// Unix seconds.
    pub started_at: i64,
    /// Unix seconds; absent while the shard runs (or if it died).
    pub ended_at: Option<i64>,
    /// Records written.
    pub targets: u64,
}

impl ShardManifest {
    /// Parse a manifest; `path` names it in errors.
    pub fn parse(path: &str, bytes: &[u8]) -> Result<ShardManifest, ShardError> {
        let m: ShardManifest = serde_json::from_slice(bytes).map_err(|e| ShardError::Manifest {
            path: path.to_string(),
            reason: e.to_string(),
        })?;
        if m.format != SHARD_MANIFEST_FORMAT {
            return Err(ShardError::Manifest {
                path: path.to_string(),
                reason: format!(
                    "format {} (this beian reads {SHARD_MANIFEST_FORMAT})",
                    m.format
                ),
            });
        }
        if Shard::new(m.shard.index, m.shard.count).is_none() {
            return Err(ShardError::Manifest {
                path: path.to_string(),
                reason: format!("invalid shard {}", m.shard),
            });
        }
        Ok(m)
    }
}

/// Check that `shards` (path, manifest) form one whole scan: the same count, snapshot and
/// policy, every index exactly once, each finished. Returns them ordered by index.
pub fn check_complete(
    mut shards: Vec<(String, ShardManifest)>,
) -> Result<Vec<(String, ShardManifest)>, ShardError> {
    let Some((first_path, first)) = shards.first().cloned() else {
        return Err(ShardError::Empty);
    };
    for (path, m) in &shards {
        let mismatch = |what| ShardError::Mismatch {
            path: path.clone(),
            first: first_path.clone(),
            what,
        };
        if m.shard.count != first.shard.count {
            return Err(mismatch("the shard count"));
        }
        if m.snapshot_sha256 != first.snapshot_sha256 {
            return Err(mismatch("the registry snapshot"));
        }
        if m.policy_sha256 != first.policy_sha256 {
            return Err(mismatch("the policy"));
        }
        if m.ended_at.is_none() {
            return Err(ShardError::Unfinished {
                path: path.clone(),
                index: m.shard.index,
            });
        }
    }
    shards.sort_by_key(|(_, m)| m.shard.index);
    for w in shards.windows(2) {
        if w[0].1.shard.index == w[1].1.shard.index {
            return Err(ShardError::Duplicate {
                index: w[0].1.shard.index,
                first: w[0].0.clone(),
                second: w[1].0.clone(),
            });
        }
    }
    for (expected, (_, m)) in shards.iter().enumerate() {
        if m.shard.index != expected as u32 {
            return Err(ShardError::Missing {
                index: expected as u32,
                count: first.shard.count,
            });
        }
    }
    if shards.len() as u32 != first.shard.count {
        return Err(ShardError::Missing {
            index: shards.len() as u32,
            count: first.shard.count,
        });
    }
    Ok(shards)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn manifest(index: u32, count: u32) -> (String, ShardManifest) {
        (
            format!("s{index}.jsonl"),
            ShardManifest {
                format: SHARD_MANIFEST_FORMAT,
                shard: Shard { index, count },
                snapshot_sha256: "ab".into(),
                snapshot_generated_at: 1,
                policy_sha256: "cd".into(),
                targets_sha256: "ef".into(),
                started_at: 10,
                ended_at: Some(20),
                targets: 5,
            },
        )
    }

    #[test]
    fn specs_parse_and_garbage_is_refused() {
        assert_eq!(Shard::parse("0/4").unwrap(), Shard { index: 0, count: 4 });
        assert_eq!(Shard::parse(" 3 / 4 ").unwrap().to_string(), "3/4");
        for bad in ["4/4", "1/0", "x/2", "1", "-1/3", "1/2/3", "", "0/100001"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_target_is_in_exactly_one_shard_and_shards_are_balanced() {
        let n = 4;
        let mut counts = [0u32; 4];
        for i in 0..4000 {
            let t = format!("site{i}.example.cn");
            let owners: Vec<u32> = (0..n)
                .filter(|&k| Shard { index: k, count: n }.contains(&t))
                .collect();
            assert_eq!(owners.len(), 1, "{t}");
            counts[owners[0] as usize] += 1;
        }
        for c in counts {
            assert!((800..1200).contains(&c), "{counts:?}");
        }
        // Case and surrounding space do not move a target.
        assert_eq!(shard_of("Example.CN ", 7), shard_of("example.cn", 7));
    }

    #[test]
    fn a_complete_set_is_accepted_in_any_order() {
        let set = vec![manifest(2, 3), manifest(0, 3), manifest(1, 3)];
        let ok = check_complete(set).unwrap();
        let idx: Vec<u32> = ok.iter().map(|(_, m)| m.shard.index).collect();
        assert_eq!(idx, [0, 1, 2]);
    }

    #[test]
    fn missing_duplicate_foreign_and_unfinished_shards_are_refused() {
        assert_eq!(
            check_complete(vec![manifest(0, 3), manifest(2, 3)]),
            Err(ShardError::Missing { index: 1, count: 3 })
        );
        assert_eq!(
            check_complete(vec![manifest(0, 2)]),
            Err(ShardError::Missing { index: 1, count: 2 })
        );
        assert!(matches!(
            check_complete(vec![manifest(0, 2), manifest(0, 2), manifest(1, 2)]),
            Err(ShardError::Duplicate { index: 0, .. })
        ));
        let mut other = manifest(1, 2);
        other.1.snapshot_sha256 = "ff".into();
        let e = check_complete(vec![manifest(0, 2), other]).unwrap_err();
        assert!(e.to_string().contains("registry snapshot"), "{e}");
        let mut other = manifest(1, 2);
        other.1.policy_sha256 = "ff".into();
        assert!(check_complete(vec![manifest(0, 2), other]).is_err());
        let mut unfinished = manifest(1, 2);
        unfinished.1.ended_at = None;
        assert!(matches!(
            check_complete(vec![manifest(0, 2), unfinished]),
            Err(ShardError::Unfinished { index: 1, .. })
        ));
        assert!(check_complete(vec![manifest(0, 2), manifest(1, 3)]).is_err());
        assert_eq!(check_complete(vec![]), Err(ShardError::Empty));
    }

    #[test]
    fn manifests_are_strict() {
        let (_, m) = manifest(0, 2);
        let bytes = serde_json::to_vec(&m).unwrap();
        assert_eq!(ShardManifest::parse("m", &bytes).unwrap(), m);
        assert!(ShardManifest::parse("m", b"{}").is_err());
        assert!(ShardManifest::parse("m", b"\xff\xfe").is_err());
        let mut v: serde_json::Value = serde_json::to_value(&m).unwrap();
        v["format"] = 9.into();
        assert!(ShardManifest::parse("m", v.to_string().as_bytes()).is_err());
        v["format"] = 1.into();
        v["shard"]["index"] = 5.into();
        assert!(ShardManifest::parse("m", v.to_string().as_bytes()).is_err());
    }

    proptest! {
        #[test]
        fn shard_specs_never_panic(s in ".{0,20}") {
            let _ = Shard::parse(&s);
        }

        #[test]
        fn shard_of_is_in_range(t in ".{0,40}", n in 1u32..1000) {
            prop_assert!(shard_of(&t, n) < n);
        }
    }
}
