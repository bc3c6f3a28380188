//! Certificate verification throughput on one thread: full `beian::cert::verify` (parse,
//! key lookup, ed25519 strict verify, domain coverage, registry facts) against a baseline of
//! raw ed25519 `verify_strict` on the same message, measured in the same run and printed as a
//! ratio. Also measured: parsing alone; the same signature check with the key hex-decoded
//! and decompressed per call (the path before the keyring cached decoded keys); and
//! ed25519-dalek's batch verification (`verify_batch`, the `batch` feature, a dev-dependency
//! only) over 64 certificates, per signature, against `verify_strict` on the same 64.
//!
//! Batch verification is not used by the scanner: its equation accepts signatures that
//! `verify_strict` refuses (a small-order or mixed-order `R`, a non-canonical `R` encoding),
//! so a certificate's verdict would depend on the batch it was checked in; the bench shows
//! one such signature (a small-order `R` made with the signing key) passing in a batch.
//!
//! Run: `cargo bench --bench cert`.

use std::hint::black_box;
use std::time::Duration;

use beian::cert::{
    key_id_for, parse, sign, signed_message, verify, CertPayload, CertVerdict, FilingFacts,
    FilingLookup, FilingState, Keyring, PublicKeyEntry,
};
use beian::number::{FilingNumber, ServiceKind};
use curve25519_dalek::edwards::CompressedEdwardsY;
use curve25519_dalek::traits::Identity;
use curve25519_dalek::Scalar;
use ed25519_dalek::{Signature, SigningKey};
use sha2::{Digest, Sha512};

struct OneFiling(FilingNumber, FilingFacts);

impl FilingLookup for OneFiling {
    fn filing_facts(&self, n: &FilingNumber) -> Option<FilingFacts> {
        (*n == self.0).then(|| self.1.clone())
    }
}

/// CPU time of the calling thread: what a rate is measured in, so time the shared machine
/// gives to other processes does not count.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call to fill.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Run `f` repeatedly for about `dur` of this thread's CPU time; return calls per second.
fn rate(dur: Duration, mut f: impl FnMut()) -> f64 {
    // Warm up.
    for _ in 0..200 {
        f();
    }
    let start = thread_cpu();
    let mut n: u64 = 0;
    while thread_cpu() - start < dur {
        for _ in 0..100 {
            f();
        }
        n += 100;
    }
    n as f64 / (thread_cpu() - start).as_secs_f64()
}

/// Rates of `a` and `b` measured in alternating rounds (so a change in the machine's load
/// falls on both), and the rounds' ratios b / a.
fn paired(
    rounds: usize,
    dur: Duration,
    mut a: impl FnMut(),
    mut b: impl FnMut(),
) -> (f64, f64, Ratios) {
    let (mut ra, mut rb, mut ratios) = (0.0, 0.0, Vec::with_capacity(rounds));
    for _ in 0..rounds {
        let x = rate(dur, &mut a);
        let y = rate(dur, &mut b);
        ra += x;
        rb += y;
        ratios.push(y / x);
    }
    ratios.sort_by(f64::total_cmp);
    let n = rounds as f64;
    (ra / n, rb / n, Ratios(ratios))
}

/// Per-round ratios, sorted.
struct Ratios(Vec<f64>);

impl Ratios {
    fn quantile(&self, q: f64) -> f64 {
        let i = ((self.0.len() - 1) as f64 * q).round() as usize;
        self.0[i]
    }
    fn median(&self) -> f64 {
        self.quantile(0.5)
    }
}

impl std::fmt::Display for Ratios {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>10.3}  (median of {} rounds; quartiles {:.3}–{:.3})",
            self.median(),
            self.0.len(),
            self.quantile(0.25),
            self.quantile(0.75)
        )
    }
}

fn main() {
    let key = SigningKey::from_bytes(&[42; 32]);
    let vk = key.verifying_key();
    let key_id = key_id_for(&vk);
    let mut ring = Keyring::default();
    ring.insert(PublicKeyEntry::new(key_id.clone(), &vk, 0))
        .expect("valid key");
    let subject = FilingNumber::parse("京ICP备12345678号").expect("valid number");
    let payload = CertPayload {
        version: 1,
        serial: 7,
        service_number: subject.with_service(1, ServiceKind::Website),
        subject_number: subject,
        subject_name: "示例科技有限公司".into(),
        domains: vec![
            "example.com".into(),
            "example.cn".into(),
            "example.com.cn".into(),
        ],
        issued_at: 1_709_280_000,
        expires_at: 1_740_816_000,
        key_id,
    };
    let bytes = sign(&payload, &key).expect("valid payload");
    let view = OneFiling(
        payload.service_number.clone(),
        FilingFacts {
            state: FilingState::Active,
            current_serial: payload.serial,
            expires_at: payload.expires_at,
        },
    );
    let now = 1_720_000_000;
    assert!(matches!(
        verify(&bytes, &ring, "www.example.com.cn", &view, now),
        CertVerdict::Valid { .. }
    ));

    let cert = parse(&bytes).expect("parses");
    let message = signed_message(&cert.payload_bytes);
    let signature = Signature::from_bytes(&cert.signature);

    let round = Duration::from_millis(150);
    println!(
        "certificate: {} bytes ({} payload bytes); rates per second of this thread's CPU time, \
         ratios the median of alternating rounds",
        bytes.len(),
        cert.payload_bytes.len()
    );
    let raw_strict = || {
        black_box(vk.verify_strict(black_box(&message), black_box(&signature))).ok();
    };
    let full_verify = || {
        black_box(verify(
            black_box(&bytes),
            &ring,
            black_box("www.example.com.cn"),
            &view,
            now,
        ));
    };
    let (raw, full, full_ratio) = paired(30, round, raw_strict, full_verify);
    let parse_only = rate(Duration::from_secs(1), || {
        black_box(parse(black_box(&bytes))).ok();
    });
    let entry = ring.get(&cert.payload.key_id).expect("key in ring").clone();
    let decode_each = || {
        let key = black_box(&entry).verifying_key().expect("valid key");
        black_box(key.verify_strict(black_box(&message), black_box(&signature))).ok();
    };
    let (_, uncached, uncached_ratio) = paired(6, round, raw_strict, decode_each);
    let (strict_same, batch, batch_ratio, refused_but_batched) = batch_figures(&key, round);
    println!("raw ed25519 verify_strict: {raw:>10.0} /s");
    println!(
        "cert parse only:           {parse_only:>10.0} /s  ({:.2} µs)",
        1e6 / parse_only
    );
    println!("key decode + verify_strict:{uncached:>10.0} /s  (the uncached path)");
    println!(
        "cert verify (full):        {full:>10.0} /s  ({:.2} µs over raw)",
        1e6 / full - 1e6 / raw
    );
    println!("uncached / raw ratio:      {uncached_ratio}");
    println!("full / raw ratio:          {full_ratio}");
    println!(
        "                            goal ≥ 0.95 (median): {}",
        if full_ratio.median() >= 0.95 {
            "met"
        } else {
            "not met"
        }
    );
    println!("verify_strict × {BATCH}:      {strict_same:>10.0} /s per signature");
    println!("verify_batch of {BATCH}:      {batch:>10.0} /s per signature");
    println!("batch / strict ratio:      {batch_ratio}");
    println!(
        "                            not used: a signature verify_strict refuses passes in a \
         batch: {refused_but_batched}"
    );
}

/// Signatures per batch.
const BATCH: usize = 64;

/// Per-signature rates of `verify_strict` over `BATCH` certificate messages and of
/// `verify_batch` over the same ones, their ratio, and whether a signature `verify_strict` refuses (a
/// small-order `R`, made with the signing key) passes inside a batch.
fn batch_figures(key: &SigningKey, dur: Duration) -> (f64, f64, Ratios, bool) {
    use ed25519_dalek::{Signer, VerifyingKey};
    let vk = key.verifying_key();
    let messages: Vec<Vec<u8>> = (0..BATCH)
        .map(|i| signed_message(format!("beian-cert v1\nserial: {i}\n").as_bytes()))
        .collect();
    let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    let sigs: Vec<Signature> = refs.iter().map(|m| key.sign(m)).collect();
    let keys: Vec<VerifyingKey> = vec![vk; BATCH];
    assert!(ed25519_dalek::verify_batch(&refs, &sigs, &keys).is_ok());
    let strict_each = || {
        for (m, s) in refs.iter().zip(&sigs) {
            black_box(vk.verify_strict(black_box(m), black_box(s))).ok();
        }
    };
    let batched = || {
        black_box(ed25519_dalek::verify_batch(
            black_box(&refs),
            black_box(&sigs),
            &keys,
        ))
        .ok();
    };
    let (strict, batch, ratio) = paired(6, dur, strict_each, batched);
    let (strict, batch) = (strict * BATCH as f64, batch * BATCH as f64);

    // R = the identity (small order), s = H(R ‖ A ‖ M)·a: the batch equation holds, the
    // strict check refuses R.
    let mut odd = sigs.clone();
    let r = CompressedEdwardsY::identity().to_bytes();
    let mut h = Sha512::new();
    h.update(r);
    h.update(vk.as_bytes());
    h.update(refs[0]);
    let k = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
    let s = k * key.to_scalar();
    let mut bytes = [0u8; 64];
    bytes[..32].copy_from_slice(&r);
    bytes[32..].copy_from_slice(s.as_bytes());
    odd[0] = Signature::from_bytes(&bytes);
    assert!(vk.verify_strict(refs[0], &odd[0]).is_err());
    let refused_but_batched = ed25519_dalek::verify_batch(&refs, &odd, &keys).is_ok();
    (strict, batch, ratio, refused_but_batched)
}
