//! accounts (under construction)
