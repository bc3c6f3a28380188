//! Posting blocks of the embedded store's subject-name index: the sorted subject ids of one
//! name window, stored as blocks of at most [`BLOCK_IDS`] ids, each under a key that ends in
//! the block's lower bound (big-endian u64). A window's blocks cover disjoint id ranges: a
//! block holds ids at or above its lower bound and below the next block's. Pure: encoding,
//! decoding and the rewrite of one block under a set of changes; the store does the reads
//! and writes.
//!
//! A block's value is its ids as LEB128 deltas (the first from the lower bound, each next
//! from the one before, never zero after the first). An empty value is the block of one id,
//! its lower bound: the layout before blocks (one key per window and subject), which is read
//! as it is and folded into blocks as the window's postings change.

/// The most ids one block holds; a fuller block is split. Small enough that rewriting a
/// window's last block on every new subject costs little (a few hundred bytes), large enough
/// that a transaction of a thousand new subjects writes a few keys per window.
pub const BLOCK_IDS: usize = 256;

/// Why a stored block does not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadBlock(pub &'static str);

/// Encode `ids` (ascending, distinct, none below `lower`, at least one: an empty block is
/// removed, not stored) as a block value.
pub fn encode(lower: u64, ids: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ids.len() * 2);
    let mut prev = lower;
    for &id in ids {
        let mut d = id.wrapping_sub(prev);
        loop {
            let byte = (d & 0x7f) as u8;
            d >>= 7;
            if d == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
        prev = id;
    }
    out
}

/// Decode a block value stored under lower bound `lower`.
pub fn decode(lower: u64, value: &[u8]) -> Result<Vec<u64>, BadBlock> {
    if value.is_empty() {
        return Ok(vec![lower]);
    }
    let mut ids = Vec::with_capacity(value.len());
    let mut prev = lower;
    let mut i = 0;
    while i < value.len() {
        let mut d: u64 = 0;
        let mut shift = 0u32;
        loop {
            let Some(&byte) = value.get(i) else {
                return Err(BadBlock("a delta is cut off"));
            };
            i += 1;
            if shift == 63 && byte > 1 {
                return Err(BadBlock("a delta overflows 64 bits"));
            }
            d |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 63 {
                return Err(BadBlock("a delta overflows 64 bits"));
            }
        }
        if d == 0 && !ids.is_empty() {
            return Err(BadBlock("ids repeat"));
        }
        let id = prev
            .checked_add(d)
            .ok_or(BadBlock("an id overflows 64 bits"))?;
        ids.push(id);
        prev = id;
    }
    Ok(ids)
}

/// Apply `changes` (id → present, ascending ids) to the block `ids` under lower bound
/// `lower`; every changed id must be at or above `lower` and below the next block's bound.
/// Returns the blocks to store in its place, as (lower bound, ids): none when it is empty;
/// the first keeps `lower`, the others (when it outgrew [`BLOCK_IDS`]) start at their first id.
pub fn rewrite(lower: u64, ids: Vec<u64>, changes: &[(u64, bool)]) -> Vec<(u64, Vec<u64>)> {
    let mut merged = Vec::with_capacity(ids.len() + changes.len());
    let mut old = ids.into_iter().peekable();
    for &(id, present) in changes {
        while let Some(&o) = old.peek() {
            if o >= id {
                break;
            }
            merged.push(o);
            old.next();
        }
        if old.peek() == Some(&id) {
            old.next();
        }
        if present {
            merged.push(id);
        }
    }
    merged.extend(old);
    merged
        .chunks(BLOCK_IDS)
        .enumerate()
        .map(|(n, chunk)| (if n == 0 { lower } else { chunk[0] }, chunk.to_vec()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    #[test]
    fn the_layout_before_blocks_is_a_block_of_one() {
        assert_eq!(decode(42, &[]), Ok(vec![42]));
        assert_eq!(decode(42, &encode(42, &[42])), Ok(vec![42]));
    }

    #[test]
    fn garbage_is_refused_not_misread() {
        assert_eq!(decode(1, &[0x80]), Err(BadBlock("a delta is cut off")));
        assert_eq!(decode(1, &[0, 0]), Err(BadBlock("ids repeat")));
        assert!(decode(1, &[0xff; 11]).is_err());
        assert!(decode(u64::MAX, &[0, 1]).is_err());
    }

    proptest! {
        #[test]
        fn blocks_round_trip(lower in any::<u64>(), steps in prop::collection::vec(any::<u64>(), 0..300)) {
            let mut ids = Vec::new();
            let mut at = lower;
            for s in steps {
                match at.checked_add(s % 100_000) {
                    Some(n) if ids.last() != Some(&n) => { ids.push(n); at = n; }
                    _ => {}
                }
            }
            prop_assume!(!ids.is_empty());
            prop_assert_eq!(decode(lower, &encode(lower, &ids)).unwrap(), ids);
        }

        #[test]
        fn decode_never_panics(lower in any::<u64>(), bytes in prop::collection::vec(any::<u8>(), 0..40)) {
            let _ = decode(lower, &bytes);
        }

        /// A window's postings kept as blocks, changed transaction by transaction the way the
        /// store does it, always hold exactly the ids of a plain set given the same changes,
        /// and keep the block invariants.
        #[test]
        fn rewrites_keep_the_postings_a_set_would(
            txns in prop::collection::vec(prop::collection::vec((0u64..2_000, any::<bool>()), 0..400), 1..8)
        ) {
            let mut blocks: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
            let mut model = BTreeSet::new();
            for txn in txns {
                let changes: BTreeMap<u64, bool> = txn.into_iter().collect();
                for (&id, &p) in &changes {
                    if p { model.insert(id); } else { model.remove(&id); }
                }
                let changes: Vec<(u64, bool)> = changes.into_iter().collect();
                let mut i = 0;
                while i < changes.len() {
                    let x = changes[i].0;
                    let (lower, ids) = match blocks.range(..=x).next_back() {
                        Some((&l, ids)) => (l, ids.clone()),
                        None => (x, Vec::new()),
                    };
                    let upper = blocks.range(lower + 1..).next().map(|(&u, _)| u);
                    let j = changes[i..].iter().position(|(id, _)| upper.is_some_and(|u| *id >= u)).map_or(changes.len(), |p| i + p);
                    blocks.remove(&lower);
                    for (l, ids) in rewrite(lower, ids, &changes[i..j]) {
                        blocks.insert(l, decode(l, &encode(l, &ids)).unwrap());
                    }
                    i = j;
                }
            }
            let all: Vec<u64> = blocks.values().flatten().copied().collect();
            prop_assert_eq!(&all, &model.iter().copied().collect::<Vec<_>>());
            let bounds: Vec<u64> = blocks.keys().copied().collect();
            for (n, (l, ids)) in blocks.iter().enumerate() {
                prop_assert!(!ids.is_empty() && ids.len() <= BLOCK_IDS);
                prop_assert!(ids[0] >= *l);
                if let Some(next) = bounds.get(n + 1) { prop_assert!(*ids.last().unwrap() < *next); }
            }
        }
    }
}
