//! Code tables loaded from `seeds/codes/*.csv` (provinces, subject natures, certificate
//! types, access methods, server placements, content categories, service types, cities and
//! counties, industries) and the
//! identity-number checks (USCC, resident ID). The tables are data: change the CSV, not the
//! code. The checks are pure.

mod identity;
mod tables;

pub use identity::{
    check_resident_id, check_uscc, resident_id_check_char, uscc_check_char, IdError, UsccCheck,
    USCC_CHARSET,
};
pub use tables::{
    Category, CodeError, CodeSources, CodeTables, IdChecker, IdType, Industry, Province, Region,
    ServiceType, CODE_FILES,
};
