//! Host and domain names: IDNA normalisation to lower-case ASCII, the registrable domain
//! (public suffix list, via `psl`), and coverage (is a host under a filed domain). Pure.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a text is not a usable domain name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a valid domain name: {reason}")]
pub struct DomainError {
    pub text: String,
    pub reason: &'static str,
}

/// Normalise a host name: trim, strip one trailing dot, IDNA to ASCII (punycode), lower case.
/// IP literals are refused (use [`std::net::IpAddr`] for those).
pub fn normalise_host(text: &str) -> Result<String, DomainError> {
    normalise(text, true).map(Cow::into_owned)
}

/// [`normalise_host`] borrowing from `text` when it is already normal (plain lower-case
/// ASCII): no allocation for the common case.
pub fn normalise_host_cow(text: &str) -> Result<Cow<'_, str>, DomainError> {
    normalise(text, true)
}

/// Whether `t` is its own IDNA form: lower-case ASCII letters, digits, `-`, `.`, `_`, and
/// no punycode label (`xn--…` is checked by IDNA).
fn is_plain(t: &str) -> bool {
    t.bytes().all(|b| {
        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.' || b == b'_'
    }) && !t.starts_with("xn--")
        && !t.as_bytes().windows(5).any(|w| w == b".xn--")
}

/// Whether `t` could read as an IP address: IPv4 text has only digits and dots, IPv6 text a
/// colon. Anything else is not parsed (the parse would fail).
fn may_be_ip(t: &str) -> bool {
    t.bytes().all(|b| b.is_ascii_digit() || b == b'.') || t.contains(':')
}

/// The normalisation; `fast` takes plain names as they are instead of through IDNA (the
/// two agree: a property test holds them equal on arbitrary input).
fn normalise(text: &str, fast: bool) -> Result<Cow<'_, str>, DomainError> {
    let err = |reason| DomainError {
        text: text.to_string(),
        reason,
    };
    let t = text.trim();
    let t = t.strip_suffix('.').unwrap_or(t);
    if t.is_empty() {
        return Err(err("empty"));
    }
    if t.len() > 253 {
        return Err(err("longer than 253 characters"));
    }
    // Fast path: plain lower-case ASCII without punycode labels is its own IDNA form (the
    // common case, and every name read back from the store); the label checks below still run.
    let ascii = if fast && is_plain(t) {
        Cow::Borrowed(t)
    } else {
        Cow::Owned(idna::domain_to_ascii(t).map_err(|_| err("not a valid internationalised name"))?)
    };
    if ascii.is_empty() {
        return Err(err("empty"));
    }
    if may_be_ip(&ascii) && ascii.parse::<std::net::IpAddr>().is_ok() {
        return Err(err("an IP address, not a domain"));
    }
    for label in ascii.split('.') {
        if label.is_empty() {
            return Err(err("empty label"));
        }
        if label.len() > 63 {
            return Err(err("a label is longer than 63 characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(err("characters other than letters, digits and `-`"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(err("a label starts or ends with `-`"));
        }
    }
    Ok(ascii)
}

/// A registrable domain (eTLD+1): lower-case ASCII, no `www.`, e.g. `example.com.cn`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Domain(String);

impl Domain {
    /// Parse a registrable domain as filed. `www.example.com` and other subdomains are refused
    /// (file the registrable domain: the filing covers its subdomains), as are public suffixes.
    pub fn parse(text: &str) -> Result<Self, DomainError> {
        let host = normalise_host_cow(text)?;
        let reg = registrable(&host).ok_or_else(|| DomainError {
            text: text.to_string(),
            reason: "no registrable domain (is it a public suffix?)",
        })?;
        if reg != host {
            return Err(DomainError {
                text: text.to_string(),
                reason: "a subdomain; file the registrable domain instead",
            });
        }
        Ok(Domain(host.into_owned()))
    }

    /// The registrable domain of any host under it (`www.a.example.com.cn` → `example.com.cn`).
    pub fn of_host(text: &str) -> Result<Self, DomainError> {
        let host = normalise_host_cow(text)?;
        registrable(&host)
            .map(|d| Domain(d.to_string()))
            .ok_or_else(|| DomainError {
                text: text.to_string(),
                reason: "no registrable domain (is it a public suffix?)",
            })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `host` (already normalised) is this domain or under it.
    pub fn covers(&self, host: &str) -> bool {
        covers(&self.0, host)
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// Whether `host` is `domain` or under it (both already normalised): what
/// [`Domain::covers`] answers, for a domain held as text that [`Domain::parse`] accepted
/// unchanged (a certificate's domains), without parsing it again.
pub fn covers(domain: &str, host: &str) -> bool {
    host == domain
        || (host.len() > domain.len()
            && host.ends_with(domain)
            && host.as_bytes()[host.len() - domain.len() - 1] == b'.')
}

/// The registrable domain of a normalised host, as a suffix of it.
fn registrable(host: &str) -> Option<&str> {
    let d = psl::domain(host.as_bytes())?;
    // Only trust known suffixes; an unknown TLD (`.test`, `.example`, `.internal`) is
    // treated as a one-label suffix, which is what the PSL's default rule says.
    std::str::from_utf8(d.as_bytes()).ok()
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Domain {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Domain {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Domain::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrable_domains() {
        assert_eq!(
            Domain::parse("Example.COM.").unwrap().as_str(),
            "example.com"
        );
        assert_eq!(
            Domain::parse("example.com.cn").unwrap().as_str(),
            "example.com.cn"
        );
        assert_eq!(
            Domain::parse("示例.中国").unwrap().as_str(),
            "xn--fsq092h.xn--fiqs8s"
        );
        assert!(Domain::parse("www.example.com").is_err());
        assert!(Domain::parse("com.cn").is_err());
        assert!(Domain::parse("203.0.113.7").is_err());
        assert!(Domain::parse("exa mple.com").is_err());
        assert_eq!(Domain::parse("shop.test").unwrap().as_str(), "shop.test");
        assert_eq!(
            Domain::of_host("www.a.example.com.cn").unwrap().as_str(),
            "example.com.cn"
        );
    }

    #[test]
    fn the_ascii_fast_path_agrees_with_idna() {
        for name in [
            "example.com",
            "a-b.example.com.cn",
            "x_y.test",
            "xn--fsq092h.xn--fiqs8s",
            "EXAMPLE.com",
        ] {
            let fast = normalise_host(name).unwrap();
            let slow = idna::domain_to_ascii(name.trim_end_matches('.')).unwrap();
            assert_eq!(fast, slow, "{name}");
        }
        assert!(
            normalise_host("xn--zz.com").is_err() || idna::domain_to_ascii("xn--zz.com").is_ok()
        );
        assert!(normalise_host("-bad.com").is_err());
        assert!(normalise_host("a..com").is_err());
    }

    #[test]
    fn coverage() {
        let d = Domain::parse("example.com").unwrap();
        assert!(d.covers("example.com"));
        assert!(d.covers("www.example.com"));
        assert!(!d.covers("badexample.com"));
        assert!(!d.covers("example.com.evil.test"));
    }
    proptest::proptest! {
        /// The plain-ASCII fast path of `normalise_host` equals the IDNA path on arbitrary
        /// host-like text (case, punycode labels, digits, `_`, hyphens, dots, Unicode,
        /// spaces), errors included.
        #[test]
        fn normalise_fast_path_equals_idna_path(
            text in "[ ]?((xn--|XN--)?[a-zA-Z0-9_\\-éß示例中国İ]{0,8}[.。]?){0,5}[ .]?"
        ) {
            proptest::prop_assert_eq!(normalise(&text, true), normalise(&text, false));
        }

        #[test]
        fn normalise_fast_path_equals_idna_path_on_any_text(text in "\\PC{0,24}") {
            proptest::prop_assert_eq!(normalise(&text, true), normalise(&text, false));
        }

        /// Text `may_be_ip` passes over never parses as an IP address.
        #[test]
        fn may_be_ip_passes_over_no_address(
            text in "[0-9a-fA-F:.%\\[\\]x]{0,40}"
        ) {
            proptest::prop_assert!(may_be_ip(&text) || text.parse::<std::net::IpAddr>().is_err());
        }

        #[test]
        fn may_be_ip_takes_every_address(ip in proptest::prelude::any::<std::net::IpAddr>()) {
            proptest::prop_assert!(may_be_ip(&ip.to_string()));
        }

        /// `covers` on a parsed domain's text is `Domain::covers`.
        #[test]
        fn covers_text_equals_covers_parsed(
            domain in "[a-z0-9]{1,6}\\.(com|cn|com\\.cn|test)",
            host in "([a-z0-9]{0,4}\\.){0,2}[a-z0-9]{1,6}\\.(com|cn|com\\.cn|test)",
        ) {
            if let Ok(d) = Domain::parse(&domain) {
                proptest::prop_assert_eq!(covers(d.as_str(), &host), d.covers(&host));
                proptest::prop_assert_eq!(
                    covers(d.as_str(), &host),
                    host == d.as_str() || host.ends_with(&format!(".{d}"))
                );
            }
        }
    }
}
