//! Account operations over the registry store: ICP self-registration (a code to the mobile
//! and one to the email, both needed to activate), login with a challenge code, sessions
//! (opaque random tokens, stored by their SHA-256, revocable), password reset by one-time
//! token, top-down creation of management users, import authorisation of ISPs, contacts, the
//! outbox every message lands in when no SMTP server or SMS webhook is configured, and the
//! filers' notices (approval, re-issued certificates) waiting for delivery.
//!
//! Everything a restart must not lose lives in the store as audited generic records: users,
//! contacts, the outbox, and — each with its expiry, refused once expired and purged lazily
//! on access and by [`Accounts::purge_expired`] — sessions, pending registrations, login
//! challenges and reset tokens. Only the brute-force failure counters live in memory. Time is
//! passed in as unix seconds. Each kind of record is declared here as a typed store record
//! (`Sessions`, `OutboxMessages`, `Notices`, …; see [`crate::registry::store::records`]).

use std::collections::HashMap;
use std::sync::Mutex;

use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::Digest;

use super::{
    challenge_valid, generate_password, hash_password, validate_password, validate_username,
    verify_password, Actor, CredentialError, Role, UserRecord, CHALLENGE_TTL_SECS,
};
use crate::registry::store::records::{JsonKind, RecordKind, TypedRecords, TypedRecordsTxn};
use crate::registry::store::{AuditMeta, RegistryRead, RegistryStore, RegistryTxn, StoreError};

/// Record kinds in the store.
pub const KIND_SESSION: &str = "session";
pub const KIND_OUTBOX: &str = "outbox";
/// Notices to filers (approval, re-issued certificates) written by the registry in the same
/// transaction as the change; `serve` delivers them (or moves them to the outbox).
pub const KIND_NOTICE: &str = "notice";
pub const KIND_CONTACT: &str = "contact";
/// Self-registrations waiting for their codes (by username), login challenges and password
/// reset tokens (by the SHA-256 of the id or token). Each carries its `expires_at`.
pub const KIND_PENDING: &str = "pending_registration";
pub const KIND_CHALLENGE: &str = "login_challenge";
pub const KIND_RESET: &str = "password_reset";
/// A user's pending change of its own contact (codes sent to the new addresses).
pub const KIND_CONTACT_CHANGE: &str = "contact_change";
/// How many times a pending registration's codes may be sent again.
pub const MAX_REGISTRATION_RESENDS: u32 = 3;
/// Present for ISP users a bureau authorised for import. (The actor's text form, which is how
/// user records store it, does not carry the authorisation.)
pub const KIND_IMPORT_AUTH: &str = "import_authorisation";

/// Sessions last this long (seconds) unless revoked.
pub const SESSION_TTL_SECS: i64 = 12 * 3600;
/// Pending registrations and reset tokens expire after this many seconds.
pub const REGISTRATION_TTL_SECS: i64 = 30 * 60;
pub const RESET_TTL_SECS: i64 = 15 * 60;
/// Wrong codes tolerated per pending registration or challenge before it is dropped.
pub const MAX_CODE_ATTEMPTS: u32 = 5;
/// Failed logins tolerated per account and per client within [`FAILURE_WINDOW_SECS`].
pub const MAX_FAILURES_PER_ACCOUNT: u32 = 5;
pub const MAX_FAILURES_PER_CLIENT: u32 = 20;
pub const FAILURE_WINDOW_SECS: i64 = 15 * 60;

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error(transparent)]
    Credential(#[from] CredentialError),
    #[error("{field}: {reason}")]
    Input { field: String, reason: String },
    #[error("username {username:?} is taken")]
    Taken { username: String },
    #[error("the code is wrong or has expired")]
    InvalidCode,
    #[error("invalid credentials")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("too many failed attempts; retry in {retry_after_secs}s")]
    RateLimited { retry_after_secs: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn input(field: &str, reason: impl Into<String>) -> AccountError {
    AccountError::Input {
        field: field.into(),
        reason: reason.into(),
    }
}

/// A message channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Sms,
}

/// A message to a person: a code, a token. Stored in the outbox unless delivered otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: String,
    pub channel: Channel,
    /// An email address, a mobile number, or `user:<username>` when no contact is known.
    pub to: String,
    pub subject: String,
    pub body: String,
    pub created_at: i64,
}

impl Message {
    /// A notice to a person (not a code): what the registry tells filers.
    pub fn notice(channel: Channel, to: &str, subject: &str, body: String, now: i64) -> Self {
        Message::new(channel, to, subject, body, now)
    }

    fn new(channel: Channel, to: &str, subject: &str, body: String, now: i64) -> Self {
        // Ids sort in creation order: one clock reading in nanoseconds, then a process-wide
        // sequence for messages created in the same nanosecond.
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 100_000_000;
        Message {
            id: format!("{nanos:020}-{seq:08}"),
            channel,
            to: to.to_string(),
            subject: subject.to_string(),
            body,
            created_at: now,
        }
    }
}

/// Contact details of a user (kept beside the user record).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub email: Option<String>,
    pub mobile: Option<String>,
}

/// A stored session (keyed by the SHA-256 of its token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub username: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A self-registration request.
#[derive(Debug, Clone, Deserialize)]
pub struct Registration {
    pub username: String,
    pub password: String,
    pub mobile: String,
    pub email: String,
}

/// A management user to create (top-down).
#[derive(Debug, Clone, Deserialize)]
pub struct NewUser {
    pub username: String,
    /// Generated (and returned once) when absent.
    pub password: Option<String>,
    pub role: Role,
    /// Province abbreviation, for bureau users.
    pub province: Option<String>,
    /// Provider or reporter name, for ISP, IP-reporter and domain-reporter users.
    pub name: Option<String>,
    pub email: Option<String>,
    pub mobile: Option<String>,
}

/// Who may create a user of `role` (DESIGN.md §1): MIIT creates bureaus; MIIT or a bureau
/// creates pre-approval, special-content and special-query users; a bureau creates ISP,
/// IP-reporter and domain-reporter users. ICP users register themselves.
pub fn may_create(creator: &Actor, role: Role) -> bool {
    use Role::*;
    match creator {
        Actor::Miit => matches!(role, Bureau | PreApproval | SpecialContent | SpecialQuery),
        Actor::Bureau { .. } => matches!(
            role,
            PreApproval | SpecialContent | SpecialQuery | Isp | IpReporter | DomainReporter
        ),
        _ => false,
    }
}

/// A simple failure counter per key over a fixed window (pure: time passed in).
#[derive(Debug, Default)]
pub struct FailureCounter {
    entries: HashMap<String, (i64, u32)>,
}

impl FailureCounter {
    /// `Err(retry_after)` when `key` already has `max` failures in the current window.
    pub fn check(&self, key: &str, max: u32, now: i64) -> Result<(), u64> {
        match self.entries.get(key) {
            Some((start, n)) if now - start < FAILURE_WINDOW_SECS && *n >= max => {
                Err((start + FAILURE_WINDOW_SECS - now).max(1) as u64)
            }
            _ => Ok(()),
        }
    }

    pub fn fail(&mut self, key: &str, now: i64) {
        if self.entries.len() > 100_000 {
            self.entries
                .retain(|_, (start, _)| now - *start < FAILURE_WINDOW_SECS);
        }
        let e = self.entries.entry(key.to_string()).or_insert((now, 0));
        if now - e.0 >= FAILURE_WINDOW_SECS {
            *e = (now, 0);
        }
        e.1 += 1;
    }

    pub fn clear(&mut self, key: &str) {
        self.entries.remove(key);
    }
}

/// A self-registration waiting for its two codes (stored under the username).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending {
    user: UserRecord,
    contact: Contact,
    sms_code: String,
    email_code: String,
    created_at: i64,
    expires_at: i64,
    attempts: u32,
    /// How many times the codes were sent again (lost registration codes).
    #[serde(default)]
    resends: u32,
}

/// A login challenge (stored under the SHA-256 of its id, like sessions).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Challenge {
    username: String,
    code: String,
    issued_at: i64,
    expires_at: i64,
    attempts: u32,
}

/// A password reset token (stored under the SHA-256 of the token).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Reset {
    username: String,
    issued_at: i64,
    expires_at: i64,
}

/// The record kinds that expire, purged by [`Accounts::purge_expired`].
pub const EXPIRING_KINDS: [&str; 5] = [
    KIND_PENDING,
    KIND_CHALLENGE,
    KIND_RESET,
    KIND_SESSION,
    KIND_CONTACT_CHANGE,
];

/// A user's own contact change awaiting the codes sent to the new email and/or mobile.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ContactChange {
    email: Option<String>,
    mobile: Option<String>,
    email_code: Option<String>,
    sms_code: Option<String>,
    expires_at: i64,
    attempts: u32,
}

// ---- The record kinds of accounts (typed store records, see `registry::store::records`) ----

/// Sessions, under the SHA-256 of their token ([`token_key`]).
pub struct Sessions;
impl JsonKind for Sessions {
    const KIND: &'static str = KIND_SESSION;
    type Value = Session;
}

/// Messages kept in the outbox, under their id.
pub struct OutboxMessages;
impl JsonKind for OutboxMessages {
    const KIND: &'static str = KIND_OUTBOX;
    type Value = Message;
}

/// Notices to filers waiting for delivery, under their id.
pub struct Notices;
impl JsonKind for Notices {
    const KIND: &'static str = KIND_NOTICE;
    type Value = Message;
}

/// Users' contacts, under the username.
pub struct Contacts;
impl JsonKind for Contacts {
    const KIND: &'static str = KIND_CONTACT;
    type Value = Contact;
}

/// An ISP user's import authorisation, under the username: present while authorised.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportAuthorisation {
    /// Who granted it and when (unknown for records written before typed records).
    #[serde(default)]
    pub granted_by: Option<String>,
    #[serde(default)]
    pub granted_at: Option<i64>,
}

/// Import authorisations. Format 0 is the flag `1` earlier releases stored.
pub struct ImportAuthorisations;
impl RecordKind for ImportAuthorisations {
    const KIND: &'static str = KIND_IMPORT_AUTH;
    type Value = ImportAuthorisation;
    fn to_payload(value: &ImportAuthorisation) -> Result<Vec<u8>, String> {
        serde_json::to_vec(value).map_err(|e| e.to_string())
    }
    fn from_payload(format: u16, payload: &[u8]) -> Result<ImportAuthorisation, String> {
        match format {
            0 if payload == b"1" => Ok(ImportAuthorisation::default()),
            0 => Err("an import authorisation flag is `1`".into()),
            _ => serde_json::from_slice(payload).map_err(|e| e.to_string()),
        }
    }
}

struct PendingRegistrations;
impl JsonKind for PendingRegistrations {
    const KIND: &'static str = KIND_PENDING;
    type Value = Pending;
}

struct LoginChallenges;
impl JsonKind for LoginChallenges {
    const KIND: &'static str = KIND_CHALLENGE;
    type Value = Challenge;
}

struct ResetTokens;
impl JsonKind for ResetTokens {
    const KIND: &'static str = KIND_RESET;
    type Value = Reset;
}

struct ContactChanges;
impl JsonKind for ContactChanges {
    const KIND: &'static str = KIND_CONTACT_CHANGE;
    type Value = ContactChange;
}

#[derive(Default)]
struct Memory {
    account_failures: FailureCounter,
    client_failures: FailureCounter,
}

/// Read one stored record of kind `K` (one that does not decode is `StoreError::Corrupt`).
fn load<K: RecordKind, S: RegistryStore>(
    store: &S,
    key: &str,
) -> Result<Option<K::Value>, AccountError> {
    Ok(store.load_record::<K>(key)?)
}

/// Store (`Some`) or delete (`None`) one record of kind `K`, durably, in its own transaction.
fn save<K: RecordKind, S: RegistryStore>(
    store: &S,
    meta: &AuditMeta,
    key: &str,
    value: Option<&K::Value>,
) -> Result<(), AccountError> {
    let mut txn = store.begin()?;
    match value {
        Some(v) => txn.store_record::<K>(meta, key, v)?,
        None => txn.delete_record::<K>(meta, key)?,
    }
    txn.commit()?;
    Ok(())
}

/// The account service. Share one per server.
pub struct Accounts {
    memory: Mutex<Memory>,
    dummy_hash: String,
}

impl Default for Accounts {
    fn default() -> Self {
        Self::new()
    }
}

fn random_code() -> String {
    format!("{:06}", rand::thread_rng().gen_range(0..1_000_000))
}

fn random_token() -> String {
    use base64::Engine;
    let mut b = [0u8; 32];
    rand::thread_rng().fill(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// The store key of a session token.
pub fn token_key(token: &str) -> String {
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

fn eq_ct(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Rough checks of a mainland mobile number (11 digits starting with 1).
pub fn validate_mobile(m: &str) -> Result<(), AccountError> {
    if m.len() == 11 && m.starts_with('1') && m.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(input("mobile", "expected 11 digits starting with 1"))
    }
}

/// Rough checks of an email address (`local@domain.tld`, no spaces).
pub fn validate_email(e: &str) -> Result<(), AccountError> {
    let ok = match e.split_once('@') {
        Some((l, d)) => {
            !l.is_empty()
                && d.contains('.')
                && !d.starts_with('.')
                && !d.ends_with('.')
                && !e.chars().any(|c| c.is_whitespace() || c.is_control())
                && e.len() <= 254
        }
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(input("email", "not an email address"))
    }
}

fn system() -> Actor {
    Actor::Miit
}

impl Accounts {
    pub fn new() -> Self {
        Accounts {
            memory: Mutex::new(Memory::default()),
            // Verified against when the account does not exist, so timing does not tell.
            dummy_hash: hash_password("not-a-real-password-0").unwrap_or_default(),
        }
    }

    fn mem(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Write messages to the outbox (durably, audited by size and hash only).
    pub fn to_outbox<S: RegistryStore>(
        store: &S,
        messages: &[Message],
    ) -> Result<(), AccountError> {
        if messages.is_empty() {
            return Ok(());
        }
        let mut txn = store.begin()?;
        for m in messages {
            let meta = AuditMeta::new(&system(), "outbox", m.created_at);
            txn.store_record::<OutboxMessages>(&meta, &m.id, m)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Every undelivered message, oldest first: the outbox and the notices not yet handed to
    /// a channel.
    pub fn outbox<S: RegistryStore>(store: &S) -> Result<Vec<Message>, AccountError> {
        let mut out = Self::messages::<OutboxMessages, _>(store)?;
        out.extend(Self::messages::<Notices, _>(store)?);
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// The notices waiting for delivery, oldest first.
    pub fn notices<S: RegistryStore>(store: &S) -> Result<Vec<Message>, AccountError> {
        Self::messages::<Notices, _>(store)
    }

    /// Settle delivered notices: `sent` ones are removed, `kept` ones move to the outbox.
    pub fn settle_notices<S: RegistryStore>(
        store: &S,
        sent: &[Message],
        kept: &[Message],
        now: i64,
    ) -> Result<(), AccountError> {
        if sent.is_empty() && kept.is_empty() {
            return Ok(());
        }
        let mut txn = store.begin()?;
        let meta = AuditMeta::new(&system(), "deliver_notice", now);
        for m in sent.iter().chain(kept) {
            txn.delete_record::<Notices>(&meta, &m.id)?;
        }
        for m in kept {
            txn.store_record::<OutboxMessages>(&meta, &m.id, m)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Every message of kind `K`, in id order; one that does not decode is an error.
    fn messages<K: RecordKind<Value = Message>, S: RegistryStore>(
        store: &S,
    ) -> Result<Vec<Message>, AccountError> {
        let mut out = Vec::new();
        store.scan_kind::<K>(&mut |_, m| {
            out.push(m);
            true
        })?;
        Ok(out)
    }

    pub fn contact<S: RegistryStore>(store: &S, username: &str) -> Result<Contact, AccountError> {
        Ok(store.load_record::<Contacts>(username)?.unwrap_or_default())
    }

    /// Set (or replace) the contact of `username`: an email address and/or a mobile number,
    /// where login codes are delivered. MIIT may set anyone's; a bureau those of the users it
    /// manages; every user their own. A field left `None` keeps its current value.
    pub fn set_contact<S: RegistryStore>(
        store: &S,
        actor: &Actor,
        username: &str,
        email: Option<&str>,
        mobile: Option<&str>,
        now: i64,
    ) -> Result<Contact, AccountError> {
        if email.is_none() && mobile.is_none() {
            return Err(input(
                "contact",
                "give an email address, a mobile number or both",
            ));
        }
        if let Some(e) = email {
            validate_email(e)?;
        }
        if let Some(m) = mobile {
            validate_mobile(m)?;
        }
        let user = store
            .user(username)?
            .ok_or_else(|| AccountError::NotFound(format!("user {username}")))?;
        if user.actor != *actor && !Self::manages(store, actor, &user)? {
            return Err(AccountError::Forbidden(format!(
                "{actor} may not change the contact of user {username}"
            )));
        }
        let mut c = Self::contact(store, username)?;
        if let Some(e) = email {
            c.email = Some(e.to_string());
        }
        if let Some(m) = mobile {
            c.mobile = Some(m.to_string());
        }
        save::<Contacts, _>(
            store,
            &AuditMeta::new(actor, "set contact", now),
            username,
            Some(&c),
        )?;
        Ok(c)
    }

    /// Start a self-registration: checks the rules, stores it pending (with its expiry), and
    /// returns the two messages (SMS code to the mobile, email code to the address) to
    /// deliver.
    pub fn register<S: RegistryStore>(
        &self,
        store: &S,
        r: &Registration,
        now: i64,
    ) -> Result<Vec<Message>, AccountError> {
        validate_username(&r.username)?;
        validate_password(&r.username, &r.password)?;
        validate_mobile(&r.mobile)?;
        validate_email(&r.email)?;
        if store.user(&r.username)?.is_some() {
            return Err(AccountError::Taken {
                username: r.username.clone(),
            });
        }
        let user = UserRecord::new(
            &r.username,
            &r.password,
            Actor::icp(&r.username),
            "self-registration",
            now,
        )?;
        let _held = self.mem();
        if let Some(p) = load::<PendingRegistrations, _>(store, &r.username)? {
            if now < p.expires_at {
                return Err(AccountError::Taken {
                    username: r.username.clone(),
                });
            }
        }
        let p = Pending {
            user,
            contact: Contact {
                email: Some(r.email.clone()),
                mobile: Some(r.mobile.clone()),
            },
            sms_code: random_code(),
            email_code: random_code(),
            created_at: now,
            expires_at: now + REGISTRATION_TTL_SECS,
            attempts: 0,
            resends: 0,
        };
        let msgs = vec![
            Message::new(
                Channel::Sms,
                &r.mobile,
                "beian registration code",
                format!("【备案】注册验证码 registration code: {}", p.sms_code),
                now,
            ),
            Message::new(
                Channel::Email,
                &r.email,
                "beian registration code / 备案注册验证码",
                format!(
                    "Your registration code for user {} is {} (valid 30 minutes).\n您的注册验证码：{}",
                    r.username, p.email_code, p.email_code
                ),
                now,
            ),
        ];
        let meta = AuditMeta::new(&p.user.actor, "registration pending", now);
        save::<PendingRegistrations, _>(store, &meta, &r.username, Some(&p))?;
        Ok(msgs)
    }

    /// A lost registration code: new codes for a pending registration, sent again to the
    /// mobile and email it gave (the old codes stop working; the 30 minutes start again).
    /// At most [`MAX_REGISTRATION_RESENDS`] times. Says nothing about whether the username is
    /// pending: no pending registration (or no resend left) gives no messages.
    pub fn registration_resend<S: RegistryStore>(
        &self,
        store: &S,
        username: &str,
        now: i64,
    ) -> Result<Vec<Message>, AccountError> {
        let _held = self.mem();
        let Some(mut p) = load::<PendingRegistrations, _>(store, username)? else {
            return Ok(Vec::new());
        };
        if now >= p.expires_at || p.resends >= MAX_REGISTRATION_RESENDS {
            return Ok(Vec::new());
        }
        p.sms_code = random_code();
        p.email_code = random_code();
        p.expires_at = now + REGISTRATION_TTL_SECS;
        p.attempts = 0;
        p.resends += 1;
        let mut msgs = Vec::new();
        if let Some(m) = &p.contact.mobile {
            msgs.push(Message::new(
                Channel::Sms,
                m,
                "beian registration code",
                format!(
                    "【备案】注册验证码（重新发送）registration code: {}",
                    p.sms_code
                ),
                now,
            ));
        }
        if let Some(e) = &p.contact.email {
            msgs.push(Message::new(
                Channel::Email,
                e,
                "beian registration code / 备案注册验证码",
                format!(
                    "Your new registration code for user {username} is {} (valid 30 minutes; earlier codes no longer work).\n您的注册验证码（重新发送）：{}",
                    p.email_code, p.email_code
                ),
                now,
            ));
        }
        let meta = AuditMeta::new(&p.user.actor, "registration codes sent again", now);
        save::<PendingRegistrations, _>(store, &meta, username, Some(&p))?;
        Ok(msgs)
    }

    /// A user changes its own password, giving the old one. Every session is revoked (sign
    /// in again).
    pub fn change_password<S: RegistryStore>(
        &self,
        store: &S,
        username: &str,
        old_password: &str,
        new_password: &str,
        now: i64,
    ) -> Result<(), AccountError> {
        let mut user = store
            .user(username)?
            .ok_or_else(|| AccountError::NotFound(format!("user {username}")))?;
        if !super::verify_password(old_password, &user.password_hash) {
            return Err(input("old_password", "is not the current password"));
        }
        if old_password == new_password {
            return Err(input("new_password", "is the current password"));
        }
        validate_password(username, new_password)?;
        user.password_hash = hash_password(new_password)?;
        let mut txn = store.begin()?;
        txn.put_user(&AuditMeta::new(&user.actor, "password changed", now), &user)?;
        txn.commit()?;
        Self::revoke_sessions(store, username, &user.actor, now)?;
        Ok(())
    }

    /// A user changes its own contact, step 1: a fresh code to each new address (email and/or
    /// mobile), and a notice to the current ones. Returns the messages to deliver.
    pub fn contact_change_start<S: RegistryStore>(
        &self,
        store: &S,
        username: &str,
        email: Option<&str>,
        mobile: Option<&str>,
        now: i64,
    ) -> Result<Vec<Message>, AccountError> {
        let user = store
            .user(username)?
            .ok_or_else(|| AccountError::NotFound(format!("user {username}")))?;
        if let Some(e) = email {
            validate_email(e)?;
        }
        if let Some(m) = mobile {
            validate_mobile(m)?;
        }
        let current = Self::contact(store, username)?;
        let email = email.filter(|e| current.email.as_deref() != Some(*e));
        let mobile = mobile.filter(|m| current.mobile.as_deref() != Some(*m));
        if email.is_none() && mobile.is_none() {
            return Err(input(
                "contact",
                "nothing changes: give a new email address or mobile number",
            ));
        }
        let change = ContactChange {
            email: email.map(str::to_string),
            mobile: mobile.map(str::to_string),
            email_code: email.map(|_| random_code()),
            sms_code: mobile.map(|_| random_code()),
            expires_at: now + REGISTRATION_TTL_SECS,
            attempts: 0,
        };
        let mut msgs = Vec::new();
        if let (Some(to), Some(code)) = (&change.mobile, &change.sms_code) {
            msgs.push(Message::new(
                Channel::Sms,
                to,
                "beian contact change code",
                format!("【备案】联系方式变更验证码 contact change code: {code}"),
                now,
            ));
        }
        if let (Some(to), Some(code)) = (&change.email, &change.email_code) {
            msgs.push(Message::new(
                Channel::Email,
                to,
                "beian contact change / 备案联系方式变更",
                format!("The code to confirm this address for user {username} is {code} (valid 30 minutes).\n联系方式变更验证码：{code}"),
                now,
            ));
        }
        for (channel, to) in [
            (Channel::Email, current.email.as_deref()),
            (Channel::Sms, current.mobile.as_deref()),
        ] {
            if let Some(to) = to {
                msgs.push(Message::notice(
                    channel,
                    to,
                    "beian contact change requested / 备案联系方式变更",
                    format!("A change of the contact of user {username} was requested. If it was not you, change your password.\n用户 {username} 申请变更联系方式；如非本人操作，请修改密码。"),
                    now,
                ));
            }
        }
        let meta = AuditMeta::new(&user.actor, "contact change requested", now);
        save::<ContactChanges, _>(store, &meta, username, Some(&change))?;
        Ok(msgs)
    }

    /// Step 2: the codes sent to the new addresses. Too many wrong codes drop the change.
    pub fn contact_change_confirm<S: RegistryStore>(
        &self,
        store: &S,
        username: &str,
        email_code: Option<&str>,
        sms_code: Option<&str>,
        now: i64,
    ) -> Result<Contact, AccountError> {
        let _held = self.mem();
        let Some(mut c) = load::<ContactChanges, _>(store, username)? else {
            return Err(AccountError::InvalidCode);
        };
        let user = store
            .user(username)?
            .ok_or_else(|| AccountError::NotFound(format!("user {username}")))?;
        let meta = AuditMeta::new(&user.actor, "contact changed", now);
        if now >= c.expires_at {
            save::<ContactChanges, _>(store, &meta, username, None)?;
            return Err(AccountError::InvalidCode);
        }
        let matches = |want: &Option<String>, got: Option<&str>| match want {
            None => true,
            Some(w) => got.is_some_and(|g| eq_ct(w, g)),
        };
        if !(matches(&c.email_code, email_code) && matches(&c.sms_code, sms_code)) {
            c.attempts += 1;
            let keep = (c.attempts < MAX_CODE_ATTEMPTS).then_some(&c);
            save::<ContactChanges, _>(store, &meta, username, keep)?;
            return Err(AccountError::InvalidCode);
        }
        let mut contact = Self::contact(store, username)?;
        if c.email.is_some() {
            contact.email = c.email.clone();
        }
        if c.mobile.is_some() {
            contact.mobile = c.mobile.clone();
        }
        let mut txn = store.begin()?;
        txn.store_record::<Contacts>(&meta, username, &contact)?;
        txn.delete_record::<ContactChanges>(&meta, username)?;
        txn.commit()?;
        Ok(contact)
    }

    /// Activate a pending registration with both codes. An expired one is refused and
    /// purged; too many wrong codes drop it.
    pub fn activate<S: RegistryStore>(
        &self,
        store: &S,
        username: &str,
        sms_code: &str,
        email_code: &str,
        now: i64,
    ) -> Result<UserRecord, AccountError> {
        let _held = self.mem();
        let Some(mut p) = load::<PendingRegistrations, _>(store, username)? else {
            return Err(AccountError::InvalidCode);
        };
        let meta = AuditMeta::new(&p.user.actor, "register", now);
        if now >= p.expires_at {
            save::<PendingRegistrations, _>(store, &meta, username, None)?;
            return Err(AccountError::InvalidCode);
        }
        if !(eq_ct(&p.sms_code, sms_code) && eq_ct(&p.email_code, email_code)) {
            p.attempts += 1;
            let keep = (p.attempts < MAX_CODE_ATTEMPTS).then_some(&p);
            save::<PendingRegistrations, _>(store, &meta, username, keep)?;
            return Err(AccountError::InvalidCode);
        }
        let mut txn = store.begin()?;
        if txn.user(username)?.is_some() {
            return Err(AccountError::Taken {
                username: username.into(),
            });
        }
        txn.put_user(&meta, &p.user)?;
        txn.store_record::<Contacts>(&meta, username, &p.contact)?;
        txn.delete_record::<PendingRegistrations>(&meta, username)?;
        txn.commit()?;
        Ok(p.user)
    }

    /// Login step 1: check the password. Whatever the outcome, the caller answers the same
    /// way with the returned challenge id; only right credentials produce messages (the code,
    /// stored as a challenge with its expiry) and a usable challenge. The code goes to every
    /// contact the account has (email, mobile), or to `user:<username>` when it has none: the
    /// caller delivers it through one of them ([`Message`]s are alternatives here). Failed
    /// attempts are limited per account and per client.
    pub fn login_start<S: RegistryStore>(
        &self,
        store: &S,
        username: &str,
        password: &str,
        client: &str,
        now: i64,
    ) -> Result<(String, Vec<Message>), AccountError> {
        {
            let mem = self.mem();
            let acct = mem
                .account_failures
                .check(username, MAX_FAILURES_PER_ACCOUNT, now);
            let cli = mem
                .client_failures
                .check(client, MAX_FAILURES_PER_CLIENT, now);
            if let Err(retry_after_secs) = acct.and(cli) {
                return Err(AccountError::RateLimited { retry_after_secs });
            }
        }
        let user = store.user(username)?;
        let ok = match &user {
            Some(u) => verify_password(password, &u.password_hash),
            None => {
                let _ = verify_password(password, &self.dummy_hash);
                false
            }
        };
        let challenge_id = random_token();
        let user = match (ok, user) {
            (true, Some(u)) => u,
            _ => {
                let mut mem = self.mem();
                mem.account_failures.fail(username, now);
                mem.client_failures.fail(client, now);
                return Ok((challenge_id, Vec::new()));
            }
        };
        let code = random_code();
        let challenge = Challenge {
            username: user.username.clone(),
            code: code.clone(),
            issued_at: now,
            expires_at: now + CHALLENGE_TTL_SECS,
            attempts: 0,
        };
        let meta = AuditMeta::new(&user.actor, "login challenge", now);
        save::<LoginChallenges, _>(store, &meta, &token_key(&challenge_id), Some(&challenge))?;
        let contact = Self::contact(store, &user.username)?;
        let message = |channel, to: &str| {
            Message::new(
                channel,
                to,
                "beian login code / 备案登录验证码",
                format!(
                    "Login code for {}: {} (valid {} minutes).\n登录验证码：{}",
                    user.username,
                    code,
                    CHALLENGE_TTL_SECS / 60,
                    code
                ),
                now,
            )
        };
        let mut msgs = Vec::new();
        if let Some(e) = &contact.email {
            msgs.push(message(Channel::Email, e));
        }
        if let Some(m) = &contact.mobile {
            msgs.push(message(Channel::Sms, m));
        }
        if msgs.is_empty() {
            msgs.push(message(Channel::Email, &format!("user:{}", user.username)));
        }
        Ok((challenge_id, msgs))
    }

    /// Login step 2: the challenge code → a new session token (shown once). The challenge is
    /// read from the store, so it survives a restart; an expired one is refused and purged.
    pub fn login_verify<S: RegistryStore>(
        &self,
        store: &S,
        challenge_id: &str,
        code: &str,
        client: &str,
        now: i64,
    ) -> Result<(String, Session), AccountError> {
        let mut mem = self.mem();
        if let Err(retry_after_secs) =
            mem.client_failures
                .check(client, MAX_FAILURES_PER_CLIENT, now)
        {
            return Err(AccountError::RateLimited { retry_after_secs });
        }
        let key = token_key(challenge_id);
        let Some(mut c) = load::<LoginChallenges, _>(store, &key)? else {
            mem.client_failures.fail(client, now);
            return Err(AccountError::Unauthorized);
        };
        let user = store.user(&c.username)?;
        let actor = user.as_ref().map_or(system(), |u| u.actor.clone());
        if !challenge_valid(c.issued_at, now) || now >= c.expires_at {
            let meta = AuditMeta::new(&actor, "login challenge expired", now);
            save::<LoginChallenges, _>(store, &meta, &key, None)?;
            return Err(AccountError::Unauthorized);
        }
        if !eq_ct(&c.code, code) {
            c.attempts += 1;
            let keep = (c.attempts < MAX_CODE_ATTEMPTS).then_some(&c);
            let meta = AuditMeta::new(&actor, "login code wrong", now);
            save::<LoginChallenges, _>(store, &meta, &key, keep)?;
            mem.account_failures.fail(&c.username, now);
            mem.client_failures.fail(client, now);
            return Err(AccountError::Unauthorized);
        }
        mem.account_failures.clear(&c.username);
        let user = user.ok_or(AccountError::Unauthorized)?;
        let token = random_token();
        let session = Session {
            username: user.username.clone(),
            created_at: now,
            expires_at: now + SESSION_TTL_SECS,
        };
        let mut txn = store.begin()?;
        let meta = AuditMeta::new(&user.actor, "login", now);
        txn.delete_record::<LoginChallenges>(&meta, &key)?;
        txn.store_record::<Sessions>(&meta, &token_key(&token), &session)?;
        txn.commit()?;
        Ok((token, session))
    }

    /// The user behind a session token, if the session exists and has not expired. An
    /// expired session is refused and purged.
    pub fn authenticate<S: RegistryStore>(
        store: &S,
        token: &str,
        now: i64,
    ) -> Result<UserRecord, AccountError> {
        let key = token_key(token);
        // A session that does not decode is no session (as before typed records): the token
        // is refused (401, not 500), and the damaged record is logged with its kind and key
        // (`registry check` lists it).
        let s = match store.load_record::<Sessions>(&key) {
            Ok(Some(s)) => s,
            Ok(None) => return Err(AccountError::Unauthorized),
            Err(e @ StoreError::Corrupt { .. }) => {
                tracing::warn!(error = %e, "a session record does not decode; refused");
                return Err(AccountError::Unauthorized);
            }
            Err(e) => return Err(e.into()),
        };
        if now >= s.expires_at {
            let meta = AuditMeta::new(&system(), "session expired", now);
            // Purging is housekeeping: the answer is the same whether or not it succeeds.
            if let Err(e) = save::<Sessions, _>(store, &meta, &key, None) {
                tracing::warn!(error = %e, "could not purge an expired session");
            }
            return Err(AccountError::Unauthorized);
        }
        let user = store.user(&s.username)?.ok_or(AccountError::Unauthorized)?;
        Self::effective(store, user)
    }

    /// Delete every expired pending registration, login challenge, reset token and session
    /// (one durable transaction); returns how many were deleted. The service calls this
    /// periodically; expired records are refused on access anyway.
    pub fn purge_expired<S: RegistryStore>(store: &S, now: i64) -> Result<usize, AccountError> {
        // Housekeeping passes over a record that does not decode (as it always has): it is
        // left in place, logged with its kind and key and listed by `registry check`
        // ([`Accounts::damaged_records`]), and the others are still purged.
        fn expired<K: RecordKind, S: RegistryStore>(
            store: &S,
            now: i64,
            expires_at: fn(&K::Value) -> i64,
        ) -> Result<Vec<String>, StoreError> {
            let mut out = Vec::new();
            store.scan_kind_each::<K>(&mut |k, v| {
                match v {
                    Ok(v) if now >= expires_at(&v) => out.push(k.to_string()),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "an expiring record does not decode"),
                }
                true
            })?;
            Ok(out)
        }
        fn delete<K: RecordKind, T: RegistryTxn>(
            txn: &mut T,
            meta: &AuditMeta,
            keys: &[String],
        ) -> Result<(), StoreError> {
            keys.iter()
                .try_for_each(|k| txn.delete_record::<K>(meta, k))
        }
        let pending = expired::<PendingRegistrations, _>(store, now, |p| p.expires_at)?;
        let challenges = expired::<LoginChallenges, _>(store, now, |c| c.expires_at)?;
        let resets = expired::<ResetTokens, _>(store, now, |r| r.expires_at)?;
        let sessions = expired::<Sessions, _>(store, now, |s| s.expires_at)?;
        let changes = expired::<ContactChanges, _>(store, now, |c| c.expires_at)?;
        let n = pending.len() + challenges.len() + resets.len() + sessions.len() + changes.len();
        if n == 0 {
            return Ok(0);
        }
        let mut txn = store.begin()?;
        let meta = AuditMeta::new(&system(), "purge expired", now);
        delete::<PendingRegistrations, _>(&mut txn, &meta, &pending)?;
        delete::<LoginChallenges, _>(&mut txn, &meta, &challenges)?;
        delete::<ResetTokens, _>(&mut txn, &meta, &resets)?;
        delete::<Sessions, _>(&mut txn, &meta, &sessions)?;
        delete::<ContactChanges, _>(&mut txn, &meta, &changes)?;
        txn.commit()?;
        Ok(n)
    }

    /// Every account record (of each kind above) that does not decode, as `kind:key: why`,
    /// for `registry check`: the ones housekeeping passes over included.
    pub fn damaged_records<S: RegistryStore>(store: &S) -> Result<Vec<String>, AccountError> {
        use crate::registry::store::records::find_damaged;
        let mut out = Vec::new();
        find_damaged::<Sessions, _>(store, &mut out)?;
        find_damaged::<LoginChallenges, _>(store, &mut out)?;
        find_damaged::<PendingRegistrations, _>(store, &mut out)?;
        find_damaged::<ResetTokens, _>(store, &mut out)?;
        find_damaged::<Contacts, _>(store, &mut out)?;
        find_damaged::<ContactChanges, _>(store, &mut out)?;
        find_damaged::<ImportAuthorisations, _>(store, &mut out)?;
        find_damaged::<OutboxMessages, _>(store, &mut out)?;
        find_damaged::<Notices, _>(store, &mut out)?;
        Ok(out)
    }

    /// The user with its import authorisation as granted by its bureau (ISP users only).
    pub fn effective<S: RegistryStore>(
        store: &S,
        mut user: UserRecord,
    ) -> Result<UserRecord, AccountError> {
        if let Actor::Isp { name, .. } = &user.actor {
            let authorised = store.has_record::<ImportAuthorisations>(&user.username)?;
            user.actor = Actor::Isp {
                name: name.clone(),
                import_authorised: authorised,
            };
        }
        Ok(user)
    }

    /// Revoke one session (logout).
    pub fn logout<S: RegistryStore>(
        store: &S,
        token: &str,
        actor: &Actor,
        now: i64,
    ) -> Result<(), AccountError> {
        let k = token_key(token);
        if !store.has_record::<Sessions>(&k)? {
            return Ok(());
        }
        let mut txn = store.begin()?;
        txn.delete_record::<Sessions>(&AuditMeta::new(actor, "logout", now), &k)?;
        txn.commit()?;
        Ok(())
    }

    /// Revoke every session of `username` (after a password reset).
    pub fn revoke_sessions<S: RegistryStore>(
        store: &S,
        username: &str,
        actor: &Actor,
        now: i64,
    ) -> Result<usize, AccountError> {
        let mut keys = Vec::new();
        // A session that does not decode authenticates no one (see `authenticate`): passed
        // over, as it always was, so the others are still revoked.
        store.scan_kind_each::<Sessions>(&mut |k, s| {
            if s.is_ok_and(|s| s.username == username) {
                keys.push(k.to_string());
            }
            true
        })?;
        if keys.is_empty() {
            return Ok(0);
        }
        let mut txn = store.begin()?;
        let meta = AuditMeta::new(actor, "revoke sessions", now);
        for k in &keys {
            txn.delete_record::<Sessions>(&meta, k)?;
        }
        txn.commit()?;
        Ok(keys.len())
    }

    /// Password reset step 1: a one-time token by email, when the account has an address.
    /// The token is stored (by its SHA-256) with its expiry. Returns the message to deliver
    /// (`None` says nothing to the caller's client).
    pub fn reset_request<S: RegistryStore>(
        &self,
        store: &S,
        username: &str,
        now: i64,
    ) -> Result<Option<Message>, AccountError> {
        let Some(user) = store.user(username)? else {
            return Ok(None);
        };
        let Some(email) = Self::contact(store, username)?.email else {
            return Ok(None);
        };
        let token = random_token();
        let reset = Reset {
            username: username.to_string(),
            issued_at: now,
            expires_at: now + RESET_TTL_SECS,
        };
        let meta = AuditMeta::new(&user.actor, "password reset requested", now);
        save::<ResetTokens, _>(store, &meta, &token_key(&token), Some(&reset))?;
        Ok(Some(Message::new(
            Channel::Email,
            &email,
            "beian password reset / 备案密码重置",
            format!(
                "A password reset was requested for {username}. One-time token (valid {} minutes): {token}\n\
                 If you did not ask for this, ignore this message. We never send passwords.",
                RESET_TTL_SECS / 60
            ),
            now,
        )))
    }

    /// Password reset step 2: the token and a new password. Revokes every session. An
    /// expired token is refused and purged.
    pub fn reset_confirm<S: RegistryStore>(
        &self,
        store: &S,
        token: &str,
        new_password: &str,
        now: i64,
    ) -> Result<(), AccountError> {
        let _held = self.mem();
        let key = token_key(token);
        let Some(r) = load::<ResetTokens, _>(store, &key)? else {
            return Err(AccountError::InvalidCode);
        };
        if now >= r.expires_at {
            let meta = AuditMeta::new(&system(), "password reset expired", now);
            save::<ResetTokens, _>(store, &meta, &key, None)?;
            return Err(AccountError::InvalidCode);
        }
        let username = r.username;
        validate_password(&username, new_password)?;
        let mut user = store
            .user(&username)?
            .ok_or_else(|| AccountError::NotFound(format!("user {username}")))?;
        user.password_hash = hash_password(new_password)?;
        let mut txn = store.begin()?;
        let meta = AuditMeta::new(&user.actor, "password reset", now);
        txn.put_user(&meta, &user)?;
        txn.delete_record::<ResetTokens>(&meta, &key)?;
        txn.commit()?;
        Self::revoke_sessions(store, &username, &user.actor, now)?;
        Ok(())
    }
    /// Create a management or filing user top-down. Returns the record and the generated
    /// password when none was given (shown once).
    pub fn create_user<S: RegistryStore>(
        store: &S,
        creator: &UserRecord,
        req: &NewUser,
        now: i64,
    ) -> Result<(UserRecord, Option<String>), AccountError> {
        if !may_create(&creator.actor, req.role) {
            return Err(AccountError::Forbidden(format!(
                "{} may not create {:?} users",
                creator.actor, req.role
            )));
        }
        let name = || -> Result<String, AccountError> {
            match req.name.as_deref().map(str::trim) {
                Some(n) if !n.is_empty() && n.chars().count() <= 100 => Ok(n.to_string()),
                _ => Err(input("name", "this role needs a name (1–100 characters)")),
            }
        };
        let actor = match req.role {
            Role::Bureau => {
                let p = req.province.as_deref().unwrap_or("");
                match format!("bureau:{p}").parse::<Actor>() {
                    Ok(a) => a,
                    Err(_) => return Err(input("province", "not a province abbreviation")),
                }
            }
            Role::PreApproval => Actor::PreApproval,
            Role::SpecialContent => Actor::SpecialContent,
            Role::SpecialQuery => Actor::SpecialQuery,
            Role::Isp => Actor::Isp {
                name: name()?,
                import_authorised: false,
            },
            Role::IpReporter => Actor::IpReporter { name: name()? },
            Role::DomainReporter => Actor::DomainReporter { name: name()? },
            Role::Miit | Role::Icp => {
                return Err(AccountError::Forbidden(
                    "MIIT users are created at registry init; ICP users register themselves".into(),
                ))
            }
        };
        if let Some(e) = &req.email {
            validate_email(e)?;
        }
        if let Some(m) = &req.mobile {
            validate_mobile(m)?;
        }
        let (password, generated) = match &req.password {
            Some(p) => (p.clone(), None),
            None => {
                let g = generate_password();
                (g.clone(), Some(g))
            }
        };
        let user = UserRecord::new(&req.username, &password, actor, &creator.username, now)?;
        let mut txn = store.begin()?;
        if txn.user(&req.username)?.is_some() {
            return Err(AccountError::Taken {
                username: req.username.clone(),
            });
        }
        let meta = AuditMeta::new(&creator.actor, "create user", now);
        txn.put_user(&meta, &user)?;
        if req.email.is_some() || req.mobile.is_some() {
            let c = Contact {
                email: req.email.clone(),
                mobile: req.mobile.clone(),
            };
            txn.store_record::<Contacts>(&meta, &req.username, &c)?;
        }
        txn.commit()?;
        Ok((user, generated))
    }

    /// Whether `actor` manages `user`: MIIT manages everyone; a bureau manages the users
    /// created by a user of the same bureau.
    pub fn manages<S: RegistryStore>(
        store: &S,
        actor: &Actor,
        user: &UserRecord,
    ) -> Result<bool, AccountError> {
        Ok(match actor {
            Actor::Miit => true,
            Actor::Bureau { .. } => match store.user(&user.created_by)? {
                Some(c) => c.actor == *actor,
                None => false,
            },
            _ => false,
        })
    }

    /// Users `actor` manages (MIIT: all; a bureau: those its users created).
    pub fn list_users<S: RegistryStore>(
        store: &S,
        actor: &Actor,
    ) -> Result<Vec<UserRecord>, AccountError> {
        if !matches!(actor, Actor::Miit | Actor::Bureau { .. }) {
            return Err(AccountError::Forbidden(format!(
                "{actor} may not list users"
            )));
        }
        let mut users = Vec::new();
        crate::registry::store::RegistryScan::scan_users(store, &mut |u| {
            users.push(u);
            true
        })?;
        let mut all = Vec::new();
        for u in users {
            if Self::manages(store, actor, &u)? {
                all.push(u);
            }
        }
        Ok(all)
    }

    /// A bureau authorises (or de-authorises) an ISP user it manages for batch import.
    pub fn set_import_authorisation<S: RegistryStore>(
        store: &S,
        actor: &Actor,
        username: &str,
        authorised: bool,
        now: i64,
    ) -> Result<UserRecord, AccountError> {
        if !matches!(actor, Actor::Bureau { .. }) {
            return Err(AccountError::Forbidden(format!(
                "{actor} may not authorise import; only the bureau that created the ISP user"
            )));
        }
        let mut user = store
            .user(username)?
            .ok_or_else(|| AccountError::NotFound(format!("user {username}")))?;
        let Actor::Isp { name, .. } = &user.actor else {
            return Err(input("username", "not an ISP user"));
        };
        if !Self::manages(store, actor, &user)? {
            return Err(AccountError::Forbidden(format!(
                "{actor} did not create user {username}"
            )));
        }
        user.actor = Actor::Isp {
            name: name.clone(),
            import_authorised: authorised,
        };
        let mut txn = store.begin()?;
        let meta = AuditMeta::new(actor, "import authorisation", now);
        txn.put_user(&meta, &user)?;
        if authorised {
            let grant = ImportAuthorisation {
                granted_by: Some(actor.to_string()),
                granted_at: Some(now),
            };
            txn.store_record::<ImportAuthorisations>(&meta, username, &grant)?;
        } else {
            txn.delete_record::<ImportAuthorisations>(&meta, username)?;
        }
        txn.commit()?;
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_down_creation_rules() {
        let b = Actor::bureau('京');
        assert!(may_create(&Actor::Miit, Role::Bureau));
        assert!(!may_create(&b, Role::Bureau));
        for r in [Role::PreApproval, Role::SpecialContent, Role::SpecialQuery] {
            assert!(may_create(&Actor::Miit, r));
            assert!(may_create(&b, r));
        }
        for r in [Role::Isp, Role::IpReporter, Role::DomainReporter] {
            assert!(!may_create(&Actor::Miit, r));
            assert!(may_create(&b, r));
        }
        assert!(!may_create(&Actor::icp("a"), Role::SpecialQuery));
        assert!(!may_create(&Actor::isp("x"), Role::Isp));
        assert!(!may_create(&Actor::Miit, Role::Icp));
    }

    #[test]
    fn failure_counter_blocks_then_expires() {
        let mut c = FailureCounter::default();
        for _ in 0..3 {
            assert!(c.check("a", 3, 100).is_ok());
            c.fail("a", 100);
        }
        assert!(c.check("a", 3, 101).is_err());
        assert!(c.check("b", 3, 101).is_ok());
        assert!(c.check("a", 3, 100 + FAILURE_WINDOW_SECS).is_ok());
        c.clear("a");
        assert!(c.check("a", 3, 101).is_ok());
    }

    use crate::registry::store::RegistryScan;
    use crate::registry::Registry;

    const T0: i64 = 1_700_000_000;

    /// A registry with the MIIT user; its password.
    fn registry(dir: &std::path::Path) -> String {
        let (_reg, init) = Registry::init(dir, T0).unwrap();
        init.miit_password
    }

    /// Open the registry again, as a restarted process does. (sled lets go of its lock
    /// once its background flusher has stopped: wait for it.)
    fn reopen(dir: &std::path::Path) -> Registry {
        for _ in 0..100 {
            match Registry::open(dir) {
                Ok(r) => return r,
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(50)),
            }
        }
        Registry::open(dir).unwrap()
    }

    fn code_in(msgs: &[Message]) -> String {
        let body = &msgs[0].body;
        let i = body.find(|c: char| c.is_ascii_digit()).unwrap();
        body[i..i + 6].to_string()
    }

    #[test]
    fn a_login_challenge_survives_a_restart_and_expires() {
        let dir = tempfile::tempdir().unwrap();
        let pw = registry(dir.path());
        let (cid, code) = {
            let reg = reopen(dir.path());
            let (cid, msgs) = Accounts::new()
                .login_start(reg.store(), "miit", &pw, "c", T0)
                .unwrap();
            assert_eq!(msgs.len(), 1);
            assert_eq!(msgs[0].to, "user:miit");
            (cid, code_in(&msgs))
        };
        // A new process: the store reopened, a fresh account service.
        let reg = reopen(dir.path());
        let accounts = Accounts::new();
        let (token, session) = accounts
            .login_verify(reg.store(), &cid, &code, "c", T0 + 60)
            .unwrap();
        assert_eq!(session.expires_at, T0 + 60 + SESSION_TTL_SECS);
        let u = Accounts::authenticate(reg.store(), &token, T0 + 61).unwrap();
        assert_eq!(u.username, "miit");
        // The challenge is used up.
        assert!(accounts
            .login_verify(reg.store(), &cid, &code, "c", T0 + 62)
            .is_err());
        // A session expires and is purged on access.
        let late = T0 + 60 + SESSION_TTL_SECS;
        assert!(matches!(
            Accounts::authenticate(reg.store(), &token, late),
            Err(AccountError::Unauthorized)
        ));
        assert!(!reg
            .store()
            .has_record::<Sessions>(&token_key(&token))
            .unwrap());

        // After its expiry a challenge is refused, even with the right code, and purged.
        let (cid, msgs) = accounts
            .login_start(reg.store(), "miit", &pw, "c", T0)
            .unwrap();
        drop(accounts);
        let accounts = Accounts::new();
        let r = accounts.login_verify(
            reg.store(),
            &cid,
            &code_in(&msgs),
            "c",
            T0 + CHALLENGE_TTL_SECS,
        );
        assert!(matches!(r, Err(AccountError::Unauthorized)), "{r:?}");
        assert!(!reg
            .store()
            .has_record::<LoginChallenges>(&token_key(&cid))
            .unwrap());
    }

    #[test]
    fn wrong_codes_are_counted_in_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let pw = registry(dir.path());
        let reg = reopen(dir.path());
        let (cid, msgs) = Accounts::new()
            .login_start(reg.store(), "miit", &pw, "c", T0)
            .unwrap();
        let code = code_in(&msgs);
        let wrong = if code == "000000" { "000001" } else { "000000" };
        // Each attempt from a fresh service (as across restarts): the count is stored.
        for _ in 0..MAX_CODE_ATTEMPTS {
            let r = Accounts::new().login_verify(reg.store(), &cid, wrong, "c", T0 + 1);
            assert!(r.is_err());
        }
        let r = Accounts::new().login_verify(reg.store(), &cid, &code, "c", T0 + 2);
        assert!(r.is_err(), "dropped after {MAX_CODE_ATTEMPTS} wrong codes");
    }

    #[test]
    fn a_pending_registration_survives_a_restart_and_expires() {
        let dir = tempfile::tempdir().unwrap();
        registry(dir.path());
        let reg_of = |name: &str| Registration {
            username: name.into(),
            password: "secret-pw1".into(),
            mobile: "13700000005".into(),
            email: "zl@example.com".into(),
        };
        let msgs = {
            let reg = reopen(dir.path());
            Accounts::new()
                .register(reg.store(), &reg_of("zhao_liu"), T0)
                .unwrap()
        };
        let sms = code_in(&msgs[..1]);
        let mail = code_in(&msgs[1..]);
        let reg = reopen(dir.path());
        let a = Accounts::new();
        // Still pending after the restart: the name is taken until it expires.
        assert!(matches!(
            a.register(reg.store(), &reg_of("zhao_liu"), T0 + 1),
            Err(AccountError::Taken { .. })
        ));
        let u = a
            .activate(reg.store(), "zhao_liu", &sms, &mail, T0 + 10)
            .unwrap();
        assert_eq!(u.username, "zhao_liu");
        assert_eq!(
            Accounts::contact(reg.store(), "zhao_liu")
                .unwrap()
                .email
                .as_deref(),
            Some("zl@example.com")
        );

        let msgs = a.register(reg.store(), &reg_of("qian_qi"), T0).unwrap();
        let (sms, mail) = (code_in(&msgs[..1]), code_in(&msgs[1..]));
        let late = T0 + REGISTRATION_TTL_SECS;
        assert!(matches!(
            Accounts::new().activate(reg.store(), "qian_qi", &sms, &mail, late),
            Err(AccountError::InvalidCode)
        ));
        assert!(reg.store().user("qian_qi").unwrap().is_none());
        assert!(!reg
            .store()
            .has_record::<PendingRegistrations>("qian_qi")
            .unwrap());
    }

    #[test]
    fn a_reset_token_survives_a_restart_and_expired_records_are_purged() {
        let dir = tempfile::tempdir().unwrap();
        let pw = registry(dir.path());
        let reg = reopen(dir.path());
        Accounts::set_contact(
            reg.store(),
            &Actor::Miit,
            "miit",
            Some("miit@example.gov.cn"),
            None,
            T0,
        )
        .unwrap();
        let a = Accounts::new();
        let m = a.reset_request(reg.store(), "miit", T0).unwrap().unwrap();
        assert_eq!(m.to, "miit@example.gov.cn");
        let token = m
            .body
            .split("): ")
            .nth(1)
            .unwrap()
            .split('\n')
            .next()
            .unwrap();
        // Three more expiring records: a challenge, a pending registration, another reset.
        a.login_start(reg.store(), "miit", &pw, "c", T0).unwrap();
        a.reset_request(reg.store(), "miit", T0 + 5).unwrap();
        drop(a);
        Accounts::new()
            .reset_confirm(reg.store(), token, "new-secret-9", T0 + 10)
            .unwrap();
        // Before any expiry nothing is purged; after the longest TTL of these, all are.
        assert_eq!(Accounts::purge_expired(reg.store(), T0 + 11).unwrap(), 0);
        let n = Accounts::purge_expired(reg.store(), T0 + CHALLENGE_TTL_SECS + 5).unwrap();
        assert_eq!(n, 2, "the challenge and the unused reset token");
        for kind in EXPIRING_KINDS {
            let mut left = 0;
            reg.store()
                .scan_records(kind, &mut |_, _| {
                    left += 1;
                    true
                })
                .unwrap();
            assert_eq!(left, 0, "{kind}");
        }
        assert!(reg.verify_audit().unwrap().ok());
    }

    #[test]
    fn contacts_are_set_by_whoever_manages_the_user() {
        let dir = tempfile::tempdir().unwrap();
        registry(dir.path());
        let reg = reopen(dir.path());
        let s = reg.store();
        let c =
            Accounts::set_contact(s, &Actor::Miit, "miit", None, Some("13800000001"), T0).unwrap();
        assert_eq!(c.mobile.as_deref(), Some("13800000001"));
        let c =
            Accounts::set_contact(s, &Actor::Miit, "miit", Some("m@example.cn"), None, T0).unwrap();
        assert_eq!(
            (c.email.as_deref(), c.mobile.as_deref()),
            (Some("m@example.cn"), Some("13800000001"))
        );
        let bureau = Actor::bureau('京');
        assert!(matches!(
            Accounts::set_contact(s, &bureau, "miit", None, Some("13800000002"), T0),
            Err(AccountError::Forbidden(_))
        ));
        assert!(Accounts::set_contact(s, &Actor::Miit, "miit", None, Some("12"), T0).is_err());
        assert!(Accounts::set_contact(s, &Actor::Miit, "miit", None, None, T0).is_err());
        assert!(matches!(
            Accounts::set_contact(s, &Actor::Miit, "ghost", None, Some("13800000002"), T0),
            Err(AccountError::NotFound(_))
        ));
    }

    #[test]
    fn expiring_records_written_bare_by_earlier_releases_read() {
        use crate::registry::store::records::{decode, encode};
        // As the release before typed records stored them: bare JSON.
        let c = decode::<LoginChallenges>(
            br#"{"username":"miit","code":"123456","issued_at":1,"expires_at":2,"attempts":1}"#,
        )
        .unwrap();
        assert_eq!(
            (c.code.as_str(), c.expires_at, c.attempts),
            ("123456", 2, 1)
        );
        let again = decode::<LoginChallenges>(&encode::<LoginChallenges>(&c).unwrap()).unwrap();
        assert_eq!(again.code, "123456");
        let r =
            decode::<ResetTokens>(br#"{"username":"miit","issued_at":1,"expires_at":9}"#).unwrap();
        assert_eq!(r.expires_at, 9);
        let change = decode::<ContactChanges>(
            br#"{"email":null,"mobile":"13800000077","email_code":null,"sms_code":"513270","expires_at":5,"attempts":0}"#,
        )
        .unwrap();
        assert_eq!(change.sms_code.as_deref(), Some("513270"));
        // A pending registration of the release before resends were counted.
        let user = serde_json::to_string(
            &UserRecord::new(
                "wang_wu",
                "secret-pw1",
                Actor::icp("wang_wu"),
                "self-registration",
                1,
            )
            .unwrap(),
        )
        .unwrap();
        let p = decode::<PendingRegistrations>(
            format!(
                r#"{{"user":{user},"contact":{{"email":"ww@example.com","mobile":"13700000009"}},"sms_code":"1","email_code":"2","created_at":1,"expires_at":3,"attempts":0}}"#
            )
            .as_bytes(),
        )
        .unwrap();
        assert_eq!((p.user.username.as_str(), p.resends), ("wang_wu", 0));
        assert!(decode::<PendingRegistrations>(b"{").is_err());
    }

    #[test]
    fn contact_checks() {
        assert!(validate_mobile("13800000000").is_ok());
        assert!(validate_mobile("23800000000").is_err());
        assert!(validate_mobile("1380000000").is_err());
        assert!(validate_email("a@b.cn").is_ok());
        assert!(validate_email("a@b").is_err());
        assert!(validate_email("a b@c.cn").is_err());
        assert!(validate_email("@c.cn").is_err());
    }
}
