//! api (under construction)
