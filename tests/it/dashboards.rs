//! Dashboards and alert rules use only metrics that beian exports.

use std::path::Path;

fn metric_tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(pos) = text[i..].find("beian_") {
        let start = i + pos;
        let boundary_ok = start == 0 || {
            let b = bytes[start - 1];
            !(b.is_ascii_alphanumeric() || b == b'_')
        };
        let mut end = start;
        while end < bytes.len()
            && (bytes[end].is_ascii_lowercase()
                || bytes[end].is_ascii_digit()
                || bytes[end] == b'_')
        {
            end += 1;
        }
        if boundary_ok {
            out.push(text[start..end].to_string());
        }
        i = end.max(start + 1);
    }
    out
}

fn base_name(token: &str) -> &str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = token.strip_suffix(suffix) {
            if beian::metrics::METRIC_NAMES.contains(&base) {
                return base;
            }
        }
    }
    token
}

#[test]
fn every_metric_in_dashboards_and_rules_is_exported() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards");
    let mut checked = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("dashboards/ exists")
        .map(|e| e.expect("readable entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let text = std::fs::read_to_string(&path).expect("readable file");
        if path.extension().is_some_and(|e| e == "json") {
            let v: serde_json::Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: invalid JSON: {e}", path.display()));
            assert!(
                v["panels"].as_array().is_some_and(|p| !p.is_empty()),
                "{}: no panels",
                path.display()
            );
        }
        for token in metric_tokens(&text) {
            let name = base_name(&token);
            assert!(
                beian::metrics::METRIC_NAMES.contains(&name),
                "{}: uses {token}, which beian does not export",
                path.display()
            );
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} metric references found");
}

#[test]
fn alert_rules_have_for_durations() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards/alerts.yml"),
    )
    .expect("alerts.yml");
    let alerts = text.matches("- alert:").count();
    let fors = text.matches("\n        for: ").count();
    assert!(alerts >= 4);
    assert_eq!(alerts, fors, "every alert rule needs a `for:` duration");
}

#[test]
fn the_token_scanner_finds_metric_names() {
    assert_eq!(
        metric_tokens("rate(beian_scan_targets_total[5m]) / xbeian_no"),
        vec!["beian_scan_targets_total".to_string()]
    );
}
