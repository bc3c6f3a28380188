//! Known WAF / bot-challenge pages that answer 200: the page a scanner gets instead of the
//! site (a JavaScript check, a slider, a block notice). Such a page says nothing about the
//! site's footer.
//!
//! A page is a challenge when it carries one of the markers in [`MARKERS`] (script names,
//! cookie names set by the challenge script, challenge paths, fixed titles and phrases) **and**
//! shows little text of its own (at most [`MAX_TEXT_CHARS`] visible characters, no ICP number
//! in its ordinary text). The second condition keeps ordinary pages that merely load a
//! vendor's script, or write about these products, from being taken for challenges. Markers
//! are matched case-insensitively (ASCII) in the first [`SCAN_BYTES`] of the page.

/// A challenge page shows at most this many visible (non-whitespace) characters.
pub const MAX_TEXT_CHARS: u32 = 1500;

/// How much of the page is searched for markers.
pub const SCAN_BYTES: usize = 128 * 1024;

/// Stable names of the challenge families (the closed set [`detect`] returns).
pub const NAMES: &[&str] = &[
    "cloudflare",
    "aliyun_waf",
    "tencent_waf",
    "jiasule",
    "safedog",
    "wzws",
    "yunsuo",
    "baidu_yunjiasu",
    "akamai",
    "imperva",
    "ddos_guard",
    "bt_waf",
    "sucuri",
    "datadome",
    "aws_waf",
    "js_check",
];

/// (name, markers): any one marker (lower case) names the family. Earlier entries win.
pub const MARKERS: &[(&str, &[&str])] = &[
    // 百度云加速 ran on Cloudflare's challenge code: check it before Cloudflare. Plain vendor
    // names are no markers: ordinary sites show "protected by" badges.
    ("baidu_yunjiasu", &["yjs_js_security_passport"]),
    (
        "cloudflare",
        &[
            "_cf_chl_opt",
            "cf-browser-verification",
            "cf_chl_jschl",
            "cf_chl_prog",
            "jschl_vc",
            "jschl_answer",
            "<title>just a moment...</title>",
            "attention required! | cloudflare",
        ],
    ),
    (
        "aliyun_waf",
        &[
            "acw_sc__v2",
            "acw_sc__v3",
            "aliyun_waf_aa",
            "aliyun_waf_oo",
            "_waf_bd8ce2ce37",
            "/_____tmd_____/",
        ],
    ),
    (
        "tencent_waf",
        &["qcloud/security/static", "waf.tencent-cloud.com"],
    ),
    (
        "jiasule",
        &["__jsl_clearance", "('_')+('_')+('j')+('s')+('l')"],
    ),
    (
        "safedog",
        &[
            "webshieldsessionverify",
            "webshielddrsessionverify",
            "safedog-flow-item",
        ],
    ),
    (
        "wzws",
        &[
            "wzwschallenge",
            "wzwsconfirm",
            "wzwstemplate",
            "wzwsquestion",
            "wzws_cid",
        ],
    ),
    ("yunsuo", &["yunsuo_session_verify", "yunsuologo"]),
    (
        "akamai",
        &[
            "/_sec/cp_challenge/",
            "sec-if-cpt-container",
            "_sec/verify?provider=interstitial",
        ],
    ),
    (
        "imperva",
        &[
            "_incapsula_resource",
            "incapsula incident id",
            "imperva incident id",
        ],
    ),
    (
        "ddos_guard",
        &[
            "check.ddos-guard.net",
            "/.well-known/ddos-guard/",
            "<title>ddos-guard</title>",
        ],
    ),
    ("bt_waf", &["宝塔防火墙正在", "宝塔网站防火墙", "/btwaf_"]),
    (
        "sucuri",
        &["sucuri_cloudproxy_js", "sucuri website firewall"],
    ),
    ("datadome", &["captcha-delivery.com"]),
    (
        "aws_waf",
        &[
            "awswafintegration",
            "awswafcookiedomainlist",
            ".token.awswaf.com",
        ],
    ),
    (
        "js_check",
        &[
            "请开启javascript并刷新该页",
            "请启用javascript并刷新该页",
            "please enable javascript and cookies to continue",
        ],
    ),
];

/// The challenge family `html` belongs to, if any. `text_chars` is the page's visible text
/// size and `shows_number` whether its ordinary text shows an ICP number.
pub fn detect(html: &str, text_chars: u32, shows_number: bool) -> Option<&'static str> {
    if text_chars > MAX_TEXT_CHARS || shows_number {
        return None;
    }
    let mut end = html.len().min(SCAN_BYTES);
    while !html.is_char_boundary(end) {
        end -= 1;
    }
    let lower = html[..end].to_ascii_lowercase();
    MARKERS
        .iter()
        .find(|(_, markers)| markers.iter().any(|m| lower.contains(m)))
        .map(|(name, _)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_lower_case_and_named() {
        for (name, markers) in MARKERS {
            assert!(NAMES.contains(name), "{name}");
            for m in *markers {
                assert_eq!(m.to_ascii_lowercase(), *m, "{m}");
            }
        }
        for name in NAMES {
            assert!(MARKERS.iter().any(|(n, _)| n == name), "{name}");
        }
    }

    #[test]
    fn known_pages() {
        for (page, want) in [
            (
                "<html><head><title>Just a moment...</title></head><body><script>window._cf_chl_opt={}</script></body></html>",
                "cloudflare",
            ),
            (
                "<html><script>var arg1='AB12';document.cookie='acw_sc__v2='+x;</script></html>",
                "aliyun_waf",
            ),
            (
                "<script>document.cookie=('_')+('_')+('j')+('s')+('l')+('_')</script>",
                "jiasule",
            ),
            ("<p>请开启JavaScript并刷新该页.</p>", "js_check"),
            ("<script src=\"/_Incapsula_Resource?SWJIYLWA=1\"></script>", "imperva"),
        ] {
            assert_eq!(detect(page, 20, false), Some(want), "{page}");
        }
    }

    #[test]
    fn ordinary_pages_are_not_challenges() {
        let page = "<script src=\"https://cdnjs.cloudflare.com/ajax/libs/jquery.js\"></script>\
                    <script src=\"/cdn-cgi/challenge-platform/scripts/jsd/main.js\"></script>";
        assert_eq!(detect(page, 20, false), None);
        let badge = "<p>本站由百度云加速提供加速与防护 网站安全狗 加速乐</p>";
        assert_eq!(detect(badge, 30, false), None);
        // A long article about WAFs, or a page that shows its number, is not a challenge.
        assert_eq!(detect("acw_sc__v2", MAX_TEXT_CHARS + 1, false), None);
        assert_eq!(detect("acw_sc__v2", 10, true), None);
        assert_eq!(detect("", 0, false), None);
    }
}
