//! The address guard: refuses IANA special-purpose addresses (loopback, RFC 1918, link-local
//! incl. the cloud metadata address, CGNAT, documentation, multicast, reserved, …) before the
//! scanner connects anywhere. IPv4-mapped, NAT64 and 6to4 IPv6 addresses are judged by the IPv4
//! address they embed. Pure: no I/O.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// Why an address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{ip} is in a special-purpose range ({range})")]
pub struct Refusal {
    pub ip: IpAddr,
    /// Name of the range, e.g. `loopback (127.0.0.0/8)`.
    pub range: &'static str,
}

/// Decides whether the scanner may connect to an address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressGuard {
    allow_private: bool,
    allow_nets: Vec<IpNet>,
}

impl AddressGuard {
    /// `allow_private` lifts the guard entirely (labs only); `allow_nets` allows just these
    /// networks (e.g. `127.0.0.2/32` for tests) while everything else stays refused.
    pub fn new(allow_private: bool, allow_nets: Vec<IpNet>) -> Self {
        Self {
            allow_private,
            allow_nets,
        }
    }

    /// Whether the guard is relaxed in any way (either switch set).
    pub fn is_relaxed(&self) -> bool {
        self.allow_private || !self.allow_nets.is_empty()
    }

    /// `Ok` when a connection to `ip` is allowed.
    pub fn check(&self, ip: IpAddr) -> Result<(), Refusal> {
        if self.allow_private || self.explicitly_allowed(ip) {
            return Ok(());
        }
        match special_purpose_range(ip) {
            Some(range) => Err(Refusal { ip, range }),
            None => Ok(()),
        }
    }

    pub fn is_allowed(&self, ip: IpAddr) -> bool {
        self.check(ip).is_ok()
    }

    fn explicitly_allowed(&self, ip: IpAddr) -> bool {
        let embedded = match ip {
            IpAddr::V6(v6) => embedded_v4(v6).map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        self.allow_nets
            .iter()
            .any(|net| net.contains(&ip) || embedded.is_some_and(|e| net.contains(&e)))
    }
}

/// The special-purpose range `ip` falls in, or `None` for an ordinary global unicast address.
pub fn special_purpose_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_range(v4),
        IpAddr::V6(v6) => v6_range(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

const V4_RANGES: &[([u8; 4], u32, &str)] = &[
    ([0, 0, 0, 0], 8, "this network (0.0.0.0/8)"),
    ([10, 0, 0, 0], 8, "private (10.0.0.0/8)"),
    (
        [100, 64, 0, 0],
        10,
        "shared address space / CGNAT (100.64.0.0/10)",
    ),
    ([127, 0, 0, 0], 8, "loopback (127.0.0.0/8)"),
    ([169, 254, 0, 0], 16, "link-local (169.254.0.0/16)"),
    ([172, 16, 0, 0], 12, "private (172.16.0.0/12)"),
    (
        [192, 0, 0, 0],
        24,
        "IETF protocol assignments (192.0.0.0/24)",
    ),
    ([192, 0, 2, 0], 24, "documentation (192.0.2.0/24)"),
    ([192, 88, 99, 0], 24, "6to4 relay anycast (192.88.99.0/24)"),
    ([192, 168, 0, 0], 16, "private (192.168.0.0/16)"),
    ([198, 18, 0, 0], 15, "benchmarking (198.18.0.0/15)"),
    ([198, 51, 100, 0], 24, "documentation (198.51.100.0/24)"),
    ([203, 0, 113, 0], 24, "documentation (203.0.113.0/24)"),
    ([224, 0, 0, 0], 4, "multicast (224.0.0.0/4)"),
    (
        [255, 255, 255, 255],
        32,
        "limited broadcast (255.255.255.255/32)",
    ),
    ([240, 0, 0, 0], 4, "reserved (240.0.0.0/4)"),
];

fn v4_range(ip: Ipv4Addr) -> Option<&'static str> {
    V4_RANGES
        .iter()
        .find(|(net, prefix, _)| in_v4(ip, *net, *prefix))
        .map(|(_, _, name)| *name)
}

fn in_v6(ip: Ipv6Addr, net: [u16; 8], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - prefix)
    };
    let net = Ipv6Addr::new(
        net[0], net[1], net[2], net[3], net[4], net[5], net[6], net[7],
    );
    (u128::from(ip) & mask) == (u128::from(net) & mask)
}

/// The IPv4 address embedded in an IPv4-mapped (`::ffff:0:0/96`), NAT64 well-known prefix
/// (`64:ff9b::/96`) or 6to4 (`2002::/16`) address.
pub fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(ip);
    if in_v6(ip, [0, 0, 0, 0, 0, 0xffff, 0, 0], 96)
        || in_v6(ip, [0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96)
    {
        // The low 32 bits; truncation is the point.
        return Some(Ipv4Addr::from((bits & 0xffff_ffff) as u32));
    }
    if in_v6(ip, [0x2002, 0, 0, 0, 0, 0, 0, 0], 16) {
        return Some(Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32));
    }
    None
}

const V6_RANGES: &[([u16; 8], u32, &str)] = &[
    ([0, 0, 0, 0, 0, 0, 0, 0], 128, "unspecified (::/128)"),
    ([0, 0, 0, 0, 0, 0, 0, 1], 128, "loopback (::1/128)"),
    (
        [0, 0, 0, 0, 0, 0, 0, 0],
        96,
        "IPv4-compatible, deprecated (::/96)",
    ),
    (
        [0x64, 0xff9b, 1, 0, 0, 0, 0, 0],
        48,
        "local-use NAT64 (64:ff9b:1::/48)",
    ),
    ([0x100, 0, 0, 0, 0, 0, 0, 0], 64, "discard-only (100::/64)"),
    (
        [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0],
        32,
        "documentation (2001:db8::/32)",
    ),
    (
        [0x2001, 0, 0, 0, 0, 0, 0, 0],
        23,
        "IETF protocol assignments (2001::/23)",
    ),
    (
        [0x3fff, 0, 0, 0, 0, 0, 0, 0],
        20,
        "documentation (3fff::/20)",
    ),
    ([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16, "SRv6 SIDs (5f00::/16)"),
    ([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, "unique local (fc00::/7)"),
    ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, "link-local (fe80::/10)"),
    (
        [0xfec0, 0, 0, 0, 0, 0, 0, 0],
        10,
        "site-local, deprecated (fec0::/10)",
    ),
    ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, "multicast (ff00::/8)"),
];

fn v6_range(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = embedded_v4(ip) {
        return v4_range(v4).map(|_| "embeds a special-purpose IPv4 address");
    }
    if let Some((_, _, name)) = V6_RANGES
        .iter()
        .find(|(net, prefix, _)| in_v6(ip, *net, *prefix))
    {
        return Some(name);
    }
    // Only 2000::/3 is allocated for global unicast; everything else is reserved.
    if !in_v6(ip, [0x2000, 0, 0, 0, 0, 0, 0, 0], 3) {
        return Some("not global unicast (outside 2000::/3)");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn strict() -> AddressGuard {
        AddressGuard::new(false, vec![])
    }

    #[test]
    fn refuses_special_ipv4() {
        let g = strict();
        for s in [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "10.255.255.255",
            "100.64.0.1",
            "100.100.100.200",
            "100.127.255.255",
            "127.0.0.1",
            "127.0.0.2",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(g.check(ip(s)).is_err(), "{s} should be refused");
        }
    }

    #[test]
    fn allows_public_ipv4_at_range_edges() {
        let g = strict();
        for s in [
            "1.1.1.1",
            "8.8.8.8",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.1",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "114.114.114.114",
        ] {
            assert!(g.check(ip(s)).is_ok(), "{s} should be allowed");
        }
    }

    #[test]
    fn refuses_special_ipv6() {
        let g = strict();
        for s in [
            "::",
            "::1",
            "::7f00:1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::127.0.0.1",
            "64:ff9b:1::1",
            "100::1",
            "2001::1",
            "2001:1ff::1",
            "2001:db8::1",
            "2002:7f00:1::1",
            "2002:a00:1::",
            "3fff::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "4000::1",
            "1000::1",
        ] {
            assert!(g.check(ip(s)).is_err(), "{s} should be refused");
        }
    }

    #[test]
    fn allows_public_ipv6_and_embedded_public_v4() {
        let g = strict();
        for s in [
            "2400:3200::1",
            "2606:4700:4700::1111",
            "2001:200::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(g.check(ip(s)).is_ok(), "{s} should be allowed");
        }
    }

    #[test]
    fn embedded_v4_extraction() {
        assert_eq!(
            embedded_v4("::ffff:1.2.3.4".parse().unwrap()),
            Some(Ipv4Addr::new(1, 2, 3, 4))
        );
        assert_eq!(
            embedded_v4("64:ff9b::102:304".parse().unwrap()),
            Some(Ipv4Addr::new(1, 2, 3, 4))
        );
        assert_eq!(
            embedded_v4("2002:102:304::".parse().unwrap()),
            Some(Ipv4Addr::new(1, 2, 3, 4))
        );
        assert_eq!(embedded_v4("2400::1".parse().unwrap()), None);
    }

    #[test]
    fn allow_private_lifts_everything() {
        let g = AddressGuard::new(true, vec![]);
        for s in ["127.0.0.1", "10.0.0.1", "::1", "169.254.169.254", "ff02::1"] {
            assert!(g.check(ip(s)).is_ok());
        }
        assert!(g.is_relaxed());
        assert!(!strict().is_relaxed());
    }

    #[test]
    fn allow_nets_allows_only_those() {
        let g = AddressGuard::new(false, vec!["127.0.0.2/32".parse().unwrap()]);
        assert!(g.check(ip("127.0.0.2")).is_ok());
        assert!(g.check(ip("::ffff:127.0.0.2")).is_ok());
        assert!(g.check(ip("127.0.0.1")).is_err());
        assert!(g.check(ip("127.0.0.3")).is_err());
        assert!(g.check(ip("169.254.169.254")).is_err());
        assert!(g.check(ip("8.8.8.8")).is_ok());
    }

    #[test]
    fn refusal_names_the_range() {
        let r = strict().check(ip("169.254.169.254")).unwrap_err();
        assert!(r.range.contains("link-local"), "{}", r.range);
        assert!(r.to_string().contains("169.254.169.254"));
    }

    proptest::proptest! {
        #[test]
        fn mapped_v6_agrees_with_v4(a: u8, b: u8, c: u8, d: u8) {
            let v4 = Ipv4Addr::new(a, b, c, d);
            let g = strict();
            proptest::prop_assert_eq!(
                g.is_allowed(IpAddr::V4(v4)),
                g.is_allowed(IpAddr::V6(v4.to_ipv6_mapped()))
            );
        }
    }
}
