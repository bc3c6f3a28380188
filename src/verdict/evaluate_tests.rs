//! Unit tests for `evaluate`: one or more per finding code, every unknown reason, policy
//! switches.

use std::net::IpAddr;

use super::*;
use crate::observation::{DnsObservation, FetchError, Hop};
use crate::registry::snapshot::ProviderBlock;

const NOW: i64 = 1_700_000_000;

fn num(s: &str) -> FilingNumber {
    FilingNumber::parse(s).unwrap()
}

fn filing(
    number: &str,
    province: char,
    domains: &[&str],
    state: FilingState,
    providers: &[&str],
) -> SnapshotFiling {
    let n = num(number);
    SnapshotFiling {
        subject_number: n.subject_number(),
        service_number: n,
        subject_name: "示例公司".into(),
        province,
        state,
        domains: domains.iter().map(|d| d.to_string()).collect(),
        ips: vec![],
        providers: providers.iter().map(|p| p.to_string()).collect(),
        cert_serial: Some(2),
        expires_at: Some(NOW + 1000),
        operating: false,
        licence: None,
    }
}

/// example.com: 京, active, provider 甲. revoked.test: revoked. gd.test: 粤. shop.test:
/// operating with licence 滇B2-20040019. 192.0.2.7 is filed by ip-only (津).
fn snapshot() -> Snapshot {
    let mut shop = filing(
        "沪ICP备22222222号-1",
        '沪',
        &["shop.test"],
        FilingState::Active,
        &["甲"],
    );
    shop.operating = true;
    shop.licence = Some(LicenceNumber::parse("滇B2-20040019").unwrap());
    let mut ip_only = filing(
        "津ICP备33333333号-1",
        '津',
        &[],
        FilingState::Active,
        &["甲"],
    );
    ip_only.ips = vec!["192.0.2.7".parse().unwrap()];
    Snapshot::new(
        NOW - 10,
        Keyring::default(),
        vec![
            filing(
                "京ICP备12345678号-1",
                '京',
                &["example.com"],
                FilingState::Active,
                &["甲"],
            ),
            filing(
                "京ICP备87654321号-1",
                '京',
                &["revoked.test"],
                FilingState::Revoked,
                &["甲"],
            ),
            filing(
                "粤ICP备11111111号-2",
                '粤',
                &["gd.test"],
                FilingState::Active,
                &["甲"],
            ),
            shop,
            ip_only,
        ],
        vec![
            ProviderBlock {
                provider: "甲".into(),
                network: "203.0.113.0/24".parse().unwrap(),
            },
            ProviderBlock {
                provider: "乙".into(),
                network: "198.51.100.0/24".parse().unwrap(),
            },
        ],
    )
}

fn policies() -> PolicySet {
    PolicySet::embedded().unwrap()
}

fn record(url: &str, status: Option<u16>, error: Option<FetchErrorKind>) -> FetchRecord {
    FetchRecord {
        url: url.into(),
        hops: vec![Hop {
            url: url.into(),
            status,
            address: None,
        }],
        status,
        content_type: Some("text/html".into()),
        bytes: 100,
        elapsed_ms: 5,
        error: error.map(|kind| FetchError {
            kind,
            message: "test".into(),
        }),
        retry_after: None,
        truncated: false,
    }
}

fn mention(number: &str, linked: bool, host: Option<&str>, in_footer: bool) -> IcpMention {
    IcpMention {
        via: Default::default(),
        number: num(number),
        linked,
        link_host: host.map(str::to_string),
        in_footer,
    }
}

fn cert_fetch(path: &str, status: u16, body: Option<&[u8]>) -> CertFetch {
    CertFetch {
        path: path.into(),
        fetch: record(path, Some(status), None),
        body: body.map(<[u8]>::to_vec),
    }
}

/// A healthy fetch of `host` from 203.0.113.5 showing `number` linked in the footer, with a
/// certificate body.
fn obs_ok(host: &str, number: &str) -> Observation {
    let ip: IpAddr = "203.0.113.5".parse().unwrap();
    Observation {
        target: host.into(),
        host: host.into(),
        started_at: NOW,
        dns: DnsObservation {
            answers: vec![ip],
            used: Some(ip),
            error: None,
            blocked: vec![],
            elapsed_ms: 1,
        },
        allow_private: false,
        homepage: vec![record(&format!("https://{host}/"), Some(200), None)],
        homepage_used: Some(0),
        charset: Some("utf-8".into()),
        page: Some(Extraction {
            icp: vec![mention(number, true, Some("beian.miit.gov.cn"), true)],
            licences: vec![],
            psb: vec![],
            facts: crate::extract::PageFacts {
                text_chars: 200,
                ..Default::default()
            },
        }),
        cert: Some(cert_fetch("/cert/bazs.cert", 200, Some(b"cert"))),
        cert_misplaced: None,
        render: None,
        elapsed_ms: 10,
    }
}

fn payload(number: &str, domains: &[&str], serial: u64) -> CertPayload {
    let n = num(number);
    CertPayload {
        version: 1,
        serial,
        subject_number: n.subject_number(),
        service_number: n,
        subject_name: "示例公司".into(),
        domains: domains.iter().map(|d| d.to_string()).collect(),
        issued_at: NOW - 100,
        expires_at: NOW + 1000,
        key_id: "k1".into(),
    }
}

fn valid(number: &str, domains: &[&str]) -> CertVerdict {
    CertVerdict::Valid {
        payload: payload(number, domains, 2),
    }
}

fn run(obs: &Observation, cert: Option<&CertVerdict>) -> Assessment {
    evaluate(obs, cert, &snapshot(), &policies(), NOW)
}

fn ok_example() -> (Observation, CertVerdict) {
    (
        obs_ok("www.example.com", "京ICP备12345678号-1"),
        valid("京ICP备12345678号-1", &["example.com"]),
    )
}

#[test]
fn a_clean_site_is_compliant() {
    let (obs, cert) = ok_example();
    let a = run(&obs, Some(&cert));
    assert_eq!(a.verdict, Verdict::Compliant, "{:?}", a.findings);
    assert!(a.findings.is_empty());
    assert_eq!(a.filing, Some(num("京ICP备12345678号-1")));
    assert_eq!(a.province, Some('京'));
    assert_eq!(a.policy_province, Some('京'));
    assert_eq!(a.cert_status, CertStatus::Valid);
    assert_eq!(a.cert_number, Some(num("京ICP备12345678号-1")));
    assert_eq!(a.cert_serial, Some(2));
    assert_eq!(a.assessed_at, NOW);
    assert_eq!(a.policy_sha256, policies().for_province(Some('京')).sha256);
}

#[test]
fn unfiled() {
    let obs = obs_ok("nobody.test", "京ICP备12345678号-1");
    let a = run(&obs, Some(&valid("京ICP备12345678号-1", &["example.com"])));
    assert_eq!(a.verdict, Verdict::Unfiled);
    assert_eq!(
        a.codes(),
        vec![FindingCode::Unfiled, FindingCode::NumberMismatch]
    );
    let f = &a.findings[0];
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(f.legal_basis, "292 Art.19; 33 Art.22");
    assert_eq!(f.confirmations, 2);
    assert_eq!(a.policy_province, None);
    // A copied certificate on an unfiled host is reported; a missing one is implied.
    let a = run(
        &obs,
        Some(&CertVerdict::DomainNotCovered {
            payload: payload("京ICP备12345678号-1", &["example.com"], 2),
        }),
    );
    assert!(a.has(FindingCode::CertDomainMismatch));
    let mut obs = obs_ok("nobody.test", "京ICP备12345678号-1");
    obs.page.as_mut().unwrap().icp.clear();
    obs.cert = Some(cert_fetch("/cert/bazs.cert", 404, None));
    let a = run(&obs, None);
    assert_eq!(a.codes(), vec![FindingCode::Unfiled]);
    assert_eq!(a.cert_status, CertStatus::Missing);
}

#[test]
fn filing_revoked() {
    let obs = obs_ok("revoked.test", "京ICP备87654321号-1");
    let cert = CertVerdict::FilingRevoked {
        payload: payload("京ICP备87654321号-1", &["revoked.test"], 2),
        state: FilingState::Revoked,
    };
    let a = run(&obs, Some(&cert));
    assert_eq!(a.verdict, Verdict::Unfiled);
    assert_eq!(a.codes(), vec![FindingCode::FilingRevoked]);
    assert_eq!(a.filing, Some(num("京ICP备87654321号-1")));
    assert!(a.findings[0].message.contains("revoked"));
    // The snapshot alone is enough (with the certificate check made: here a 404).
    let mut obs = obs;
    obs.cert = Some(cert_fetch("/cert/bazs.cert", 404, None));
    let a = run(&obs, None);
    assert_eq!(a.codes(), vec![FindingCode::FilingRevoked]);
    // A certificate saying "revoked" on an active host's site is an old certificate.
    let (obs, _) = ok_example();
    let a = run(
        &obs,
        Some(&CertVerdict::FilingRevoked {
            payload: payload("京ICP备99999999号-1", &["example.com"], 1),
            state: FilingState::Cancelled,
        }),
    );
    assert_eq!(a.codes(), vec![FindingCode::CertSuperseded]);
    // ...but one for the host's own filing (state raced ahead of the snapshot) is revoked.
    let a = run(
        &obs,
        Some(&CertVerdict::FilingRevoked {
            payload: payload("京ICP备12345678号-1", &["example.com"], 2),
            state: FilingState::Revoked,
        }),
    );
    assert_eq!(a.codes(), vec![FindingCode::FilingRevoked]);
    assert_eq!(a.verdict, Verdict::Noncompliant);
}

#[test]
fn cert_missing_and_misplaced() {
    let (mut obs, _) = ok_example();
    obs.cert = Some(cert_fetch("/cert/bazs.cert", 404, None));
    obs.cert_misplaced = Some(cert_fetch("/cert/bazx.cert", 404, None));
    let a = run(&obs, None);
    assert_eq!(a.codes(), vec![FindingCode::CertMissing]);
    assert_eq!(a.cert_status, CertStatus::Missing);
    assert_eq!(a.verdict, Verdict::Noncompliant);

    obs.cert_misplaced = Some(cert_fetch("/cert/bazx.cert", 200, Some(b"cert")));
    let a = run(&obs, None);
    assert_eq!(a.codes(), vec![FindingCode::CertMisplaced]);
    assert_eq!(a.cert_status, CertStatus::Misplaced);
    // cert_misplaced is `info` nationally: the site stays compliant.
    assert_eq!(a.findings[0].severity, Severity::Info);
    assert_eq!(a.verdict, Verdict::Compliant);
}

#[test]
fn an_unreachable_certificate_is_not_missing() {
    let (mut obs, _) = ok_example();
    for (status, err) in [
        (Some(503), None),
        (Some(403), None),
        (None, Some(FetchErrorKind::Timeout)),
    ] {
        obs.cert = Some(CertFetch {
            path: "/cert/bazs.cert".into(),
            fetch: record("/cert/bazs.cert", status, err),
            body: None,
        });
        let a = run(&obs, None);
        assert_eq!(a.cert_status, CertStatus::Unreachable);
        assert!(a.findings.is_empty(), "{:?}", a.findings);
    }
    obs.cert = None;
    assert_eq!(run(&obs, None).cert_status, CertStatus::NotProbed);
}

#[test]
fn cert_malformed() {
    let (mut obs, _) = ok_example();
    let a = run(
        &obs,
        Some(&CertVerdict::Malformed {
            reason: "no signature line".into(),
        }),
    );
    assert_eq!(a.codes(), vec![FindingCode::CertMalformed]);
    assert!(a.findings[0].message.contains("no signature line"));
    obs.cert = Some(CertFetch {
        path: "/cert/bazs.cert".into(),
        fetch: record(
            "/cert/bazs.cert",
            Some(200),
            Some(FetchErrorKind::BodyTooLarge),
        ),
        body: None,
    });
    let a = run(&obs, None);
    assert_eq!(a.codes(), vec![FindingCode::CertMalformed]);
    assert_eq!(a.cert_status, CertStatus::Malformed);
}

#[test]
fn cert_bad_signature() {
    let (obs, _) = ok_example();
    for (v, status) in [
        (
            CertVerdict::BadSignature {
                key_id: "k1".into(),
            },
            CertStatus::BadSignature,
        ),
        (
            CertVerdict::UnknownKey {
                key_id: "k9".into(),
            },
            CertStatus::UnknownKey,
        ),
        (
            CertVerdict::CompromisedKey {
                key_id: "k0".into(),
            },
            CertStatus::CompromisedKey,
        ),
    ] {
        let a = run(&obs, Some(&v));
        assert_eq!(a.codes(), vec![FindingCode::CertBadSignature]);
        assert_eq!(a.cert_status, status);
        assert_eq!(a.verdict, Verdict::Noncompliant);
        assert_eq!(a.cert_number, None);
    }
}

#[test]
fn cert_domain_mismatch() {
    let (obs, _) = ok_example();
    let a = run(
        &obs,
        Some(&CertVerdict::DomainNotCovered {
            payload: payload("京ICP备12345678号-1", &["other.test"], 2),
        }),
    );
    assert_eq!(a.codes(), vec![FindingCode::CertDomainMismatch]);
    assert!(a.findings[0].message.contains("other.test"));
    assert_eq!(a.cert_status, CertStatus::DomainNotCovered);
}

#[test]
fn cert_superseded() {
    let (obs, _) = ok_example();
    let a = run(
        &obs,
        Some(&CertVerdict::Superseded {
            payload: payload("京ICP备12345678号-1", &["example.com"], 1),
            current_serial: 2,
        }),
    );
    assert_eq!(a.codes(), vec![FindingCode::CertSuperseded]);
    assert_eq!(a.cert_serial, Some(1));
    let a = run(
        &obs,
        Some(&CertVerdict::FilingUnknown {
            payload: payload("京ICP备12345678号-1", &["example.com"], 1),
        }),
    );
    assert_eq!(a.codes(), vec![FindingCode::CertSuperseded]);
    assert_eq!(a.cert_status, CertStatus::FilingUnknown);
}

#[test]
fn cert_expired() {
    let (obs, _) = ok_example();
    let a = run(
        &obs,
        Some(&CertVerdict::Expired {
            payload: payload("京ICP备12345678号-1", &["example.com"], 2),
        }),
    );
    assert_eq!(a.codes(), vec![FindingCode::CertExpired]);
    assert_eq!(a.findings[0].severity, Severity::Medium);
}

#[test]
fn number_missing() {
    let (mut obs, cert) = ok_example();
    obs.page.as_mut().unwrap().icp.clear();
    let a = run(&obs, Some(&cert));
    assert_eq!(a.codes(), vec![FindingCode::NumberMissing]);
    assert_eq!(a.findings[0].legal_basis, "292 Art.12; 292 Art.22");
    assert_eq!(a.findings[0].fine.min_yuan, Some(5000));
    assert_eq!(a.findings[0].fine.max_yuan, Some(50000));
    // No extraction at all: the footer check was not made.
    obs.page = None;
    let a = run(&obs, Some(&cert));
    assert_eq!(a.verdict, Verdict::Unknown(UnknownReason::Other));
    assert!(a.findings.is_empty());
}

#[test]
fn number_mismatch() {
    let (mut obs, cert) = ok_example();
    obs.page.as_mut().unwrap().icp = vec![mention(
        "京ICP备12345679号-1",
        true,
        Some("beian.miit.gov.cn"),
        true,
    )];
    let a = run(&obs, Some(&cert));
    assert_eq!(a.codes(), vec![FindingCode::NumberMismatch]);
    assert!(a.findings[0].message.contains("京ICP备12345679号-1"));
    // Another service of the same subject is a mismatch too.
    obs.page.as_mut().unwrap().icp[0].number = num("京ICP备12345678号-2");
    assert_eq!(
        run(&obs, Some(&cert)).codes(),
        vec![FindingCode::NumberMismatch]
    );
}

#[test]
fn required_number_form_is_a_policy_setting() {
    // 粤 requires the service number: the subject number alone is a mismatch.
    let mut obs = obs_ok("gd.test", "粤ICP备11111111号");
    let a = run(&obs, None);
    assert_eq!(a.policy_province, Some('粤'));
    assert!(a.has(FindingCode::NumberMismatch), "{:?}", a.findings);
    assert!(a
        .findings
        .iter()
        .any(|f| f.message.contains("service number")));
    obs.page.as_mut().unwrap().icp[0].number = num("粤ICP备11111111号-2");
    assert!(!run(&obs, None).has(FindingCode::NumberMismatch));
    // Nationally ("either") the subject number is enough, and alternative province forms
    // of the same number match.
    let (mut obs, cert) = ok_example();
    obs.page.as_mut().unwrap().icp[0].number = num("京ICP备12345678号");
    assert!(run(&obs, Some(&cert)).findings.is_empty());
    // A "subject" policy refuses the service number.
    let national = include_str!("../../policies/national.toml");
    let set = PolicySet::from_texts(
        "n.toml",
        national,
        &[(
            "京.toml",
            "[policy]\nprovince = \"京\"\nrequired_number = \"subject\"\n",
        )],
    )
    .unwrap();
    let (obs, cert) = ok_example();
    let a = evaluate(&obs, Some(&cert), &snapshot(), &set, NOW);
    assert_eq!(a.codes(), vec![FindingCode::NumberMismatch]);
}

#[test]
fn alternative_province_forms_match() {
    let mut snap = snapshot();
    snap = Snapshot::new(
        snap.generated_at,
        Keyring::default(),
        vec![filing(
            "甘ICP备123456号-1",
            '甘',
            &["gs.test"],
            FilingState::Active,
            &["甲"],
        )],
        std::mem::take(&mut snap.ip_blocks),
    );
    let obs = obs_ok("gs.test", "陇ICP备123456号-1");
    let a = evaluate(&obs, None, &snap, &policies(), NOW);
    assert!(a.findings.is_empty(), "{:?}", a.findings);
}

#[test]
fn number_unlinked() {
    let (mut obs, cert) = ok_example();
    obs.page.as_mut().unwrap().icp[0] = mention("京ICP备12345678号-1", false, None, true);
    let a = run(&obs, Some(&cert));
    assert_eq!(a.codes(), vec![FindingCode::NumberUnlinked]);
    // 京 is stricter than national.
    assert_eq!(a.findings[0].severity, Severity::High);
}

#[test]
fn legacy_link_hosts_follow_the_policy() {
    // National: www.miibeian.gov.cn counts as linked.
    let mut obs = obs_ok("shop.test", "沪ICP备22222222号-1");
    obs.page.as_mut().unwrap().licences = vec![LicenceNumber::parse("滇B2-20040019").unwrap()];
    obs.page.as_mut().unwrap().icp[0].link_host = Some("www.miibeian.gov.cn".into());
    let a = run(&obs, None);
    assert!(a.findings.is_empty(), "{:?}", a.findings);
    // 京 does not accept it.
    let (mut obs, cert) = ok_example();
    obs.page.as_mut().unwrap().icp[0].link_host = Some("www.miibeian.gov.cn".into());
    let a = run(&obs, Some(&cert));
    assert_eq!(a.codes(), vec![FindingCode::NumberUnlinked]);
    assert!(a.findings[0].message.contains("www.miibeian.gov.cn"));
}

#[test]
fn number_misplaced() {
    let (mut obs, cert) = ok_example();
    obs.page.as_mut().unwrap().icp[0].in_footer = false;
    let a = run(&obs, Some(&cert));
    assert_eq!(a.codes(), vec![FindingCode::NumberMisplaced]);
    // A second, footer copy of the number satisfies the rule.
    obs.page.as_mut().unwrap().icp.push(mention(
        "京ICP备12345678号",
        true,
        Some("beian.miit.gov.cn"),
        true,
    ));
    assert!(run(&obs, Some(&cert)).findings.is_empty());
}

#[test]
fn licence_missing() {
    let obs = obs_ok("shop.test", "沪ICP备22222222号-1");
    let a = run(&obs, None);
    assert_eq!(a.codes(), vec![FindingCode::LicenceMissing]);
    // 沪 makes it critical.
    assert_eq!(a.findings[0].severity, Severity::Critical);
    // Another licence is not its licence.
    let mut obs = obs_ok("shop.test", "沪ICP备22222222号-1");
    obs.page.as_mut().unwrap().licences = vec![LicenceNumber::parse("京B2-20040020").unwrap()];
    let a = run(&obs, None);
    assert_eq!(a.codes(), vec![FindingCode::LicenceMissing]);
    assert!(a.findings[0].message.contains("京B2-20040020"));
    // Its own licence, in the primary province form (滇 = 云), is fine.
    obs.page.as_mut().unwrap().licences = vec![LicenceNumber::parse("云B2-20040019").unwrap()];
    assert!(run(&obs, None).findings.is_empty());
    // A non-operating service needs no licence.
    let (obs, cert) = ok_example();
    assert!(!run(&obs, Some(&cert)).has(FindingCode::LicenceMissing));
}

#[test]
fn access_provider_mismatch() {
    let (mut obs, cert) = ok_example();
    let ip: IpAddr = "198.51.100.20".parse().unwrap();
    obs.dns.used = Some(ip);
    obs.dns.answers = vec![ip];
    let a = run(&obs, Some(&cert));
    assert_eq!(a.codes(), vec![FindingCode::AccessProviderMismatch]);
    assert!(a.findings[0].message.contains("乙"));
    // An address in no reported block says nothing.
    obs.dns.used = Some("192.0.2.200".parse().unwrap());
    assert!(run(&obs, Some(&cert)).findings.is_empty());
}

#[test]
fn ip_literal_hosts_match_filed_ips() {
    let obs = obs_ok("192.0.2.7", "津ICP备33333333号-1");
    let a = run(&obs, None);
    assert_eq!(a.filing, Some(num("津ICP备33333333号-1")));
    assert_ne!(a.verdict, Verdict::Unfiled);
    let mut other = obs_ok("192.0.2.8", "津ICP备33333333号-1");
    other.cert = Some(cert_fetch("/cert/bazs.cert", 404, None));
    let a = run(&other, None);
    assert_eq!(a.verdict, Verdict::Unfiled);
}

/// An observation of an unfiled host that failed in some way.
fn failed(edit: impl FnOnce(&mut Observation)) -> Assessment {
    let mut obs = obs_ok("nobody.test", "京ICP备12345678号-1");
    obs.page = None;
    edit(&mut obs);
    run(&obs, None)
}

fn fail_with(kind: FetchErrorKind) -> impl FnOnce(&mut Observation) {
    move |o: &mut Observation| {
        o.homepage = vec![
            record("https://nobody.test/", None, Some(kind)),
            record("http://nobody.test/", None, Some(kind)),
        ];
        o.homepage_used = None;
    }
}

fn status(s: u16) -> impl FnOnce(&mut Observation) {
    move |o: &mut Observation| {
        o.homepage = vec![
            record("https://nobody.test/", None, Some(FetchErrorKind::Tls)),
            record("http://nobody.test/", Some(s), None),
        ];
        o.homepage_used = None;
    }
}

#[test]
fn every_unknown_reason_is_unknown_never_unfiled() {
    let cases: Vec<(UnknownReason, Assessment)> = vec![
        (
            UnknownReason::Dns,
            failed(|o| {
                o.dns = DnsObservation {
                    error: Some("NXDOMAIN".into()),
                    ..Default::default()
                };
                o.homepage.clear();
                o.homepage_used = None;
            }),
        ),
        (
            UnknownReason::BlockedAddress,
            failed(|o| {
                let ip: IpAddr = "10.0.0.1".parse().unwrap();
                o.dns = DnsObservation {
                    answers: vec![ip],
                    blocked: vec![ip],
                    ..Default::default()
                };
                o.homepage.clear();
                o.homepage_used = None;
            }),
        ),
        (
            UnknownReason::BlockedAddress,
            failed(fail_with(FetchErrorKind::BlockedAddress)),
        ),
        (
            UnknownReason::Connect,
            failed(fail_with(FetchErrorKind::Connect)),
        ),
        (UnknownReason::Tls, failed(fail_with(FetchErrorKind::Tls))),
        (
            UnknownReason::Timeout,
            failed(fail_with(FetchErrorKind::Timeout)),
        ),
        (
            UnknownReason::Deadline,
            failed(fail_with(FetchErrorKind::Deadline)),
        ),
        (
            UnknownReason::TooManyRedirects,
            failed(fail_with(FetchErrorKind::TooManyRedirects)),
        ),
        (
            UnknownReason::Other,
            failed(fail_with(FetchErrorKind::Protocol)),
        ),
        (UnknownReason::Http403, failed(status(403))),
        (UnknownReason::Http403, failed(status(401))),
        (UnknownReason::Http5xx, failed(status(503))),
        (UnknownReason::Http5xx, failed(status(500))),
        (UnknownReason::Http404, failed(status(404))),
        (UnknownReason::Http404, failed(status(410))),
        (UnknownReason::Http4xx, failed(status(400))),
        (UnknownReason::RateLimited, failed(status(429))),
        (
            UnknownReason::RateLimited,
            failed(|o| {
                status(503)(o);
                o.homepage[1].retry_after = Some(30);
            }),
        ),
        (
            UnknownReason::Reset,
            failed(fail_with(FetchErrorKind::Reset)),
        ),
        (
            UnknownReason::HeaderTooLarge,
            failed(fail_with(FetchErrorKind::HeaderTooLarge)),
        ),
        (
            UnknownReason::RedirectLoop,
            failed(fail_with(FetchErrorKind::RedirectLoop)),
        ),
        (
            UnknownReason::BadRedirect,
            failed(fail_with(FetchErrorKind::BadRedirect)),
        ),
        (
            UnknownReason::Challenge,
            failed(|o| {
                o.page = Some(Extraction {
                    facts: crate::extract::PageFacts {
                        text_chars: 40,
                        challenge: Some("cloudflare".into()),
                        ..Default::default()
                    },
                    ..Default::default()
                });
            }),
        ),
        (
            UnknownReason::NeedsRender,
            // A filed host whose static page is a script shell: nothing to read.
            {
                let (mut obs, cert) = ok_example();
                obs.page = Some(Extraction {
                    facts: crate::extract::PageFacts {
                        text_chars: 3,
                        scripts: 2,
                        ..Default::default()
                    },
                    ..Default::default()
                });
                run(&obs, Some(&cert))
            },
        ),
        (
            UnknownReason::CertUnreachable,
            failed(|o| {
                o.page = obs_ok("nobody.test", "京ICP备12345678号-1").page;
                o.cert = Some(cert_fetch("/cert/bazs.cert", 403, None));
            }),
        ),
        (
            // A 200 whose body never finished arriving.
            UnknownReason::Deadline,
            failed(|o| {
                o.homepage = vec![record(
                    "https://nobody.test/",
                    Some(200),
                    Some(FetchErrorKind::Deadline),
                )];
            }),
        ),
        (
            UnknownReason::Other,
            failed(|o| {
                o.homepage.clear();
                o.homepage_used = None;
            }),
        ),
    ];
    let mut seen = std::collections::BTreeSet::new();
    for (want, a) in cases {
        assert_eq!(a.verdict, Verdict::Unknown(want), "{want:?}");
        assert!(a.findings.is_empty(), "{want:?}: {:?}", a.findings);
        seen.insert(want);
    }
    assert_eq!(
        seen.len(),
        UnknownReason::ALL.len(),
        "every reason is covered"
    );
}

#[test]
fn a_failed_https_with_a_working_http_fallback_is_judged() {
    let mut obs = obs_ok("nobody.test", "京ICP备12345678号-1");
    obs.homepage = vec![
        record("https://nobody.test/", None, Some(FetchErrorKind::Tls)),
        record("http://nobody.test/", Some(200), None),
    ];
    obs.homepage_used = Some(1);
    obs.cert = Some(cert_fetch("/cert/bazs.cert", 404, None));
    assert_eq!(run(&obs, None).verdict, Verdict::Unfiled);
}

#[test]
fn assess_verifies_the_body_with_the_snapshot_keyring() {
    use std::cell::RefCell;
    let (obs, _) = ok_example();
    let snap = snapshot();
    let calls = RefCell::new(Vec::new());
    let a = assess(
        &obs,
        &snap,
        &policies(),
        NOW,
        |body, _keys, host, view, now| {
            calls
                .borrow_mut()
                .push((body.to_vec(), host.to_string(), now));
            assert!(view.filing_facts(&num("京ICP备12345678号-1")).is_some());
            CertVerdict::Expired {
                payload: payload("京ICP备12345678号-1", &["example.com"], 2),
            }
        },
    );
    assert_eq!(
        calls.into_inner(),
        vec![(b"cert".to_vec(), "www.example.com".to_string(), NOW)]
    );
    assert_eq!(a.codes(), vec![FindingCode::CertExpired]);
    // No body: no verification.
    let mut obs = obs;
    obs.cert = Some(cert_fetch("/cert/bazs.cert", 404, None));
    let a = assess(&obs, &snap, &policies(), NOW, |_, _, _, _, _| {
        panic!("verify must not be called without a body")
    });
    assert_eq!(a.codes(), vec![FindingCode::CertMissing]);
}

#[test]
fn codes_are_stable() {
    for (i, c) in FindingCode::ALL.iter().enumerate() {
        assert_eq!(*c as usize, i);
        assert_eq!(FindingCode::parse(c.as_str()), Some(*c));
        assert_eq!(
            serde_json::to_value(c).unwrap(),
            serde_json::Value::String(c.as_str().into())
        );
    }
    for &r in UnknownReason::ALL {
        assert_eq!(
            serde_json::to_value(r).unwrap(),
            serde_json::Value::String(r.as_str().into())
        );
    }
}

/// No silent pass: a certificate path that answered neither 200 nor 404 leaves a clean site
/// `unknown (cert_unreachable)`, on filed and unfiled hosts alike; other findings still make
/// a site `noncompliant`.
#[test]
fn an_unreadable_certificate_is_never_a_pass() {
    type Edit = Box<dyn Fn(&mut Observation)>;
    let unreachable: Vec<Edit> = vec![
        Box::new(|o| o.cert = Some(cert_fetch("/cert/bazs.cert", 403, None))),
        Box::new(|o| o.cert = Some(cert_fetch("/cert/bazs.cert", 503, None))),
        Box::new(|o| o.cert = Some(cert_fetch("/cert/bazs.cert", 401, None))),
        Box::new(|o| o.cert = Some(cert_fetch("/cert/bazs.cert", 302, None))),
        Box::new(|o| {
            let mut c = cert_fetch("/cert/bazs.cert", 200, None);
            c.fetch.error = Some(FetchError {
                kind: FetchErrorKind::Reset,
                message: "reset".into(),
            });
            o.cert = Some(c);
        }),
        Box::new(|o| {
            let mut c = cert_fetch("/cert/bazs.cert", 200, None);
            c.fetch.status = None;
            c.fetch.error = Some(FetchError {
                kind: FetchErrorKind::Deadline,
                message: "slow".into(),
            });
            o.cert = Some(c);
        }),
        Box::new(|o| o.cert = None),
    ];
    for (i, edit) in unreachable.iter().enumerate() {
        // Filed, clean footer.
        let (mut obs, cert) = ok_example();
        edit(&mut obs);
        let a = run(&obs, Some(&cert));
        assert_eq!(
            a.verdict,
            Verdict::Unknown(UnknownReason::CertUnreachable),
            "case {i}"
        );
        assert!(a.findings.is_empty(), "case {i}");
        // Filed, footer without number: the finding stands.
        obs.page.as_mut().unwrap().icp.clear();
        let a = run(&obs, Some(&cert));
        assert_eq!(a.verdict, Verdict::Noncompliant, "case {i}");
        assert_eq!(a.codes(), vec![FindingCode::NumberMissing], "case {i}");
        // Unfiled host: never `unfiled` when the certificate could not be read.
        let mut obs = obs_ok("nobody.test", "京ICP备12345678号-1");
        edit(&mut obs);
        let a = run(&obs, None);
        assert_eq!(
            a.verdict,
            Verdict::Unknown(UnknownReason::CertUnreachable),
            "case {i}"
        );
    }
    // An oversized certificate is malformed: a finding, not a pass.
    let (mut obs, _) = ok_example();
    let mut c = cert_fetch("/cert/bazs.cert", 200, None);
    c.fetch.error = Some(FetchError {
        kind: FetchErrorKind::BodyTooLarge,
        message: "big".into(),
    });
    obs.cert = Some(c.clone());
    let a = run(&obs, None);
    assert_eq!(a.verdict, Verdict::Noncompliant);
    assert_eq!(a.codes(), vec![FindingCode::CertMalformed]);
    // …but, not read in full, it cannot settle that a host is unfiled.
    let mut obs = obs_ok("nobody.test", "京ICP备12345678号-1");
    obs.cert = Some(c);
    assert_eq!(
        run(&obs, None).verdict,
        Verdict::Unknown(UnknownReason::CertUnreachable)
    );
}

fn page_with(facts: crate::extract::PageFacts, icp: Vec<IcpMention>) -> Option<Extraction> {
    Some(Extraction {
        icp,
        facts,
        ..Default::default()
    })
}

#[test]
fn script_built_pages_are_not_accused_until_rendered() {
    use crate::extract::{PageFacts, Via};
    use crate::observation::{RenderRecord, RenderStatus};
    let shell = PageFacts {
        text_chars: 12,
        scripts: 3,
        ..Default::default()
    };
    let (mut obs, cert) = ok_example();
    obs.page = page_with(shell.clone(), vec![]);
    for status in [
        None,
        Some(RenderStatus::Off),
        Some(RenderStatus::Unavailable),
        Some(RenderStatus::Timeout),
        Some(RenderStatus::Failed),
    ] {
        obs.render = status.map(|status| RenderRecord {
            status,
            url: "https://www.example.com/".into(),
            requests: 1,
            blocked: 0,
            elapsed_ms: 5,
            error: None,
        });
        let a = run(&obs, Some(&cert));
        assert_eq!(
            a.verdict,
            Verdict::Unknown(UnknownReason::NeedsRender),
            "{status:?}"
        );
    }
    // Rendered and still no number: now it is missing.
    obs.render = Some(RenderRecord {
        status: RenderStatus::Rendered,
        url: "https://www.example.com/".into(),
        requests: 4,
        blocked: 0,
        elapsed_ms: 300,
        error: None,
    });
    assert_eq!(
        run(&obs, Some(&cert)).codes(),
        vec![FindingCode::NumberMissing]
    );
    // Rendered with the number: compliant.
    let mut m = mention("京ICP备12345678号-1", true, Some("beian.miit.gov.cn"), true);
    m.via = Via::Rendered;
    obs.page = page_with(shell.clone(), vec![m]);
    assert_eq!(run(&obs, Some(&cert)).verdict, Verdict::Compliant);
    // A number shown only in <template> content counts as shown, unrendered.
    let mut m = mention("京ICP备12345678号-1", true, Some("beian.miit.gov.cn"), true);
    m.via = Via::Template;
    obs.render = None;
    obs.page = page_with(
        PageFacts {
            template_text: true,
            ..shell.clone()
        },
        vec![m],
    );
    assert_eq!(run(&obs, Some(&cert)).verdict, Verdict::Compliant);
    // Other findings still make a script shell noncompliant.
    let (mut obs, _) = ok_example();
    obs.page = page_with(shell, vec![]);
    obs.cert = Some(cert_fetch("/cert/bazs.cert", 404, None));
    let a = run(&obs, None);
    assert_eq!(a.verdict, Verdict::Noncompliant);
    assert_eq!(a.codes(), vec![FindingCode::CertMissing]);
}

#[test]
fn blank_and_challenge_pages_are_unknown() {
    use crate::extract::PageFacts;
    let (mut obs, cert) = ok_example();
    obs.page = page_with(PageFacts::default(), vec![]);
    assert_eq!(
        run(&obs, Some(&cert)).verdict,
        Verdict::Unknown(UnknownReason::Challenge)
    );
    obs.page = page_with(
        PageFacts {
            text_chars: 300,
            scripts: 1,
            challenge: Some("aliyun_waf".into()),
            ..Default::default()
        },
        vec![],
    );
    assert_eq!(
        run(&obs, Some(&cert)).verdict,
        Verdict::Unknown(UnknownReason::Challenge)
    );
    // A plain page with text and no number is missing its number.
    obs.page = page_with(
        PageFacts {
            text_chars: 300,
            ..Default::default()
        },
        vec![],
    );
    assert_eq!(
        run(&obs, Some(&cert)).codes(),
        vec![FindingCode::NumberMissing]
    );
}

#[test]
fn confirmations_count_consecutive_scans_and_unknown_carries_them() {
    // unfiled asks for 2 confirmations nationally.
    let mut obs = obs_ok("nobody.test", "京ICP备12345678号-1");
    obs.cert = Some(cert_fetch("/cert/bazs.cert", 404, None));
    let mut first = run(&obs, None);
    first.confirm(None);
    let f = &first.findings[0];
    assert_eq!(f.code, FindingCode::Unfiled);
    assert_eq!((f.seen, f.is_confirmed()), (1, false));
    assert_eq!(f.confirmation(), "pending 1/2");
    // number_mismatch (the shown number is no filing of this host) needs one.
    assert!(
        first.has(FindingCode::NumberMismatch) && first.findings.iter().any(Finding::is_confirmed)
    );
    let streaks = first.streaks(None);
    assert_eq!(streaks.get(&FindingCode::Unfiled), Some(&1));

    // The next scan could not check the site: the streak is carried, not reset.
    let down = failed(fail_with(FetchErrorKind::Connect));
    let carried = down.streaks(Some(&streaks));
    assert_eq!(carried, streaks);

    // Seen again: confirmed.
    let mut second = run(&obs, None);
    second.confirm(Some(&carried));
    assert_eq!(second.findings[0].seen, 2);
    assert!(second.findings[0].is_confirmed());
    assert_eq!(second.findings[0].confirmation(), "confirmed");

    // Gone in a judged scan: the streak resets.
    let (clean, cert) = ok_example();
    let mut a = run(&clean, Some(&cert));
    a.confirm(Some(&second.streaks(None)));
    assert!(a.streaks(None).is_empty());
    let mut again = run(&obs, None);
    again.confirm(Some(&a.streaks(None)));
    assert_eq!(again.findings[0].seen, 1);
}

#[test]
fn a_licence_shown_without_its_prefix_is_the_filed_one() {
    let parse = |s: &str| crate::number::LicenceNumber::parse(s).expect("licence");
    assert!(super::same_licence(
        &parse("B2-20090317"),
        &parse("浙B2-20090317")
    ));
    assert!(super::same_licence(
        &parse("合字B1.B2-20130004"),
        &parse("B1.B2-20130004")
    ));
    assert!(!super::same_licence(
        &parse("B2-20090317"),
        &parse("浙B1-20090317")
    ));
    assert!(!super::same_licence(
        &parse("B2-20090317"),
        &parse("浙ICP证090317号")
    ));
    assert!(super::same_licence(
        &parse("黔B2-20090317"),
        &parse("贵B2-20090317")
    ));
}
