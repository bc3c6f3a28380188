//! IP filings (IP 地址备案), pure part: the input an ISP or IP reporter submits (also the JSON
//! Lines import format), its validation into an [`IpFiling`], who may report, and the
//! overlap rule. No I/O; the service stores the result.
//!
//! One line of `ip-filing import` (fields other than `provider` and `network` optional):
//! ```json
//! {"provider":"华北云","network":"203.0.113.0/24","source":"CNNIC","status":"allocated",
//!  "allocated_to":"华北云","province":"京","city":"北京"}
//! ```
//! Rules: `unallocated` needs nothing else (and takes no `allocated_to`/`province`/`city`);
//! `allocated` needs `allocated_to`, and `province` unless allocated to the provider itself;
//! `reallocated` names the other ISP in `allocated_to`; `customer` needs `allocated_to` (the
//! customer) and `province`; `router_port` needs nothing else. Host bits must be zero.

use serde::Deserialize;

use crate::accounts::Actor;

use super::import::LineError;
use super::model::{IpBlockStatus, IpFiling, IpFilingId};

/// What a reporter submits for one block.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpFilingInput {
    pub provider: String,
    /// CIDR text, e.g. `203.0.113.0/24` (a bare address is a /32 or /128).
    pub network: String,
    #[serde(default)]
    pub source: Option<String>,
    /// Default: `allocated`.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub allocated_to: Option<String>,
    #[serde(default)]
    pub province: Option<String>,
    #[serde(default)]
    pub city: Option<String>,
}

/// A field of an IP filing that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct IpFieldError {
    pub field: &'static str,
    pub reason: String,
}

fn bad(field: &'static str, reason: impl Into<String>) -> IpFieldError {
    IpFieldError {
        field,
        reason: reason.into(),
    }
}

fn non_empty(v: &Option<String>) -> Option<String> {
    v.as_ref()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Parse a CIDR block (or a single address), refusing set host bits.
pub fn parse_network(text: &str) -> Result<ipnet::IpNet, IpFieldError> {
    let t = text.trim();
    let net: ipnet::IpNet = match t.parse() {
        Ok(n) => n,
        Err(_) => match t.parse::<std::net::IpAddr>() {
            Ok(ip) => ipnet::IpNet::from(ip),
            Err(_) => return Err(bad("network", format!("{t:?} is not a CIDR block"))),
        },
    };
    if net.trunc() != net {
        return Err(bad(
            "network",
            format!("{net} has host bits set (the block is {})", net.trunc()),
        ));
    }
    Ok(net)
}

/// Validate an input into a filing with id `id`, reported by `actor` at `now`.
pub fn validate(
    id: IpFilingId,
    input: &IpFilingInput,
    actor: &Actor,
    now: i64,
) -> Result<IpFiling, IpFieldError> {
    let provider = input.provider.trim().to_string();
    if provider.is_empty() {
        return Err(bad("provider", "empty"));
    }
    let network = parse_network(&input.network)?;
    let status = match &input.status {
        Some(s) if !s.trim().is_empty() => s.parse().map_err(|e: String| bad("status", e))?,
        _ => IpBlockStatus::Allocated,
    };
    let allocated_to = non_empty(&input.allocated_to);
    let city = non_empty(&input.city);
    let province = match non_empty(&input.province) {
        None => None,
        Some(p) => {
            let mut cs = p.chars();
            match (cs.next(), cs.next()) {
                (Some(c), None) => crate::number::primary_province(c),
                _ => None,
            }
            .map(Some)
            .ok_or_else(|| {
                bad(
                    "province",
                    format!("{p:?} is not a province abbreviation (京, 沪, 粤, …)"),
                )
            })?
        }
    };
    match status {
        IpBlockStatus::Unallocated => {
            if allocated_to.is_some() || province.is_some() || city.is_some() {
                let field = if allocated_to.is_some() {
                    "allocated_to"
                } else if province.is_some() {
                    "province"
                } else {
                    "city"
                };
                return Err(bad(field, "an unallocated block is not allocated or used"));
            }
        }
        IpBlockStatus::Allocated => match &allocated_to {
            None => return Err(bad("allocated_to", "an allocated block names its user")),
            Some(to) if *to != provider && province.is_none() => {
                return Err(bad(
                    "province",
                    "a block allocated to a user names where it is used",
                ))
            }
            _ => {}
        },
        IpBlockStatus::Reallocated => match &allocated_to {
            None => {
                return Err(bad(
                    "allocated_to",
                    "a re-allocated block names the ISP it was re-allocated to",
                ))
            }
            Some(to) if *to == provider => {
                return Err(bad(
                    "allocated_to",
                    "a block is re-allocated to another ISP, not to its holder",
                ))
            }
            _ => {}
        },
        IpBlockStatus::Customer => {
            if allocated_to.is_none() {
                return Err(bad("allocated_to", "a customer block names the customer"));
            }
            if province.is_none() {
                return Err(bad("province", "a customer block names where it is used"));
            }
        }
        IpBlockStatus::RouterPort => {}
    }
    Ok(IpFiling {
        id,
        network,
        provider,
        source: non_empty(&input.source),
        status,
        allocated_to,
        province,
        city,
        reported_by: actor.clone(),
        reported_at: now,
    })
}

/// Who may report a block held by `provider`: the ISP itself, an IP reporter, a bureau, MIIT.
pub fn may_report(actor: &Actor, provider: &str) -> Result<(), String> {
    match actor {
        Actor::Isp { name, .. } if name == provider => Ok(()),
        Actor::Isp { name, .. } => Err(format!(
            "ISP {name} may report only its own blocks, not {provider}'s"
        )),
        Actor::IpReporter { .. } | Actor::Bureau { .. } | Actor::Miit => Ok(()),
        other => Err(format!("{other} may not report IP blocks")),
    }
}

/// Why `new` may not be filed next to `existing` (a filing whose network overlaps it), or
/// `None` when it may. A provider's own blocks may overlap (more specific ones refine its
/// larger block; an identical one is a re-report). Blocks of two providers may overlap only
/// as the FAQ allows: inside a block re-allocated to the new provider (or the holder reporting
/// the re-allocation of a block the other filed), and identical router-port blocks (the two
/// ends of an interconnect).
pub fn conflict(existing: &IpFiling, new: &IpFiling) -> Option<String> {
    if existing.provider == new.provider || !overlaps(&existing.network, &new.network) {
        return None;
    }
    let reallocated_to = |holder: &IpFiling, to: &IpFiling| {
        holder.status == IpBlockStatus::Reallocated
            && holder.allocated_to.as_deref() == Some(to.provider.as_str())
            && holder.network.contains(&to.network)
    };
    if reallocated_to(existing, new) || reallocated_to(new, existing) {
        return None;
    }
    if existing.network == new.network
        && existing.status == IpBlockStatus::RouterPort
        && new.status == IpBlockStatus::RouterPort
    {
        return None;
    }
    let how = if existing.network == new.network {
        "is already filed"
    } else if existing.network.contains(&new.network) {
        "lies inside a block filed"
    } else {
        "contains a block filed"
    };
    Some(format!(
        "{} {how} by {} ({}, IP filing {}); blocks of two providers overlap only inside a block re-allocated to the other, or as identical router-port blocks",
        new.network, existing.provider, existing.network, existing.id
    ))
}

/// [`conflict`] against every filing that overlaps `new`: once some block re-allocated to
/// `new`'s provider covers it, the larger blocks around it (the holder's) are no conflict.
pub fn conflict_among(existing: &[IpFiling], new: &IpFiling) -> Option<String> {
    let covered = existing.iter().any(|e| {
        e.status == IpBlockStatus::Reallocated
            && e.allocated_to.as_deref() == Some(new.provider.as_str())
            && e.network.contains(&new.network)
    });
    existing
        .iter()
        .filter(|e| !(covered && e.network.contains(&new.network)))
        .find_map(|e| conflict(e, new))
}

fn overlaps(a: &ipnet::IpNet, b: &ipnet::IpNet) -> bool {
    a.contains(b) || b.contains(a)
}

/// Parse one JSON Lines line (1-based `line`) into an input.
pub fn parse_line(line: usize, text: &str) -> Result<IpFilingInput, LineError> {
    serde_json::from_str(text).map_err(|e| LineError::new(line, "json", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(status: &str) -> IpFilingInput {
        IpFilingInput {
            provider: "华北云".into(),
            network: "203.0.113.0/24".into(),
            source: Some("CNNIC".into()),
            status: Some(status.into()),
            allocated_to: None,
            province: None,
            city: None,
        }
    }

    fn check(i: &IpFilingInput) -> Result<IpFiling, IpFieldError> {
        validate(1, i, &Actor::isp("华北云"), 5)
    }

    #[test]
    fn unallocated_needs_nothing_else_and_takes_nothing_else() {
        let f = check(&input("unallocated")).unwrap();
        assert_eq!(f.status, IpBlockStatus::Unallocated);
        assert_eq!(f.hosting_provider(), None);
        let mut i = input("unallocated");
        i.province = Some("京".into());
        assert_eq!(check(&i).unwrap_err().field, "province");
    }

    #[test]
    fn allocated_and_customer_need_user_and_province() {
        assert_eq!(
            check(&input("allocated")).unwrap_err().field,
            "allocated_to"
        );
        let mut i = input("customer");
        i.allocated_to = Some("某公司".into());
        assert_eq!(check(&i).unwrap_err().field, "province");
        i.province = Some("京".into());
        let f = check(&i).unwrap();
        assert_eq!(f.province, Some('京'));
        assert_eq!(f.hosting_provider(), Some("华北云"));
        let mut i = input("allocated");
        i.allocated_to = Some("某公司".into());
        assert_eq!(check(&i).unwrap_err().field, "province");
        // Own use needs no province.
        i.allocated_to = Some("华北云".into());
        assert!(check(&i).is_ok());
    }

    #[test]
    fn reallocation_names_another_isp() {
        let mut i = input("reallocated");
        assert_eq!(check(&i).unwrap_err().field, "allocated_to");
        i.allocated_to = Some("华北云".into());
        assert_eq!(check(&i).unwrap_err().field, "allocated_to");
        i.allocated_to = Some("华东数据".into());
        assert_eq!(check(&i).unwrap().hosting_provider(), Some("华东数据"));
    }

    #[test]
    fn bad_network_status_and_province_are_refused() {
        let mut i = input("router_port");
        i.network = "203.0.113.5/24".into();
        let e = check(&i).unwrap_err();
        assert_eq!(e.field, "network");
        assert!(e.reason.contains("203.0.113.0/24"), "{e}");
        i.network = "not-a-block".into();
        assert_eq!(check(&i).unwrap_err().field, "network");
        i.network = "2001:db8::1".into();
        assert_eq!(check(&i).unwrap().network.prefix_len(), 128);
        assert_eq!(check(&input("leased")).unwrap_err().field, "status");
        let mut i = input("customer");
        i.allocated_to = Some("x".into());
        i.province = Some("XX".into());
        assert_eq!(check(&i).unwrap_err().field, "province");
        let mut i = input("allocated");
        i.provider = " ".into();
        assert_eq!(check(&i).unwrap_err().field, "provider");
    }

    #[test]
    fn roles_and_conflicts() {
        assert!(may_report(&Actor::isp("甲"), "甲").is_ok());
        assert!(may_report(&Actor::isp("乙"), "甲").is_err());
        assert!(may_report(&Actor::icp("someone"), "甲").is_err());
        assert!(may_report(&Actor::Miit, "甲").is_ok());
        assert!(may_report(&Actor::bureau('京'), "甲").is_ok());
        let mut a = check(&input("router_port")).unwrap();
        let mut b = a.clone();
        b.provider = "华东数据".into();
        // Identical router-port blocks of two providers: the two ends of an interconnect.
        assert_eq!(conflict(&a, &b), None);
        a.status = IpBlockStatus::Allocated;
        a.allocated_to = Some("华北云".into());
        assert!(conflict(&a, &b).unwrap().contains("already filed"));
        let mut narrower = b.clone();
        narrower.status = IpBlockStatus::Allocated;
        narrower.network = "203.0.113.0/25".parse().unwrap();
        assert!(conflict(&a, &narrower).unwrap().contains("lies inside"));
        assert!(conflict(&narrower, &a).unwrap().contains("contains"));
        // Inside a block re-allocated to it: allowed, in either order of filing.
        let mut r = a.clone();
        r.status = IpBlockStatus::Reallocated;
        r.allocated_to = Some("华东数据".into());
        assert_eq!(conflict(&r, &narrower), None);
        assert_eq!(conflict(&narrower, &r), None);
        assert_eq!(conflict(&r, &b), None);
        // Re-allocated to someone else: still a conflict for 华东数据.
        r.allocated_to = Some("第三方".into());
        assert!(conflict(&r, &narrower).is_some());
        // One's own blocks overlap freely; disjoint blocks never conflict.
        let mut own = a.clone();
        own.network = "203.0.113.128/25".parse().unwrap();
        assert_eq!(conflict(&a, &own), None);
        let mut far = narrower.clone();
        far.network = "198.51.100.0/24".parse().unwrap();
        assert_eq!(conflict(&a, &far), None);
        // A /25 re-allocated out of a /24 lets the receiver file inside it; the /24 around
        // it is then no conflict, but another ISP's /25 still is.
        let mut r25 = a.clone();
        r25.network = "203.0.113.128/25".parse().unwrap();
        r25.status = IpBlockStatus::Reallocated;
        r25.allocated_to = Some("华东数据".into());
        let mut inside = narrower.clone();
        inside.network = "203.0.113.192/26".parse().unwrap();
        assert_eq!(conflict_among(&[a.clone(), r25.clone()], &inside), None);
        assert!(conflict_among(&[a.clone()], &inside).is_some());
        let mut third = inside.clone();
        third.provider = "第三方".into();
        assert!(conflict_among(&[a.clone(), r25], &third).is_some());
    }
}
