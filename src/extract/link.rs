//! Which `href` values link to the MIIT filing system: an http(s) or protocol-relative URL
//! whose host is exactly one of [`MIIT_HOSTS`] (case-insensitive). The `href` is cleaned as
//! browsers do first: whitespace trimmed at both ends, tabs and newlines inside removed.

use url::Url;

/// Hosts of the MIIT ICP filing system that count as a filing link.
pub const MIIT_HOSTS: &[&str] = &[
    "beian.miit.gov.cn",
    "www.beian.miit.gov.cn",
    "www.miibeian.gov.cn",
    "www.miitbeian.gov.cn",
];

/// Clean an `href` as the URL parser does: strip leading/trailing C0 controls and spaces,
/// remove ASCII tabs and newlines anywhere.
pub fn clean_href(href: &str) -> String {
    href.trim_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect()
}

/// The MIIT host (lower case) an `href` links to, if it does. Relative links, `#`,
/// `javascript:` and every other host give `None`.
pub fn miit_host(href: &str) -> Option<String> {
    let cleaned = clean_href(href);
    let absolute = if cleaned.starts_with("//") {
        format!("https:{cleaned}")
    } else {
        cleaned
    };
    let url = Url::parse(&absolute).ok()?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return None;
    }
    let host = url.host_str()?.to_ascii_lowercase();
    MIIT_HOSTS.contains(&host.as_str()).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn miit_hosts_in_every_form() {
        for (href, host) in [
            ("https://beian.miit.gov.cn/", "beian.miit.gov.cn"),
            ("https://beian.miit.gov.cn", "beian.miit.gov.cn"),
            (
                "https://beian.miit.gov.cn/#/Integrated/index",
                "beian.miit.gov.cn",
            ),
            ("HTTP://WWW.MIIBEIAN.GOV.CN", "www.miibeian.gov.cn"),
            ("//beian.miit.gov.cn/", "beian.miit.gov.cn"),
            (
                "  \nhttp://www.miitbeian.gov.cn/publish/query/indexFirst.action ",
                "www.miitbeian.gov.cn",
            ),
            ("https://www.beian.\n  miit.gov.cn/", ""),
            ("https://www.beian.\nmiit.gov.cn/", "www.beian.miit.gov.cn"),
            (
                "https://www.beian.miit.gov.cn:443/?a=b",
                "www.beian.miit.gov.cn",
            ),
        ] {
            let want = (!host.is_empty()).then(|| host.to_string());
            assert_eq!(miit_host(href), want, "{href:?}");
        }
    }

    #[test]
    fn not_filing_links() {
        for href in [
            "",
            "#",
            "javascript:;",
            "javascript:window.open('https://beian.miit.gov.cn/')",
            "/beian",
            "beian.miit.gov.cn",
            "http://www.beian.gov.cn/portal/registerSystemInfo?recordcode=1",
            "http://www.miit.gov.cn/",
            "https://beian.miit.gov.cn.icp-query.example/",
            "https://beian.miit.gov.cn@evil.example/",
            "https://miibeian.gov.cn/",
            "ftp://beian.miit.gov.cn/",
            "https://seo.lookup.example/?u=https://beian.miit.gov.cn/",
        ] {
            assert_eq!(miit_host(href), None, "{href:?}");
        }
    }
}
