//! Policy files on disk: they parse, every province file is embedded, and errors name the
//! file, line and column.

use std::path::Path;

use beian::verdict::{FindingCode, Policy, PolicyError, PolicySet, RequiredNumber};

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

#[test]
fn policy_files_on_disk_match_the_embedded_copies() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let national_path = root.join("national.toml");
    let national = read(&national_path);
    let p = Policy::national(&national_path.display().to_string(), &national).unwrap();
    assert_eq!(p.sha256, Policy::embedded_national().unwrap().sha256);

    let mut overrides = Vec::new();
    for entry in std::fs::read_dir(root.join("provinces")).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(path.extension().and_then(|e| e.to_str()), Some("toml"));
        overrides.push((path.display().to_string(), read(&path)));
    }
    assert!(overrides.len() >= 3);
    let refs: Vec<(&str, &str)> = overrides
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    let set =
        PolicySet::from_texts(&national_path.display().to_string(), &national, &refs).unwrap();
    let mut embedded = Policy::embedded_provinces();
    embedded.sort();
    let on_disk: Vec<char> = set.provinces.keys().copied().collect();
    assert_eq!(on_disk, embedded, "every province file is embedded");
    for (c, p) in &set.provinces {
        // File name = province abbreviation.
        assert!(p.sources[1].label.ends_with(&format!("{c}.toml")));
        assert_eq!(p.sha256, Policy::embedded_for_province(*c).unwrap().sha256);
    }
    assert_eq!(
        set.for_province(Some('粤')).required_number,
        RequiredNumber::Service
    );
}

#[test]
fn an_unknown_key_names_file_line_and_column() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/verdict");
    let text = read(&data.join("unknown_key.toml"));
    let err = Policy::merged(
        "national.toml",
        include_str!("../../policies/national.toml"),
        "tests/data/verdict/unknown_key.toml",
        &text,
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("tests/data/verdict/unknown_key.toml:8:1: "),
        "{msg}"
    );
    assert!(msg.contains("confirmatons"), "{msg}");
}

#[test]
fn a_national_policy_missing_codes_is_refused() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/verdict");
    let err =
        Policy::national("missing_code.toml", &read(&data.join("missing_code.toml"))).unwrap_err();
    assert_eq!(
        err,
        PolicyError::MissingCode {
            path: "missing_code.toml".into(),
            code: FindingCode::FilingRevoked.as_str(),
        }
    );
}
