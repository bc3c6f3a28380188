//! Commands beside a running `beian serve`: while it holds the registry store, read-only
//! commands go through its API (found from `DIR/serve.json`, with its operator token, acting
//! as `--as ROLE`, default `miit`), and commands that must write say who holds the registry
//! and what to do instead.

use anyhow::Context;
use beian::accounts::Actor;
use beian::api::operator::{ServeInfo, ServiceClient};
use beian::registry::store::StoreError;
use beian::registry::{Registry, RegistryError};

use super::Globals;

/// How a read-only command reaches the registry.
pub enum Access {
    /// The store itself (nothing else holds it).
    Direct(Box<Registry>),
    /// The running service's API.
    Service(Service),
}

/// A running service, reached over loopback.
pub struct Service {
    client: ServiceClient,
    rt: tokio::runtime::Runtime,
}

impl Service {
    /// `GET path`: the body of a successful answer.
    pub fn get(&self, path: &str) -> anyhow::Result<Vec<u8>> {
        Ok(self.rt.block_on(self.client.get(path))?)
    }

    /// `GET path`, decoded from JSON.
    pub fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        Ok(self.rt.block_on(self.client.get_json(path))?)
    }
}

/// The registry directory of `--registry`.
fn dir(g: &Globals) -> anyhow::Result<&std::path::Path> {
    g.registry
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("no registry: pass --registry DIR or set BEIAN_REGISTRY"))
}

/// Open the registry to write: while `serve` holds it, one clear line naming it.
pub fn open_for_write(g: &Globals) -> anyhow::Result<Registry> {
    let dir = dir(g)?;
    match Registry::open_on(dir, g.database_url.as_deref()) {
        Ok(r) => Ok(r),
        Err(RegistryError::Store(StoreError::Locked { .. })) if held_by_serve(dir).is_some() => {
            let info = held_by_serve(dir).context("serve.json")?;
            anyhow::bail!(
                "serve (pid {}) holds the registry at {}; use the API at {}, or stop serve first",
                info.pid,
                dir.display(),
                info.url
            )
        }
        Err(e) => Err(e.into()),
    }
}

fn held_by_serve(dir: &std::path::Path) -> Option<ServeInfo> {
    ServeInfo::read(dir).ok().flatten()
}

/// Open the registry to read: directly, or while `serve` holds it, through its API.
pub fn open_for_read(g: &Globals) -> anyhow::Result<Access> {
    let dir = dir(g)?;
    match Registry::open_on(dir, g.database_url.as_deref()) {
        Ok(r) => Ok(Access::Direct(Box::new(r))),
        Err(RegistryError::Store(StoreError::Locked { holder, path })) => {
            let Some(info) = ServeInfo::read(dir)? else {
                return Err(RegistryError::Store(StoreError::Locked { holder, path }).into());
            };
            let actor = g.act_as.clone().unwrap_or(Actor::Miit);
            eprintln!(
                "note: serve (pid {}) holds the registry; reading through its API at {} as {actor}",
                info.pid, info.url
            );
            Ok(Access::Service(Service {
                client: ServiceClient::new(info, actor)?,
                rt: super::common::runtime()?,
            }))
        }
        Err(e) => Err(e.into()),
    }
}

/// One URL path segment, percent-encoded (filing numbers carry Chinese characters).
pub fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
