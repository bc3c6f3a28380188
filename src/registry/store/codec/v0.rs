//! Format 0: the layouts the store wrote before the versioned codec (bare bincode of the
//! domain structs of that time), frozen here so that a store written by those releases can
//! always be read and migrated, whatever the domain structs become. Types whose serialised
//! form is their canonical text (actors, domains, numbers) keep their current types: that text
//! form is stable by definition. Do not change anything in this file.

use std::net::IpAddr;

use bincode::Options;
use serde::{Deserialize, Serialize};

use crate::accounts::Actor;
use crate::domain::Domain;
use crate::number::{FilingNumber, LicenceNumber};
use crate::registry::model as current;

/// Decode bincode of the old layout, with a bound: a length claim beyond the input is an
/// error, never an allocation.
pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    bincode::options()
        .with_fixint_encoding()
        .allow_trailing_bytes()
        .with_limit(bytes.len() as u64)
        .deserialize(bytes)
        .map_err(|e| e.to_string())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub name: String,
    pub mobile: String,
    pub email: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    pub id: u64,
    pub name: String,
    pub nature: String,
    pub id_type: String,
    pub id_number: String,
    pub province: char,
    pub address: String,
    pub contact: Contact,
    pub owner: String,
    pub number: Option<FilingNumber>,
    pub last_website_index: u32,
    pub warnings: Vec<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderAccess {
    pub name: String,
    pub verified: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryEntry {
    pub category: String,
    pub pre_approval: bool,
    pub document: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    AwaitingAccessVerification,
    AwaitingReview,
    Rejected,
    Active,
    Cancelled,
    Revoked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServiceKind {
    Website,
    App,
    MiniProgram,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingChange {
    pub domains: Vec<Domain>,
    pub requested_by: Actor,
    pub requested_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancellationRequest {
    pub requested_by: Actor,
    pub reason: String,
    pub requested_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedCert {
    pub serial: u64,
    pub key_id: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub at: i64,
    pub actor: Actor,
    pub action: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filing {
    pub id: u64,
    pub subject_id: u64,
    pub kind: ServiceKind,
    pub name: String,
    pub homepage: String,
    pub domains: Vec<Domain>,
    pub ips: Vec<IpAddr>,
    pub providers: Vec<ProviderAccess>,
    pub access_method: String,
    pub server_placement: Option<String>,
    pub categories: Vec<CategoryEntry>,
    pub operating_licence: Option<LicenceNumber>,
    pub status: Status,
    pub number: Option<FilingNumber>,
    pub submitted_at: i64,
    pub approved_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub cert_serial: u64,
    pub certificate: Option<IssuedCert>,
    pub pending_change: Option<PendingChange>,
    pub cancellation: Option<CancellationRequest>,
    pub rejection: Option<String>,
    pub history: Vec<HistoryEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub username: String,
    pub actor: Actor,
    pub password_hash: String,
    pub created_at: i64,
    pub created_by: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IpBlockStatus {
    Unallocated,
    Allocated,
    Reallocated,
    Customer,
    RouterPort,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpFiling {
    pub id: u64,
    pub network: ipnet::IpNet,
    pub provider: String,
    pub source: Option<String>,
    pub status: IpBlockStatus,
    pub allocated_to: Option<String>,
    pub province: Option<char>,
    pub city: Option<String>,
    pub reported_by: Actor,
    pub reported_at: i64,
}

// ---- format 0 → current ----

impl From<Contact> for current::Contact {
    fn from(c: Contact) -> Self {
        current::Contact {
            name: c.name,
            mobile: c.mobile,
            email: c.email,
        }
    }
}

impl From<Subject> for current::Subject {
    fn from(s: Subject) -> Self {
        current::Subject {
            id: s.id,
            name: s.name,
            nature: s.nature,
            id_type: s.id_type,
            id_number: s.id_number,
            province: s.province,
            address: s.address,
            contact: s.contact.into(),
            owner: s.owner,
            number: s.number,
            last_website_index: s.last_website_index,
            warnings: s.warnings,
            created_at: s.created_at,
        }
    }
}

impl From<Status> for current::Status {
    fn from(s: Status) -> Self {
        match s {
            Status::AwaitingAccessVerification => current::Status::AwaitingAccessVerification,
            Status::AwaitingReview => current::Status::AwaitingReview,
            Status::Rejected => current::Status::Rejected,
            Status::Active => current::Status::Active,
            Status::Cancelled => current::Status::Cancelled,
            Status::Revoked => current::Status::Revoked,
        }
    }
}

impl From<ServiceKind> for crate::number::ServiceKind {
    fn from(k: ServiceKind) -> Self {
        match k {
            ServiceKind::Website => crate::number::ServiceKind::Website,
            ServiceKind::App => crate::number::ServiceKind::App,
            ServiceKind::MiniProgram => crate::number::ServiceKind::MiniProgram,
        }
    }
}

impl From<Filing> for current::Filing {
    fn from(f: Filing) -> Self {
        current::Filing {
            id: f.id,
            subject_id: f.subject_id,
            kind: f.kind.into(),
            name: f.name,
            homepage: f.homepage,
            domains: f.domains,
            ips: f.ips,
            providers: f
                .providers
                .into_iter()
                .map(|p| current::ProviderAccess {
                    name: p.name,
                    verified: p.verified,
                })
                .collect(),
            access_method: f.access_method,
            server_placement: f.server_placement,
            categories: f
                .categories
                .into_iter()
                .map(|c| current::CategoryEntry {
                    category: c.category,
                    pre_approval: c.pre_approval,
                    document: c.document,
                    check: None,
                })
                .collect(),
            operating_licence: f.operating_licence,
            status: f.status.into(),
            number: f.number,
            submitted_at: f.submitted_at,
            approved_at: f.approved_at,
            expires_at: f.expires_at,
            cert_serial: f.cert_serial,
            certificate: f.certificate.map(|c| current::IssuedCert {
                serial: c.serial,
                key_id: c.key_id,
                issued_at: c.issued_at,
                expires_at: c.expires_at,
                text: c.text,
            }),
            pending_change: f.pending_change.map(|p| current::PendingChange {
                domains: p.domains,
                requested_by: p.requested_by,
                requested_at: p.requested_at,
                details: Default::default(),
            }),
            cancellation: f.cancellation.map(|c| current::CancellationRequest {
                requested_by: c.requested_by,
                reason: c.reason,
                requested_at: c.requested_at,
            }),
            rejection: f.rejection,
            history: f
                .history
                .into_iter()
                .map(|h| current::HistoryEntry {
                    at: h.at,
                    actor: h.actor,
                    action: h.action,
                })
                .collect(),
            renewal: None,
            false_information: None,
            app_id: None,
            bulletin_board: None,
        }
    }
}

impl From<UserRecord> for crate::accounts::UserRecord {
    fn from(u: UserRecord) -> Self {
        crate::accounts::UserRecord {
            username: u.username,
            actor: u.actor,
            password_hash: u.password_hash,
            created_at: u.created_at,
            created_by: u.created_by,
        }
    }
}

impl From<crate::accounts::UserRecord> for UserRecord {
    fn from(u: crate::accounts::UserRecord) -> Self {
        UserRecord {
            username: u.username,
            actor: u.actor,
            password_hash: u.password_hash,
            created_at: u.created_at,
            created_by: u.created_by,
        }
    }
}

impl From<IpBlockStatus> for current::IpBlockStatus {
    fn from(s: IpBlockStatus) -> Self {
        match s {
            IpBlockStatus::Unallocated => current::IpBlockStatus::Unallocated,
            IpBlockStatus::Allocated => current::IpBlockStatus::Allocated,
            IpBlockStatus::Reallocated => current::IpBlockStatus::Reallocated,
            IpBlockStatus::Customer => current::IpBlockStatus::Customer,
            IpBlockStatus::RouterPort => current::IpBlockStatus::RouterPort,
        }
    }
}

impl From<IpFiling> for current::IpFiling {
    fn from(f: IpFiling) -> Self {
        current::IpFiling {
            id: f.id,
            network: f.network,
            provider: f.provider,
            source: f.source,
            status: f.status.into(),
            allocated_to: f.allocated_to,
            province: f.province,
            city: f.city,
            reported_by: f.reported_by,
            reported_at: f.reported_at,
        }
    }
}
