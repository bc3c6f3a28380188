//! `deploy/`: the Dockerfile, the Kubernetes manifests and the Prometheus scrape configuration.
//! No cluster runs here (and kubeconform cannot be installed), so the manifests are parsed and
//! the fields that matter are checked: the shard index and count, resources, probes, non-root,
//! ports that agree with the listen addresses — and every `beian` command they run is checked
//! against the built binary's own `--help`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use serde::Deserialize;
use serde_yaml::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every YAML document of a file (anchors resolved).
fn documents(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|d| {
            let mut v = Value::deserialize(d).expect("valid YAML");
            v.apply_merge().expect("merge keys");
            v
        })
        .filter(|v| !v.is_null())
        .collect()
}

fn manifests() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root().join("deploy/k8s")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            for d in documents(&std::fs::read_to_string(&path).unwrap()) {
                out.push((name.clone(), d));
            }
        }
    }
    // The Indexed Job the scan driver creates lives in a ConfigMap: it is a manifest too.
    let embedded: Vec<(String, Value)> = out
        .iter()
        .filter(|(_, d)| d["kind"] == "ConfigMap")
        .flat_map(|(file, d)| {
            d["data"]
                .as_mapping()
                .into_iter()
                .flatten()
                .filter(|(k, _)| k.as_str().is_some_and(|k| k.ends_with(".yaml")))
                .flat_map(|(_, text)| documents(text.as_str().unwrap()))
                .map(|d| (format!("{file} (ConfigMap)"), d))
                .collect::<Vec<_>>()
        })
        .collect();
    out.extend(embedded);
    assert!(
        out.len() >= 8,
        "expected the serve and scan manifests, got {}",
        out.len()
    );
    out
}

fn find<'a>(all: &'a [(String, Value)], kind: &str, name_part: &str) -> &'a Value {
    &all.iter()
        .find(|(_, d)| {
            d["kind"] == kind
                && d["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.contains(name_part))
        })
        .unwrap_or_else(|| panic!("no {kind} named *{name_part}*"))
        .1
}

/// The pod spec of a workload (Deployment, StatefulSet, Job, CronJob).
fn pod_spec(d: &Value) -> &Value {
    match d["kind"].as_str() {
        Some("CronJob") => &d["spec"]["jobTemplate"]["spec"]["template"]["spec"],
        _ => &d["spec"]["template"]["spec"],
    }
}

fn containers(pod: &Value) -> Vec<&Value> {
    ["initContainers", "containers"]
        .iter()
        .flat_map(|k| pod[*k].as_sequence().into_iter().flatten())
        .collect()
}

fn env<'a>(c: &'a Value, name: &str) -> Option<&'a Value> {
    c["env"]
        .as_sequence()?
        .iter()
        .find(|e| e["name"].as_str() == Some(name))
}

/// The uid the Dockerfile runs as.
fn image_uid() -> u64 {
    let docker = read("deploy/Dockerfile");
    let user = docker
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER line");
    user.split(':')
        .next()
        .unwrap()
        .trim()
        .parse()
        .expect("numeric uid")
}

#[test]
fn dockerfile_is_multi_stage_non_root_with_chromium() {
    let docker = read("deploy/Dockerfile");
    let stages = docker.lines().filter(|l| l.starts_with("FROM ")).count();
    assert!(stages >= 2, "multi-stage build expected");
    assert!(image_uid() > 0, "the image must not run as root");
    for package in ["chromium", "fonts-noto-cjk", "ca-certificates"] {
        assert!(
            docker.contains(package),
            "{package} missing from the runtime image"
        );
    }
    assert!(docker.contains("cargo build --release --locked"));
    // Everything the build needs is copied (Cargo.toml names the tests and benches; the
    // binary embeds templates, policies and seeds).
    for dir in ["src", "benches", "tests", "templates", "policies", "seeds"] {
        assert!(
            docker.contains(&format!("COPY {dir} ./{dir}")),
            "the build stage does not copy {dir}/"
        );
        assert!(root().join(dir).is_dir());
    }
    let ignore = read(".dockerignore");
    assert!(ignore.lines().any(|l| l.trim() == "target"));
}

#[test]
fn every_workload_runs_non_root_with_resources() {
    let all = manifests();
    let uid = image_uid();
    let mut workloads = 0;
    for (file, d) in &all {
        if !matches!(
            d["kind"].as_str(),
            Some("Deployment" | "StatefulSet" | "Job" | "CronJob")
        ) {
            continue;
        }
        workloads += 1;
        let pod = pod_spec(d);
        let what = format!("{file}: {}", d["metadata"]["name"].as_str().unwrap_or("?"));
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{what}");
        assert_eq!(
            pod["securityContext"]["runAsUser"].as_u64(),
            Some(uid),
            "{what}"
        );
        let cs = containers(pod);
        assert!(!cs.is_empty(), "{what}: no containers");
        for c in cs {
            let name = c["name"].as_str().unwrap_or("?");
            let r = &c["resources"];
            assert!(
                r["requests"]["cpu"].is_string(),
                "{what}/{name}: cpu request"
            );
            assert!(
                r["requests"]["memory"].is_string(),
                "{what}/{name}: memory request"
            );
            assert!(
                r["limits"]["memory"].is_string(),
                "{what}/{name}: memory limit"
            );
            assert_eq!(
                c["securityContext"]["allowPrivilegeEscalation"], false,
                "{what}/{name}"
            );
        }
    }
    assert_eq!(
        workloads, 4,
        "serve Deployment, replica StatefulSet, scan CronJob, shard Job"
    );
}

#[test]
fn serve_probes_ports_and_database_agree() {
    let all = manifests();
    let deployment = find(&all, "Deployment", "serve");
    let pod = pod_spec(deployment);
    let serve = &pod["containers"][0];
    assert_eq!(serve["args"][0], "serve");
    let port = |name: &str| -> u64 {
        serve["ports"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|p| p["name"].as_str() == Some(name))
            .and_then(|p| p["containerPort"].as_u64())
            .unwrap_or_else(|| panic!("no port named {name}"))
    };
    let listen = |var: &str| -> u64 {
        env(serve, var).unwrap()["value"]
            .as_str()
            .unwrap()
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(port("http"), listen("BEIAN_LISTEN"));
    assert_eq!(port("metrics"), listen("BEIAN_METRICS_LISTEN"));
    for (probe, path) in [
        ("readinessProbe", "/readyz"),
        ("livenessProbe", "/healthz"),
        ("startupProbe", "/healthz"),
    ] {
        assert_eq!(serve[probe]["httpGet"]["path"], path, "{probe}");
        assert_eq!(serve[probe]["httpGet"]["port"], "http", "{probe}");
    }
    // The database URL comes from a Secret, never from the manifest.
    let db = env(serve, "BEIAN_DATABASE_URL").expect("BEIAN_DATABASE_URL");
    assert!(db["value"].is_null());
    assert!(db["valueFrom"]["secretKeyRef"]["name"].is_string());
    // The Service routes to these pods and names the same ports.
    let service = find(&all, "Service", "beian");
    for (k, v) in deployment["spec"]["selector"]["matchLabels"]
        .as_mapping()
        .unwrap()
    {
        assert_eq!(&service["spec"]["selector"][k], v);
    }
}

/// The public replicas follow the primary's Service with the token the primary accepts,
/// keep their copy on their own volume, and are probed like the primary.
#[test]
fn replicas_follow_the_serve_service_with_its_token() {
    let all = manifests();
    let set = find(&all, "StatefulSet", "replica");
    let pod = pod_spec(set);
    let c = &pod["containers"][0];
    assert_eq!(c["args"][0], "serve");
    let source = env(c, "BEIAN_REPLICA_OF").unwrap()["value"]
        .as_str()
        .unwrap()
        .to_string();
    let service = find(&all, "Service", "beian");
    let name = service["metadata"]["name"].as_str().unwrap();
    let port = service["spec"]["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "http")
        .unwrap()["port"]
        .as_u64()
        .unwrap();
    assert_eq!(source, format!("http://{name}:{port}"));
    // The same Secret on both sides, never a literal.
    let primary = &pod_spec(find(&all, "Deployment", "serve"))["containers"][0];
    let theirs = &env(c, "BEIAN_REPLICATION_TOKEN").unwrap()["valueFrom"]["secretKeyRef"];
    let ours = &env(primary, "BEIAN_REPLICATION_TOKEN").unwrap()["valueFrom"]["secretKeyRef"];
    assert!(theirs["name"].is_string());
    assert_eq!(theirs["name"], ours["name"]);
    assert_eq!(theirs["key"], ours["key"]);
    // The registry directory is the claimed volume.
    let dir = env(c, "BEIAN_REGISTRY").unwrap()["value"].as_str().unwrap();
    let mount = c["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == dir)
        .expect("the registry directory is mounted");
    let claims = set["spec"]["volumeClaimTemplates"].as_sequence().unwrap();
    assert!(claims
        .iter()
        .any(|t| t["metadata"]["name"] == mount["name"]));
    for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")] {
        assert_eq!(c[probe]["httpGet"]["path"], path, "{probe}");
    }
    // Its own Service, so public traffic never reaches the primary.
    let public = find(&all, "Service", "public");
    assert_eq!(
        public["spec"]["selector"]["app.kubernetes.io/component"],
        "replica"
    );
}

#[test]
fn the_scan_is_an_indexed_job_then_a_merge() {
    let all = manifests();
    let shards = find(&all, "Job", "shards");
    let spec = &shards["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    let completions = spec["completions"].as_u64().expect("completions");
    assert!(completions > 1);
    assert_eq!(spec["parallelism"].as_u64(), Some(completions));
    let scan = &pod_spec(shards)["containers"][0];
    let count = env(scan, "BEIAN_SHARD_COUNT").expect("BEIAN_SHARD_COUNT")["value"]
        .as_str()
        .unwrap()
        .parse::<u64>()
        .unwrap();
    assert_eq!(
        count, completions,
        "BEIAN_SHARD_COUNT must equal completions"
    );
    let index = env(scan, "JOB_COMPLETION_INDEX").expect("JOB_COMPLETION_INDEX");
    assert_eq!(
        index["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    );
    let args: Vec<&str> = scan["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let out = args.iter().position(|a| *a == "--out").expect("--out");
    assert!(args[out + 1].contains("$(JOB_COMPLETION_INDEX)"));

    // The CronJob: snapshot, then the shards (created from the ConfigMap's template and
    // waited for), then the merge of exactly those shards.
    let cron = find(&all, "CronJob", "scan");
    assert_eq!(cron["spec"]["concurrencyPolicy"], "Forbid");
    let pod = pod_spec(cron);
    let init: Vec<&str> = pod["initContainers"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(init, ["snapshot", "shards"]);
    let script = |c: &Value| c["args"][0].as_str().unwrap().to_string();
    assert!(script(&pod["initContainers"][1]).contains("/etc/beian-scan/shards.yaml"));
    let merge = script(&pod["containers"][0]);
    assert!(merge.contains("beian scan merge"));
    assert!(merge.contains("shard-*.jsonl"));
    // The driver's Role can create and watch Jobs, nothing more.
    let role = find(&all, "Role", "scan-driver");
    let rules = role["rules"].as_sequence().unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0]["resources"][0], "jobs");
    assert_eq!(pod["serviceAccountName"], "beian-scan-driver");
    // Every shell script parses.
    for c in containers(pod) {
        if c["command"][0] == "/bin/sh" {
            let status = Command::new("sh")
                .args(["-n", "-c", &script(c)])
                .status()
                .unwrap();
            assert!(
                status.success(),
                "{}: shell syntax",
                c["name"].as_str().unwrap()
            );
        }
    }
}

/// Each `beian …` command line in the manifests: its subcommand path and the flags it uses.
fn beian_commands(all: &[(String, Value)]) -> Vec<(Vec<String>, Vec<String>)> {
    let mut out = Vec::new();
    let mut words_of = |words: Vec<String>| {
        let path: Vec<String> = words
            .iter()
            .take_while(|w| !w.starts_with('-') && !w.starts_with('/') && !w.contains('"'))
            .cloned()
            .collect();
        let flags: Vec<String> = words
            .iter()
            .filter(|w| w.starts_with("--"))
            .map(|w| w.split('=').next().unwrap().to_string())
            .collect();
        out.push((path, flags));
    };
    for (_, d) in all {
        if !matches!(
            d["kind"].as_str(),
            Some("Deployment" | "StatefulSet" | "Job" | "CronJob")
        ) {
            continue;
        }
        for c in containers(pod_spec(d)) {
            if !c["image"].as_str().unwrap_or("").contains("beian") {
                continue;
            }
            let args: Vec<String> = c["args"]
                .as_sequence()
                .into_iter()
                .flatten()
                .map(|a| a.as_str().unwrap().to_string())
                .collect();
            if c["command"][0] == "/bin/sh" {
                // Shell scripts: each line (continuations joined) that runs beian.
                let text = args.join("\n").replace("\\\n", " ");
                for line in text.lines() {
                    if let Some(rest) = line.trim().strip_prefix("beian ") {
                        words_of(rest.split_whitespace().map(str::to_string).collect());
                    }
                }
            } else {
                words_of(args);
            }
        }
    }
    out
}

#[test]
fn every_beian_command_in_the_manifests_is_one_the_binary_accepts() {
    let all = manifests();
    let commands = beian_commands(&all);
    let seen: BTreeSet<String> = commands.iter().map(|(p, _)| p.join(" ")).collect();
    for expected in [
        "serve",
        "scan",
        "scan merge",
        "snapshot export",
        "keys export",
    ] {
        assert!(
            seen.contains(expected),
            "no `beian {expected}` in the manifests: {seen:?}"
        );
    }
    let bin = env!("CARGO_BIN_EXE_beian");
    for (path, flags) in &commands {
        let out = Command::new(bin).args(path).arg("--help").output().unwrap();
        assert!(
            out.status.success(),
            "beian {} --help failed",
            path.join(" ")
        );
        let help = String::from_utf8_lossy(&out.stdout);
        for flag in flags {
            assert!(
                help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n")),
                "`beian {}` has no flag {flag}",
                path.join(" ")
            );
        }
    }
    // Environment variables the manifests set for beian are ones it reads (clap lists them
    // as `[env: NAME=]`), apart from those Kubernetes or the scripts use.
    let scan_help = String::from_utf8_lossy(
        &Command::new(bin)
            .args(["scan", "--help"])
            .output()
            .unwrap()
            .stdout,
    )
    .to_string();
    let serve_help = String::from_utf8_lossy(
        &Command::new(bin)
            .args(["serve", "--help"])
            .output()
            .unwrap()
            .stdout,
    )
    .to_string();
    // clap wraps long lines: compare with white space runs collapsed.
    let collapse = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
    let (scan_help, serve_help) = (collapse(&scan_help), collapse(&serve_help));
    let read_by_shard_code = ["JOB_COMPLETION_INDEX", "BEIAN_SHARD_COUNT"];
    for (_, d) in &all {
        if !matches!(
            d["kind"].as_str(),
            Some("Deployment" | "StatefulSet" | "Job" | "CronJob")
        ) {
            continue;
        }
        for c in containers(pod_spec(d)) {
            for e in c["env"].as_sequence().into_iter().flatten() {
                let name = e["name"].as_str().unwrap();
                if !name.starts_with("BEIAN_") || read_by_shard_code.contains(&name) {
                    continue;
                }
                assert!(
                    scan_help.contains(&format!("[env: {name}"))
                        || serve_help.contains(&format!("[env: {name}")),
                    "beian does not read {name}"
                );
            }
        }
    }
}

#[test]
fn prometheus_scrapes_the_metrics_port_of_the_serve_pods() {
    let docs = documents(&read("deploy/prometheus/scrape.yml"));
    let job = &docs[0]["scrape_configs"][0];
    assert_eq!(job["metrics_path"], "/metrics");
    let relabels = job["relabel_configs"].as_sequence().unwrap();
    let keep = |label: &str| -> String {
        relabels
            .iter()
            .find(|r| r["action"] == "keep" && r["source_labels"][0] == label)
            .and_then(|r| r["regex"].as_str())
            .unwrap_or_else(|| panic!("no keep on {label}"))
            .to_string()
    };
    let all = manifests();
    let deployment = find(&all, "Deployment", "serve");
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    assert_eq!(
        labels["app.kubernetes.io/name"].as_str(),
        Some(keep("__meta_kubernetes_pod_label_app_kubernetes_io_name").as_str())
    );
    let port_name = keep("__meta_kubernetes_pod_container_port_name");
    let ports = pod_spec(deployment)["containers"][0]["ports"]
        .as_sequence()
        .unwrap();
    assert!(ports
        .iter()
        .any(|p| p["name"].as_str() == Some(port_name.as_str())));
}
