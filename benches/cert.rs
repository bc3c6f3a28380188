//! Certificate verification throughput on one thread: full `beian::cert::verify` (parse,
//! key lookup, ed25519 strict verify, domain coverage, registry facts) against a baseline of
//! raw ed25519 `verify_strict` on the same message, measured in the same run. Also measured:
//! the same signature check with the key hex-decoded and decompressed per call (the path
//! before the keyring cached decoded keys), to show what the cache saves.
//!
//! Run: `cargo bench --bench cert`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use beian::cert::{
    key_id_for, parse, sign, signed_message, verify, CertPayload, CertVerdict, FilingFacts,
    FilingLookup, FilingState, Keyring, PublicKeyEntry,
};
use beian::number::{FilingNumber, ServiceKind};
use ed25519_dalek::{Signature, SigningKey};

struct OneFiling(FilingNumber, FilingFacts);

impl FilingLookup for OneFiling {
    fn filing_facts(&self, n: &FilingNumber) -> Option<FilingFacts> {
        (*n == self.0).then(|| self.1.clone())
    }
}

/// Run `f` repeatedly for about `dur`; return calls per second.
fn rate(dur: Duration, mut f: impl FnMut()) -> f64 {
    // Warm up.
    for _ in 0..200 {
        f();
    }
    let start = Instant::now();
    let mut n: u64 = 0;
    while start.elapsed() < dur {
        for _ in 0..100 {
            f();
        }
        n += 100;
    }
    n as f64 / start.elapsed().as_secs_f64()
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

    let dur = Duration::from_secs(3);
    println!(
        "certificate: {} bytes ({} payload bytes)",
        bytes.len(),
        cert.payload_bytes.len()
    );
    let raw = rate(dur, || {
        black_box(vk.verify_strict(black_box(&message), black_box(&signature))).ok();
    });
    let parse_only = rate(dur, || {
        black_box(parse(black_box(&bytes))).ok();
    });
    let entry = ring.get(&cert.payload.key_id).expect("key in ring").clone();
    let decode_each = rate(dur, || {
        let key = black_box(&entry).verifying_key().expect("valid key");
        black_box(key.verify_strict(black_box(&message), black_box(&signature))).ok();
    });
    let full = rate(dur, || {
        black_box(verify(
            black_box(&bytes),
            &ring,
            black_box("www.example.com.cn"),
            &view,
            now,
        ));
    });
    println!("raw ed25519 verify_strict: {raw:>10.0} /s");
    println!("cert parse only:           {parse_only:>10.0} /s");
    println!("key decode + verify_strict:{decode_each:>10.0} /s  (the uncached path)");
    println!("cert verify (full):        {full:>10.0} /s  (one thread)");
    println!("uncached / raw ratio:      {:>10.3}", decode_each / raw);
    println!(
        "full / raw ratio:          {:>10.3}  (goal ≥ 0.95: {})",
        full / raw,
        if full / raw >= 0.95 { "met" } else { "not met" }
    );
}
