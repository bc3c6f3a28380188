//! What the scanner saw at one target: facts only, no judgement. Produced by `crawl` (with
//! `extract` run on the homepage), consumed by `verdict` and `report`. Per-site problems are
//! fields here, never `Err`.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::extract::Extraction;

/// Why a fetch did not produce a usable response.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum FetchErrorKind {
    /// The name did not resolve (NXDOMAIN, SERVFAIL, no addresses, resolver timeout).
    Dns,
    /// The address (or a redirect target) is in a special-purpose range; nothing was sent.
    BlockedAddress,
    Connect,
    Tls,
    /// A connect or request timeout.
    Timeout,
    /// The hard per-target deadline passed (e.g. a server dribbling bytes).
    Deadline,
    TooManyRedirects,
    /// A redirect to a non-http(s) scheme or an unparseable location.
    BadRedirect,
    /// The body exceeded its cap (before or after decompression).
    BodyTooLarge,
    /// The connection was reset or closed before a complete response.
    Reset,
    /// The response head (status line and headers) was larger than the client accepts.
    HeaderTooLarge,
    /// A redirect led back to a URL already visited in the same chain.
    RedirectLoop,
    /// Any other protocol-level failure (including bytes that are not HTTP).
    Protocol,
}

impl FetchErrorKind {
    /// The stable snake_case name (the same as its serialised form); a closed set, safe as a
    /// metric label.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A fetch failure with a short human message (not from the page content).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchError {
    pub kind: FetchErrorKind,
    pub message: String,
}

/// One request in a redirect chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hop {
    pub url: String,
    pub status: Option<u16>,
    /// The address connected to, when known.
    pub address: Option<SocketAddr>,
}

/// One fetch (with its redirects) of one URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchRecord {
    /// The URL first requested.
    pub url: String,
    /// Every request made, in order; the last is the final response.
    pub hops: Vec<Hop>,
    /// Final status, when a response arrived.
    pub status: Option<u16>,
    pub content_type: Option<String>,
    /// Body bytes read (after decompression).
    pub bytes: u64,
    pub elapsed_ms: u64,
    pub error: Option<FetchError>,
    /// `Retry-After` seconds of a final 429/503, if any.
    pub retry_after: Option<u64>,
    /// The body was longer than its cap and only the first `bytes` were kept (homepages).
    #[serde(default)]
    pub truncated: bool,
}

/// DNS facts for the target host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsObservation {
    pub answers: Vec<IpAddr>,
    /// The address used for the first connection.
    pub used: Option<IpAddr>,
    pub error: Option<String>,
    /// Answers refused by the address guard.
    pub blocked: Vec<IpAddr>,
    pub elapsed_ms: u64,
}

/// What was found at a certificate path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertFetch {
    pub path: String,
    pub fetch: FetchRecord,
    /// The body when the final status was 2xx and it fit in the cap (64 KiB).
    #[serde(skip_serializing_if = "Option::is_none", with = "opt_b64", default)]
    pub body: Option<Vec<u8>>,
}

/// What became of rendering the homepage in headless Chromium.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum RenderStatus {
    /// The page was rendered and its DOM extracted (`Observation::page` is the rendered
    /// extraction).
    Rendered,
    /// The page needed rendering, but rendering is off (`--render off`).
    Off,
    /// The page needed rendering, but no renderer could be started (Chromium missing).
    Unavailable,
    /// The page did not finish within the render deadline.
    Timeout,
    /// The renderer failed on this page (crash, protocol error, navigation error).
    Failed,
}

impl RenderStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// One render of the homepage: facts only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderRecord {
    pub status: RenderStatus,
    /// The URL rendered.
    pub url: String,
    /// Requests the page made (the document included) that were let through.
    #[serde(default)]
    pub requests: u32,
    /// Requests refused: by the address guard, a non-http(s) scheme, or the per-page cap.
    #[serde(default)]
    pub blocked: u32,
    #[serde(default)]
    pub elapsed_ms: u64,
    /// A short message when the status is not `rendered`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Everything observed at one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// The target as given (domain or URL).
    pub target: String,
    /// The normalised host scanned.
    pub host: String,
    /// Unix seconds when the scan of this target started.
    pub started_at: i64,
    pub dns: DnsObservation,
    /// Whether private/special ranges were allowed (`--allow-private`).
    pub allow_private: bool,
    /// Homepage fetches: https first, then http if https failed.
    pub homepage: Vec<FetchRecord>,
    /// Index into `homepage` of the fetch whose body was used, if any.
    pub homepage_used: Option<usize>,
    /// The charset the homepage was decoded with.
    pub charset: Option<String>,
    /// Numbers and links read from the homepage.
    pub page: Option<Extraction>,
    /// `/cert/bazs.cert`.
    pub cert: Option<CertFetch>,
    /// `/cert/bazx.cert`, probed only when `bazs.cert` was missing.
    pub cert_misplaced: Option<CertFetch>,
    /// Rendering of the homepage, when its static text could not decide the footer
    /// ([`crate::extract::Extraction::needs_render`]).
    #[serde(default)]
    pub render: Option<RenderRecord>,
    pub elapsed_ms: u64,
}

mod opt_b64 {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(b)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        s.map(|s| {
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(serde::de::Error::custom)
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_record_without_truncated_reads_as_not_truncated() {
        let json = r#"{"url":"http://a.example/","hops":[],"status":200,"content_type":null,
            "bytes":3,"elapsed_ms":1,"error":null,"retry_after":null}"#;
        let record: FetchRecord = serde_json::from_str(json).unwrap();
        assert!(!record.truncated);
        let back: FetchRecord =
            serde_json::from_str(&serde_json::to_string(&record).unwrap()).unwrap();
        assert_eq!(back, record);
    }

    #[test]
    fn error_kind_names_match_their_serialised_form() {
        use FetchErrorKind as K;
        for k in [
            K::Dns,
            K::BlockedAddress,
            K::Connect,
            K::Tls,
            K::Timeout,
            K::Deadline,
            K::TooManyRedirects,
            K::BadRedirect,
            K::BodyTooLarge,
            K::Reset,
            K::HeaderTooLarge,
            K::RedirectLoop,
            K::Protocol,
        ] {
            assert_eq!(
                serde_json::to_string(&k).unwrap(),
                format!("\"{}\"", k.as_str())
            );
        }
    }
}
