//! Name resolution for the scanner: hickory (a configured server, else the system
//! configuration, else a public default), per-host overrides for labs, and the address guard
//! applied to every answer. Also the `reqwest::dns::Resolve` implementation, so every
//! connection reqwest makes — redirect hops to other hosts included — goes through the same
//! resolver and guard.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfigGroup, ResolverConfig, ResolverOpts,
};
use hickory_resolver::TokioAsyncResolver;

use super::config::ScanConfig;
use super::guard::AddressGuard;
use crate::observation::DnsObservation;

/// The name did not resolve to any address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("could not resolve {host}: {message}")]
pub struct ResolveFailure {
    pub host: String,
    pub message: String,
}

/// Every address of the host is in a special-purpose range; nothing was connected to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{host} resolves only to refused addresses: {addresses:?}")]
pub struct BlockedAddress {
    pub host: String,
    pub addresses: Vec<IpAddr>,
}

/// What a lookup found, split by the guard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolution {
    /// All answers, in the order received.
    pub answers: Vec<IpAddr>,
    /// Answers the guard allows.
    pub allowed: Vec<IpAddr>,
    /// Answers the guard refused.
    pub blocked: Vec<IpAddr>,
}

/// hickory plus overrides plus the address guard. Shared by the scanner and by reqwest.
pub struct Resolver {
    hickory: TokioAsyncResolver,
    overrides: HashMap<String, Vec<IpAddr>>,
    guard: AddressGuard,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("overrides", &self.overrides)
            .field("guard", &self.guard)
            .finish_non_exhaustive()
    }
}

impl Resolver {
    /// Build from the scan configuration. Override names are normalised (invalid ones are
    /// rejected by [`ScanConfig::validate`]).
    pub fn new(config: &ScanConfig) -> Self {
        let (resolver_config, opts) = match config.dns {
            Some(server) => {
                let mut opts = ResolverOpts::default();
                opts.use_hosts_file = false;
                let group =
                    NameServerConfigGroup::from_ips_clear(&[server.ip()], server.port(), true);
                (ResolverConfig::from_parts(None, vec![], group), opts)
            }
            None => system_or_default(),
        };
        let opts = scanner_opts(opts, config);
        let overrides = config
            .overrides
            .iter()
            .map(|(host, ips)| {
                let key = crate::domain::normalise_host(host).unwrap_or_else(|_| host.clone());
                (key, ips.clone())
            })
            .collect();
        Self {
            hickory: TokioAsyncResolver::tokio(resolver_config, opts),
            overrides,
            guard: AddressGuard::new(config.allow_private, config.allow_nets.clone()),
        }
    }

    pub fn guard(&self) -> &AddressGuard {
        &self.guard
    }

    /// Look `host` up (an override, else DNS) and split the answers with the guard.
    /// An IP literal resolves to itself.
    pub async fn lookup(&self, host: &str) -> Result<Resolution, ResolveFailure> {
        let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
        let answers: Vec<IpAddr> = if let Ok(ip) = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            vec![ip]
        } else if let Some(ips) = self.overrides.get(&host) {
            ips.clone()
        } else {
            // A trailing dot: the name is absolute, no search domains are appended.
            let fqdn = format!("{host}.");
            let lookup =
                self.hickory
                    .lookup_ip(fqdn.as_str())
                    .await
                    .map_err(|e| ResolveFailure {
                        host: host.clone(),
                        message: e.to_string(),
                    })?;
            let mut ips: Vec<IpAddr> = Vec::new();
            for ip in lookup.iter() {
                if !ips.contains(&ip) {
                    ips.push(ip);
                }
            }
            ips
        };
        if answers.is_empty() {
            return Err(ResolveFailure {
                host,
                message: "no addresses".into(),
            });
        }
        let (allowed, blocked) = answers
            .iter()
            .copied()
            .partition(|ip| self.guard.is_allowed(*ip));
        Ok(Resolution {
            answers,
            allowed,
            blocked,
        })
    }

    /// Look `host` up and record the facts for an observation.
    pub async fn observe(&self, host: &str) -> (DnsObservation, Option<Resolution>) {
        let start = Instant::now();
        let result = self.lookup(host).await;
        let elapsed_ms = elapsed_ms(start);
        match result {
            Ok(r) => (
                DnsObservation {
                    answers: r.answers.clone(),
                    used: None,
                    error: None,
                    blocked: r.blocked.clone(),
                    elapsed_ms,
                },
                Some(r),
            ),
            Err(e) => (
                DnsObservation {
                    error: Some(e.message),
                    elapsed_ms,
                    ..DnsObservation::default()
                },
                None,
            ),
        }
    }
}

/// The resolver options a scan uses, over the base ones (the system's or hickory's):
/// - AAAA is asked only when there is no A record: one query for most names;
/// - the cache holds `dns_cache_size` answers, each reused for at least `dns_min_ttl_s`
///   (one target's lookups ask once even when the server answers with TTL 0);
/// - one server is asked at a time (hickory's default asks two at once where the system
///   names two or more, which doubles the queries and sockets of a scan); a server that
///   fails or is slow is moved back by hickory's statistics ordering.
fn scanner_opts(mut opts: ResolverOpts, config: &ScanConfig) -> ResolverOpts {
    opts.timeout = config.dns_timeout();
    opts.attempts = 2;
    opts.ip_strategy = LookupIpStrategy::Ipv4thenIpv6;
    opts.cache_size = config.dns_cache_size;
    if config.dns_min_ttl_s > 0 {
        opts.positive_min_ttl = Some(config.dns_min_ttl());
    }
    opts.num_concurrent_reqs = 1;
    opts
}

fn system_or_default() -> (ResolverConfig, ResolverOpts) {
    match hickory_resolver::system_conf::read_system_conf() {
        Ok((config, opts)) if !config.name_servers().is_empty() => (config, opts),
        Ok(_) => {
            tracing::warn!("the system resolver configuration names no servers; using the default public resolvers");
            (ResolverConfig::default(), ResolverOpts::default())
        }
        Err(e) => {
            tracing::warn!(error = %e, "unusable system resolver configuration; using the default public resolvers");
            (ResolverConfig::default(), ResolverOpts::default())
        }
    }
}

pub(crate) fn elapsed_ms(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The resolver reqwest uses for every connection: refuses with [`BlockedAddress`] when all
/// answers are refused by the guard, with [`ResolveFailure`] when there are none.
#[derive(Debug, Clone)]
pub struct GuardedResolve(pub Arc<Resolver>);

impl reqwest::dns::Resolve for GuardedResolve {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let resolver = self.0.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let r = resolver.lookup(&host).await?;
            if r.allowed.is_empty() {
                return Err(Box::new(BlockedAddress {
                    host,
                    addresses: r.blocked,
                })
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            // Port 0 is replaced by the URL's port (or the scheme's default) by reqwest.
            let addrs: reqwest::dns::Addrs =
                Box::new(r.allowed.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ScanConfig {
        let mut c = ScanConfig {
            allow_nets: vec!["127.0.0.2/32".parse().unwrap()],
            ..ScanConfig::default()
        };
        c.overrides
            .insert("Lab.Example".into(), vec!["127.0.0.2".parse().unwrap()]);
        c.overrides.insert(
            "mixed.example".into(),
            vec!["10.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap()],
        );
        c.overrides
            .insert("private.example".into(), vec!["127.0.0.1".parse().unwrap()]);
        c
    }

    #[tokio::test]
    async fn overrides_go_through_the_guard() {
        let r = Resolver::new(&config());
        let lab = r.lookup("lab.example").await.unwrap();
        assert_eq!(lab.allowed, vec!["127.0.0.2".parse::<IpAddr>().unwrap()]);
        assert!(lab.blocked.is_empty());

        let mixed = r.lookup("MIXED.example.").await.unwrap();
        assert_eq!(mixed.answers.len(), 2);
        assert_eq!(mixed.blocked, vec!["10.0.0.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(mixed.allowed.len(), 1);

        let private = r.lookup("private.example").await.unwrap();
        assert!(private.allowed.is_empty());
        assert_eq!(private.blocked.len(), 1);
    }

    #[tokio::test]
    async fn reqwest_resolve_refuses_blocked_hosts() {
        use reqwest::dns::Resolve;
        let r = GuardedResolve(Arc::new(Resolver::new(&config())));
        let err = match r.resolve("private.example".parse().unwrap()).await {
            Ok(_) => panic!("private.example must be refused"),
            Err(e) => e,
        };
        assert!(err.downcast_ref::<BlockedAddress>().is_some(), "{err}");
        let addrs: Vec<SocketAddr> = r
            .resolve("mixed.example".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert_eq!(addrs, vec!["127.0.0.2:0".parse().unwrap()]);
    }

    #[tokio::test]
    async fn ip_literal_resolves_to_itself() {
        let r = Resolver::new(&config());
        let res = r.lookup("[::1]").await.unwrap();
        assert_eq!(res.blocked, vec!["::1".parse::<IpAddr>().unwrap()]);
    }
    #[test]
    fn scanner_options() {
        let mut c = config();
        c.dns_cache_size = 77;
        let opts = scanner_opts(ResolverOpts::default(), &c);
        assert_eq!(opts.ip_strategy, LookupIpStrategy::Ipv4thenIpv6);
        assert_eq!(opts.cache_size, 77);
        assert_eq!(opts.positive_min_ttl, Some(c.dns_min_ttl()));
        assert_eq!(opts.num_concurrent_reqs, 1);
        assert_eq!(opts.timeout, c.dns_timeout());
        c.dns_min_ttl_s = 0;
        assert_eq!(
            scanner_opts(ResolverOpts::default(), &c).positive_min_ttl,
            None
        );
    }

    /// Lookups of one name against a loopback server answering with TTL 0: one A query for
    /// a target's lookups with the minimum TTL, one per lookup without it; AAAA never asked
    /// for a name that has an A record.
    #[tokio::test]
    async fn one_query_per_name_even_at_ttl_zero() {
        use super::super::labdns::LabDns;
        let dns = LabDns::start(std::net::Ipv4Addr::new(127, 0, 0, 2), 0).unwrap();
        let mut c = config();
        c.dns = Some(dns.addr());
        let r = Resolver::new(&c);
        for _ in 0..3 {
            let res = r.lookup("site.bench.test").await.unwrap();
            assert_eq!(res.allowed, vec!["127.0.0.2".parse::<IpAddr>().unwrap()]);
        }
        let s = dns.stats();
        assert_eq!((s.queries, s.a, s.aaaa), (1, 1, 0));

        c.dns_min_ttl_s = 0;
        let r = Resolver::new(&c);
        for _ in 0..3 {
            r.lookup("other.bench.test").await.unwrap();
        }
        let s = dns.stats();
        assert_eq!((s.queries, s.a, s.aaaa), (4, 4, 0));
    }
}
