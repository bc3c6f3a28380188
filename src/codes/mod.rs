//! codes (under construction)
