//! One test (at least) per workflow rule; each fails if its rule is broken.

use super::*;

const NOW: i64 = 1_700_000_000;

fn subject(id: SubjectId, province: char) -> Subject {
    Subject {
        id,
        name: "北京示例科技有限公司".into(),
        nature: "企业".into(),
        id_type: "统一社会信用代码".into(),
        id_number: format!("ID{id}"),
        province,
        address: "北京市海淀区".into(),
        contact: Contact::default(),
        owner: format!("owner{id}"),
        number: None,
        last_website_index: 0,
        warnings: vec![],
        created_at: NOW,
    }
}

fn d(s: &str) -> Domain {
    Domain::parse(s).unwrap()
}

fn submission(domains: &[&str], providers: &[&str]) -> Submission {
    Submission {
        kind: ServiceKind::Website,
        name: "示例网".into(),
        homepage: "https://example.com/".into(),
        domains: domains.iter().map(|x| d(x)).collect(),
        ips: vec![],
        providers: providers.iter().map(|p| p.to_string()).collect(),
        access_method: "虚拟主机".into(),
        server_placement: None,
        categories: vec![],
        operating_licence: None,
        app_id: None,
        bulletin_board: false,
    }
}

fn state(filing: Filing, subject: Subject) -> State {
    State {
        filing,
        subject,
        domain_holders: BTreeMap::new(),
        typed_number_holder: None,
        fresh_subject_number: Some(FilingNumber::subject('京', "20000001").unwrap()),
    }
}

fn step(st: &mut State, ev: Event, actor: &Actor) -> Result<Transition, WorkflowError> {
    let t = apply(st, &ev, actor, NOW)?;
    st.filing = t.filing.clone();
    st.subject = t.subject.clone();
    Ok(t)
}

/// A filing submitted by an import ISP, verified by every provider, awaiting review.
fn awaiting_review(providers: &[&str]) -> State {
    let s = subject(1, '京');
    let f = submit(
        10,
        submission(&["example.com", "example.net"], providers),
        &s,
        &BTreeMap::new(),
        &Actor::isp(providers[0]),
        NOW,
    )
    .unwrap();
    let mut st = state(f, s);
    for p in providers {
        step(
            &mut st,
            Event::VerifyAccess {
                provider: p.to_string(),
            },
            &Actor::isp(p),
        )
        .unwrap();
    }
    st
}

fn active() -> State {
    let mut st = awaiting_review(&["甲"]);
    step(
        &mut st,
        Event::Approve {
            mode: ReviewMode::Automatic,
        },
        &Actor::bureau('京'),
    )
    .unwrap();
    st
}

#[test]
fn rule1_one_of_two_providers_is_not_enough() {
    let s = subject(1, '京');
    let f = submit(
        10,
        submission(&["example.com"], &["甲", "乙"]),
        &s,
        &BTreeMap::new(),
        &Actor::isp("甲"),
        NOW,
    )
    .unwrap();
    let mut st = state(f, s);
    step(
        &mut st,
        Event::VerifyAccess {
            provider: "甲".into(),
        },
        &Actor::isp("甲"),
    )
    .unwrap();
    assert_eq!(st.filing.status, Status::AwaitingAccessVerification);
    assert!(
        !st.filing.in_review_queue(),
        "the bureau must not see it yet"
    );
    let e = step(
        &mut st,
        Event::Approve {
            mode: ReviewMode::Automatic,
        },
        &Actor::bureau('京'),
    )
    .unwrap_err();
    assert_eq!(e.rule, Rule::AccessVerification);
    // A provider cannot verify for another.
    let e = step(
        &mut st,
        Event::VerifyAccess {
            provider: "乙".into(),
        },
        &Actor::isp("甲"),
    )
    .unwrap_err();
    assert_eq!(e.rule, Rule::Permission);
    step(
        &mut st,
        Event::VerifyAccess {
            provider: "乙".into(),
        },
        &Actor::isp("乙"),
    )
    .unwrap();
    assert_eq!(st.filing.status, Status::AwaitingReview);
    assert!(st.filing.in_review_queue());
}

#[test]
fn rule2_pre_approval_documents_before_review() {
    let s = subject(1, '京');
    let mut sub = submission(&["news.cn.com"], &["甲"]);
    sub.domains = vec![d("example.com")];
    sub.categories = vec![CategoryEntry {
        category: "新闻".into(),
        pre_approval: true,
        document: None,
        check: None,
    }];
    let f = submit(10, sub, &s, &BTreeMap::new(), &Actor::isp("甲"), NOW).unwrap();
    let mut st = state(f, s);
    step(
        &mut st,
        Event::VerifyAccess {
            provider: "甲".into(),
        },
        &Actor::isp("甲"),
    )
    .unwrap();
    let approve = Event::Approve {
        mode: ReviewMode::Automatic,
    };
    let e = step(&mut st, approve.clone(), &Actor::bureau('京')).unwrap_err();
    assert_eq!(e.rule, Rule::PreApproval);
    assert!(e.reason.contains("needs its pre-approval document"), "{e}");
    // Attached late, while the filing is under review: no rejection needed.
    let attach = |doc: &str| Event::AttachPreApproval {
        category: "新闻".into(),
        document: doc.into(),
    };
    step(&mut st, attach("京新闻审[2024]1号"), &Actor::icp("owner1")).unwrap();
    assert_eq!(st.filing.status, Status::AwaitingReview);
    let e = step(&mut st, approve.clone(), &Actor::bureau('京')).unwrap_err();
    assert!(e.reason.contains("waits for a pre-approval user"), "{e}");
    // Only a pre-approval user (or MIIT) checks documents; the filer and the bureau do not.
    let check = |refused: Option<&str>| Event::CheckPreApproval {
        category: "新闻".into(),
        refused: refused.map(str::to_string),
    };
    for who in [Actor::icp("owner1"), Actor::bureau('京'), Actor::isp("甲")] {
        let e = step(&mut st, check(None), &who).unwrap_err();
        assert_eq!(e.rule, Rule::Permission, "{who}");
    }
    // Refused: the bureau still cannot approve; a new document clears the refusal.
    step(&mut st, check(Some("文号不存在")), &Actor::PreApproval).unwrap();
    let e = step(&mut st, approve.clone(), &Actor::bureau('京')).unwrap_err();
    assert!(e.reason.contains("文号不存在"), "{e}");
    step(&mut st, attach("京新闻审[2024]2号"), &Actor::icp("owner1")).unwrap();
    step(&mut st, check(None), &Actor::PreApproval).unwrap();
    step(&mut st, approve, &Actor::bureau('京')).unwrap();
    assert_eq!(st.filing.status, Status::Active);
    // After approval nothing is attached or checked any more.
    let e = step(&mut st, attach("x"), &Actor::icp("owner1")).unwrap_err();
    assert_eq!(e.rule, Rule::State);
    let e = step(&mut st, check(None), &Actor::PreApproval).unwrap_err();
    assert_eq!(e.rule, Rule::State);
}

#[test]
fn rule3_automatic_review_always_generates_the_number() {
    let mut st = awaiting_review(&["甲"]);
    let t = step(
        &mut st,
        Event::Approve {
            mode: ReviewMode::Automatic,
        },
        &Actor::bureau('京'),
    )
    .unwrap();
    assert_eq!(
        st.filing.number.as_ref().unwrap().to_string(),
        "京ICP备20000001号-1"
    );
    assert_eq!(
        st.subject.number.as_ref().unwrap().to_string(),
        "京ICP备20000001号"
    );
    assert!(t.effects.contains(&Effect::IssueCertificate { serial: 1 }));
    assert_eq!(st.filing.cert_serial, 1);
}

#[test]
fn rule3_manual_review_takes_a_typed_number_and_numbers_websites_in_order() {
    let mut st = awaiting_review(&["甲"]);
    let typed = FilingNumber::parse("京ICP备12345678号").unwrap();
    step(
        &mut st,
        Event::Approve {
            mode: ReviewMode::Manual {
                number: Some(typed),
            },
        },
        &Actor::bureau('京'),
    )
    .unwrap();
    assert_eq!(
        st.filing.number.as_ref().unwrap().to_string(),
        "京ICP备12345678号-1"
    );
    // A second website of the same subject becomes -2, even if the fresh number differs.
    let subj = st.subject.clone();
    let f2 = submit(
        11,
        submission(&["second.com"], &["甲"]),
        &subj,
        &BTreeMap::new(),
        &Actor::isp("甲"),
        NOW,
    )
    .unwrap();
    let mut st2 = state(f2, subj);
    step(
        &mut st2,
        Event::VerifyAccess {
            provider: "甲".into(),
        },
        &Actor::isp("甲"),
    )
    .unwrap();
    step(
        &mut st2,
        Event::Approve {
            mode: ReviewMode::Manual { number: None },
        },
        &Actor::bureau('京'),
    )
    .unwrap();
    assert_eq!(
        st2.filing.number.as_ref().unwrap().to_string(),
        "京ICP备12345678号-2"
    );
    // A number held by another subject is refused.
    let mut st3 = awaiting_review(&["甲"]);
    st3.typed_number_holder = Some(99);
    let e = step(
        &mut st3,
        Event::Approve {
            mode: ReviewMode::Manual {
                number: Some(FilingNumber::parse("京ICP备12345678号").unwrap()),
            },
        },
        &Actor::bureau('京'),
    )
    .unwrap_err();
    assert_eq!(e.rule, Rule::Review);
}

#[test]
fn rule3_rejection_needs_a_reason_and_returns_it() {
    let mut st = awaiting_review(&["甲"]);
    let e = step(
        &mut st,
        Event::Reject { reason: " ".into() },
        &Actor::bureau('京'),
    )
    .unwrap_err();
    assert_eq!(e.rule, Rule::Review);
    step(
        &mut st,
        Event::Reject {
            reason: "主体信息不实".into(),
        },
        &Actor::bureau('京'),
    )
    .unwrap();
    assert_eq!(st.filing.status, Status::Rejected);
    assert_eq!(st.filing.rejection.as_deref(), Some("主体信息不实"));
    assert!(st.filing.number.is_none());
}

#[test]
fn bureau_acts_only_in_its_own_province() {
    let mut st = awaiting_review(&["甲"]);
    let e = step(
        &mut st,
        Event::Approve {
            mode: ReviewMode::Automatic,
        },
        &Actor::bureau('沪'),
    )
    .unwrap_err();
    assert_eq!(e.rule, Rule::Permission);
    let e = step(
        &mut st,
        Event::Approve {
            mode: ReviewMode::Automatic,
        },
        &Actor::Miit,
    )
    .unwrap_err();
    assert_eq!(e.rule, Rule::Permission);
    let mut act = active();
    let e = step(
        &mut act,
        Event::Revoke {
            reason: "x".into(),
            false_information: false,
        },
        &Actor::bureau('粤'),
    )
    .unwrap_err();
    assert_eq!(e.rule, Rule::Permission);
}

#[test]
fn rule4_filer_cannot_modify_while_under_review() {
    let mut st = awaiting_review(&["甲"]);
    let e = step(
        &mut st,
        Event::RequestChange {
            add: vec![d("more.com")],
            remove: vec![],
            details: Default::default(),
        },
        &Actor::icp("owner1"),
    )
    .unwrap_err();
    assert_eq!(e.rule, Rule::UnderReview);
    // A pending change is also "under review".
    let mut act = active();
    step(
        &mut act,
        Event::RequestChange {
            add: vec![d("more.com")],
            remove: vec![],
            details: Default::default(),
        },
        &Actor::icp("owner1"),
    )
    .unwrap();
    let e = step(
        &mut act,
        Event::RequestChange {
            add: vec![d("other.com")],
            remove: vec![],
            details: Default::default(),
        },
        &Actor::icp("owner1"),
    )
    .unwrap_err();
    assert_eq!(e.rule, Rule::UnderReview);
}

#[test]
fn rule4_old_certificate_stays_valid_until_the_change_is_approved() {
    let mut st = active();
    let number = st.filing.number.clone();
    assert_eq!(st.filing.cert_serial, 1);
    step(
        &mut st,
        Event::RequestChange {
            add: vec![d("more.com")],
            remove: vec![d("example.net")],
            details: Default::default(),
        },
        &Actor::icp("owner1"),
    )
    .unwrap();
    // Still active, same serial, same domains: the old certificate verifies.
    assert_eq!(st.filing.status, Status::Active);
    assert_eq!(st.filing.cert_serial, 1);
    assert_eq!(st.filing.domains, vec![d("example.com"), d("example.net")]);
    let t = step(
        &mut st,
        Event::Approve {
            mode: ReviewMode::Automatic,
        },
        &Actor::bureau('京'),
    )
    .unwrap();
    assert!(t.effects.contains(&Effect::IssueCertificate { serial: 2 }));
    assert_eq!(
        st.filing.cert_serial, 2,
        "the new certificate supersedes the old one"
    );
    assert_eq!(st.filing.domains, vec![d("example.com"), d("more.com")]);
    assert_eq!(st.filing.number, number, "a change keeps the number");
}

#[test]
fn rule5_annual_review_due_one_calendar_year_after_last_approval() {
    let st = active();
    let due = one_year_after(NOW);
    assert_eq!(st.filing.expires_at, Some(due));
    assert!(!st.filing.annual_review_due(due - 1));
    assert!(st.filing.annual_review_due(due));
    assert_eq!(st.filing.status_label_at(due - 1), "active");
    assert_eq!(st.filing.status_label_at(due), "annual_review_overdue");
    // Calendar years, not 365 days: across a leap day, and from a leap day.
    let utc = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp();
    assert_eq!(
        one_year_after(utc("2023-06-01T08:00:00Z")),
        utc("2024-06-01T08:00:00Z")
    );
    assert_eq!(
        one_year_after(utc("2024-02-29T12:00:00Z")),
        utc("2025-02-28T12:00:00Z")
    );
}

#[test]
fn rule5_the_filer_asks_for_its_annual_review_and_the_bureau_confirms_it() {
    let mut st = active();
    let due = st.filing.expires_at.unwrap();
    let icp = Actor::icp("owner1");
    // Not yet: the window opens 60 days before the due date.
    let e = apply(&st, &Event::RequestRenewal, &icp, NOW + 10).unwrap_err();
    assert_eq!(e.rule, Rule::State);
    // Only the filer asks.
    let late = due + 86_400;
    assert!(apply(&st, &Event::RequestRenewal, &Actor::bureau('京'), late).is_err());
    let t = apply(&st, &Event::RequestRenewal, &icp, late).unwrap();
    st.filing = t.filing;
    assert_eq!(st.filing.status_label(), "renewal_under_review");
    assert!(st.filing.in_review_queue());
    // Another bureau may not confirm; the filing's bureau does: due a year from now, and a
    // new certificate.
    assert!(apply(
        &st,
        &Event::Approve {
            mode: ReviewMode::Automatic
        },
        &Actor::bureau('沪'),
        late
    )
    .is_err());
    let serial = st.filing.cert_serial;
    let t = apply(
        &st,
        &Event::Approve {
            mode: ReviewMode::Automatic,
        },
        &Actor::bureau('京'),
        late,
    )
    .unwrap();
    assert_eq!(t.filing.expires_at, Some(one_year_after(late)));
    assert!(t.filing.renewal.is_none());
    assert_eq!(t.filing.cert_serial, serial + 1);
    assert!(t
        .effects
        .contains(&Effect::IssueCertificate { serial: serial + 1 }));
    assert_eq!(t.filing.status_label_at(late), "active");
    // A rejected renewal leaves the filing overdue.
    let mut st2 = active();
    st2.filing = apply(&st2, &Event::RequestRenewal, &icp, late)
        .unwrap()
        .filing;
    let t = apply(
        &st2,
        &Event::Reject {
            reason: "材料不全".into(),
        },
        &Actor::bureau('京'),
        late,
    )
    .unwrap();
    assert_eq!(t.filing.status_label_at(late), "annual_review_overdue");
}

#[test]
fn rule6_nobody_may_withdraw_their_own_request() {
    let mut st = active();
    let icp = Actor::icp("owner1");
    step(
        &mut st,
        Event::RequestCancellation {
            reason: "停止运营".into(),
        },
        &icp,
    )
    .unwrap();
    let e = step(&mut st, Event::WithdrawCancellation, &icp).unwrap_err();
    assert_eq!(e.rule, Rule::Cancellation);
    // MIIT may not withdraw an ICP user's request; the bureau may.
    let e = step(&mut st, Event::WithdrawCancellation, &Actor::Miit).unwrap_err();
    assert_eq!(e.rule, Rule::Cancellation);
    step(&mut st, Event::WithdrawCancellation, &Actor::bureau('京')).unwrap();
    assert!(st.filing.cancellation.is_none());
    // A bureau's own request: the bureau may not withdraw it, MIIT may.
    step(
        &mut st,
        Event::RequestCancellation {
            reason: "核查不实".into(),
        },
        &Actor::bureau('京'),
    )
    .unwrap();
    let e = step(&mut st, Event::WithdrawCancellation, &Actor::bureau('京')).unwrap_err();
    assert_eq!(e.rule, Rule::Cancellation);
    step(&mut st, Event::WithdrawCancellation, &Actor::Miit).unwrap();
}

#[test]
fn rule6_who_may_request_and_approval_cancels() {
    let mut st = active();
    let e = step(
        &mut st,
        Event::RequestCancellation { reason: "x".into() },
        &Actor::icp("someone_else"),
    )
    .unwrap_err();
    assert_eq!(e.rule, Rule::Permission);
    let not_import = Actor::Isp {
        name: "甲".into(),
        import_authorised: false,
    };
    let e = step(
        &mut st,
        Event::RequestCancellation { reason: "x".into() },
        &not_import,
    )
    .unwrap_err();
    assert_eq!(e.rule, Rule::Permission);
    step(
        &mut st,
        Event::RequestCancellation {
            reason: "停止接入".into(),
        },
        &Actor::isp("甲"),
    )
    .unwrap();
    assert_eq!(st.filing.status_label(), "cancellation_requested");
    step(
        &mut st,
        Event::Approve {
            mode: ReviewMode::Automatic,
        },
        &Actor::bureau('京'),
    )
    .unwrap();
    assert_eq!(st.filing.status, Status::Cancelled);
}

#[test]
fn rule6_direct_revocation_by_bureau_or_miit() {
    let mut st = active();
    let e = step(
        &mut st,
        Event::Revoke {
            reason: "x".into(),
            false_information: false,
        },
        &Actor::icp("owner1"),
    )
    .unwrap_err();
    assert_eq!(e.rule, Rule::Permission);
    step(
        &mut st,
        Event::Revoke {
            reason: "虚假信息".into(),
            false_information: false,
        },
        &Actor::Miit,
    )
    .unwrap();
    assert_eq!(st.filing.status, Status::Revoked);
    let mut st2 = active();
    step(
        &mut st2,
        Event::Revoke {
            reason: "虚假信息".into(),
            false_information: false,
        },
        &Actor::bureau('京'),
    )
    .unwrap();
    assert_eq!(st2.filing.status, Status::Revoked);
}

#[test]
fn rule7_provider_cancels_access_and_empty_shell() {
    let mut st = awaiting_review(&["甲", "乙"]);
    step(
        &mut st,
        Event::Approve {
            mode: ReviewMode::Automatic,
        },
        &Actor::bureau('京'),
    )
    .unwrap();
    let e = step(
        &mut st,
        Event::CancelAccess {
            provider: "乙".into(),
        },
        &Actor::isp("甲"),
    )
    .unwrap_err();
    assert_eq!(e.rule, Rule::Permission);
    let t = step(
        &mut st,
        Event::CancelAccess {
            provider: "甲".into(),
        },
        &Actor::isp("甲"),
    )
    .unwrap();
    assert!(!t.effects.contains(&Effect::EmptyShell));
    assert!(!st.filing.is_empty_shell());
    let t = step(
        &mut st,
        Event::CancelAccess {
            provider: "乙".into(),
        },
        &Actor::isp("乙"),
    )
    .unwrap();
    assert!(t.effects.contains(&Effect::EmptyShell));
    assert!(st.filing.is_empty_shell());
    // Changing provider: the new one adds and must verify.
    step(
        &mut st,
        Event::AddProvider {
            provider: "丙".into(),
        },
        &Actor::icp("owner1"),
    )
    .unwrap();
    assert!(!st.filing.is_empty_shell());
    assert!(!st.filing.providers[0].verified);
}

#[test]
fn rule7_no_provider_left_before_approval_needs_a_new_provider() {
    let s = subject(1, '京');
    let f = submit(
        10,
        submission(&["example.com"], &["甲"]),
        &s,
        &BTreeMap::new(),
        &Actor::isp("甲"),
        NOW,
    )
    .unwrap();
    let mut st = state(f, s);
    step(
        &mut st,
        Event::CancelAccess {
            provider: "甲".into(),
        },
        &Actor::isp("甲"),
    )
    .unwrap();
    assert_eq!(st.filing.status, Status::Rejected);
    let e = step(&mut st, Event::Resubmit, &Actor::icp("owner1")).unwrap_err();
    assert_eq!(e.rule, Rule::Access);
}

#[test]
fn rule8_duplicate_domain_of_another_subject_is_refused() {
    let s = subject(1, '京');
    let mut holders = BTreeMap::new();
    holders.insert(
        d("example.com"),
        DomainHolder {
            filing_id: 5,
            subject_id: 2,
        },
    );
    let e = submit(
        10,
        submission(&["example.com"], &["甲"]),
        &s,
        &holders,
        &Actor::isp("甲"),
        NOW,
    )
    .unwrap_err();
    assert_eq!(e.rule, Rule::DuplicateDomain);
    // And through a change.
    let mut st = active();
    st.domain_holders = holders;
    let e = step(
        &mut st,
        Event::RequestChange {
            add: vec![d("example.com")],
            remove: vec![],
            details: Default::default(),
        },
        &Actor::icp("owner1"),
    );
    // example.com is already in this filing (Data) — use a domain held elsewhere instead.
    assert!(e.is_err());
    st.domain_holders.insert(
        d("taken.com"),
        DomainHolder {
            filing_id: 5,
            subject_id: 2,
        },
    );
    let e = step(
        &mut st,
        Event::RequestChange {
            add: vec![d("taken.com")],
            remove: vec![],
            details: Default::default(),
        },
        &Actor::icp("owner1"),
    )
    .unwrap_err();
    assert_eq!(e.rule, Rule::DuplicateDomain);
}

#[test]
fn submission_needs_a_provider_and_a_filer() {
    let s = subject(1, '京');
    let e = submit(
        10,
        submission(&["example.com"], &[]),
        &s,
        &BTreeMap::new(),
        &Actor::icp("owner1"),
        NOW,
    )
    .unwrap_err();
    assert_eq!(e.rule, Rule::Data);
    let e = submit(
        10,
        submission(&["example.com"], &["甲"]),
        &s,
        &BTreeMap::new(),
        &Actor::isp("乙"),
        NOW,
    )
    .unwrap_err();
    assert_eq!(e.rule, Rule::Permission);
    assert!(submit(
        10,
        submission(&["example.com"], &["甲"]),
        &s,
        &BTreeMap::new(),
        &Actor::icp("owner1"),
        NOW
    )
    .is_ok());
}
