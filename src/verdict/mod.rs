//! verdict (under construction)
