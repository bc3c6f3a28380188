//! Shared lab settings for the network tests: a scanner configuration that reaches only the
//! given loopback address (allowed past the guard), with the test's host names mapped to it and
//! no rate limits. Each test module adjusts timeouts and features on top.

use beian::crawl::ScanConfig;

/// The scanner configuration of a loopback lab at `ip` serving `hosts`.
pub fn lab_config(ip: &str, hosts: &[&str]) -> ScanConfig {
    let mut config = ScanConfig {
        allow_nets: vec![format!("{ip}/32").parse().unwrap()],
        rate: None,
        host_rate: None,
        dns_timeout_ms: 2_000,
        ..ScanConfig::default()
    };
    for h in hosts {
        config
            .overrides
            .insert(h.to_string(), vec![ip.parse().unwrap()]);
    }
    config
}
