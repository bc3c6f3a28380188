//! The embedded filing core: model, workflow (pure transitions), store traits (read-only and
//! read-write), the sled store (the only file naming sled), issuance (the only holder of the
//! signing key), the hash-chained audit log, and the snapshot exported for scanners.

pub mod import;
pub mod ipfiling;
pub mod issuance;
pub mod model;
pub mod service;
pub mod snapshot;
pub mod store;
pub mod workflow;

pub use service::{
    Applied, Change, FeedPage, ReplicaInfo, MAX_FEED_PAGE, PUBLIC_RECORD_KINDS, REPLICA_FILE,
};
pub use service::{
    DefaultRole, FilingKey, FilingView, ImportProgress, ImportReport, InitReport,
    PublishedRevocation, Registry, RegistryError, ReviewReport, StoreCheck, Submitter,
    DATABASE_URL_FILE, MAX_IMPORT_LINE,
};
pub use service::{IpImportReport, IpUnit, IpUnitBlock};
pub use store::any::Backend;
