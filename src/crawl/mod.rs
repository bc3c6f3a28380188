//! crawl (under construction)
