//! Politeness: an overall and a per-host request rate (governor), a per-host concurrency cap
//! and a global concurrency cap. Per-host state is dropped when a host goes idle, so memory
//! follows the number of hosts in flight, not the number scanned.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How many requests between sweeps of idle per-host rate-limiter state.
const RETAIN_EVERY: u64 = 4_096;

/// Rate limits and concurrency caps shared by all targets of a scanner.
pub struct Politeness {
    global_rate: Option<DefaultDirectRateLimiter>,
    host_rate: Option<DefaultKeyedRateLimiter<String>>,
    requests: AtomicU64,
    global_slots: Arc<Semaphore>,
    host_slots: Arc<HostSlots>,
}

impl std::fmt::Debug for Politeness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Politeness")
            .field("global_rate", &self.global_rate.is_some())
            .field("host_rate", &self.host_rate.is_some())
            .finish_non_exhaustive()
    }
}

impl Politeness {
    pub fn new(
        rate: Option<NonZeroU32>,
        host_rate: Option<NonZeroU32>,
        concurrency: usize,
        host_concurrency: usize,
    ) -> Self {
        Self {
            global_rate: rate.map(|r| RateLimiter::direct(Quota::per_second(r))),
            host_rate: host_rate.map(|r| RateLimiter::keyed(Quota::per_second(r))),
            requests: AtomicU64::new(0),
            global_slots: Arc::new(Semaphore::new(concurrency.max(1))),
            host_slots: Arc::new(HostSlots {
                per_host: host_concurrency.max(1),
                slots: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Wait until one more request to `host` is allowed; returns how long that took.
    pub async fn before_request(&self, host: &str) -> Duration {
        let start = tokio::time::Instant::now();
        if let Some(limiter) = &self.global_rate {
            limiter.until_ready().await;
        }
        if let Some(limiter) = &self.host_rate {
            let key = host.to_ascii_lowercase();
            limiter.until_key_ready(&key).await;
            if self.requests.fetch_add(1, Ordering::Relaxed) % RETAIN_EVERY == RETAIN_EVERY - 1 {
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
        }
        start.elapsed()
    }

    /// Wait for a global slot and a slot for `host`; both are released on drop.
    pub async fn enter(&self, host: &str) -> Slots {
        // The semaphore is never closed, so acquiring only fails if it were; then run anyway.
        let global = self.global_slots.clone().acquire_owned().await.ok();
        let host = HostSlots::acquire(&self.host_slots, host).await;
        Slots {
            _host: host,
            _global: global,
        }
    }

    /// Hosts currently holding or waiting for a slot.
    pub fn hosts_in_flight(&self) -> usize {
        self.host_slots.len()
    }
}

/// Held while a target is being scanned.
#[derive(Debug)]
pub struct Slots {
    // Field order: the host slot is released before the global one.
    _host: HostPermit,
    _global: Option<OwnedSemaphorePermit>,
}

struct HostSlots {
    per_host: usize,
    slots: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl HostSlots {
    fn len(&self) -> usize {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    async fn acquire(this: &Arc<Self>, host: &str) -> HostPermit {
        let key = host.to_ascii_lowercase();
        let semaphore = {
            let mut slots = this.slots.lock().unwrap_or_else(PoisonError::into_inner);
            slots
                .entry(key.clone())
                .or_insert_with(|| Arc::new(Semaphore::new(this.per_host)))
                .clone()
        };
        let permit = semaphore.clone().acquire_owned().await.ok();
        HostPermit {
            owner: this.clone(),
            key,
            semaphore: Some(semaphore),
            permit,
        }
    }
}

#[derive(Debug)]
struct HostPermit {
    owner: Arc<HostSlots>,
    key: String,
    semaphore: Option<Arc<Semaphore>>,
    permit: Option<OwnedSemaphorePermit>,
}

impl Drop for HostPermit {
    fn drop(&mut self) {
        let mut slots = self
            .owner
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.permit.take();
        self.semaphore.take();
        // Everyone holding or waiting for this host's semaphore cloned it under the lock;
        // when only the map's copy is left, nobody needs the entry any more.
        if slots
            .get(&self.key)
            .is_some_and(|s| Arc::strong_count(s) == 1)
        {
            slots.remove(&self.key);
        }
    }
}

impl std::fmt::Debug for HostSlots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostSlots")
            .field("per_host", &self.per_host)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[tokio::test]
    async fn host_slots_cap_and_clean_up() {
        let p = Arc::new(Politeness::new(None, None, 100, 2));
        let running = Arc::new(AtomicUsize::new(0));
        let max_seen = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let (p, running, max_seen) = (p.clone(), running.clone(), max_seen.clone());
            tasks.push(tokio::spawn(async move {
                let _slots = p.enter("Example.com").await;
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                max_seen.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                running.fetch_sub(1, Ordering::SeqCst);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(max_seen.load(Ordering::SeqCst), 2);
        assert_eq!(p.hosts_in_flight(), 0);
    }

    #[tokio::test]
    async fn global_slots_cap() {
        let p = Arc::new(Politeness::new(None, None, 3, 2));
        let running = Arc::new(AtomicUsize::new(0));
        let max_seen = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..12 {
            let (p, running, max_seen) = (p.clone(), running.clone(), max_seen.clone());
            tasks.push(tokio::spawn(async move {
                let _slots = p.enter(&format!("h{i}.example")).await;
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                max_seen.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
                running.fetch_sub(1, Ordering::SeqCst);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(max_seen.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn host_rate_limits_requests() {
        let p = Politeness::new(None, NonZeroU32::new(2), 10, 2);
        let start = tokio::time::Instant::now();
        for _ in 0..4 {
            p.before_request("a.example").await;
        }
        // Burst of 2, then 2 more at 2/s: at least ~1 s.
        assert!(start.elapsed() >= Duration::from_millis(900));
    }
}
