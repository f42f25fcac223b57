//! Live sessions in memory: sharded so concurrent requests for different sessions never
//! contend on one lock, each session behind its own async mutex so concurrent calls for one
//! session are serialised, an idle timeout and a maximum count.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kairos_engine::Session;

const SHARDS: usize = 64;

/// A live session and the channel it belongs to (lowercase, as deployments are keyed).
pub struct Entry {
    pub session: Session,
    pub channel: String,
}

/// The session table is at its maximum.
#[derive(Debug)]
pub struct Full;

pub struct Slot {
    pub entry: tokio::sync::Mutex<Entry>,
    /// Milliseconds since the table was made, at the last call.
    last_used: AtomicU64,
}

pub struct Sessions {
    shards: Vec<Mutex<HashMap<String, Arc<Slot>>>>,
    /// Picks a session's shard. A fast hash suffices here: each shard's map keeps SipHash
    /// against collision floods (callers may choose session IDs).
    shard_hasher: foldhash::fast::RandomState,
    count: AtomicUsize,
    pub max: usize,
    pub idle: Duration,
    epoch: Instant,
}

impl Sessions {
    pub fn new(max: usize, idle: Duration) -> Self {
        Sessions {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            shard_hasher: foldhash::fast::RandomState::default(),
            count: AtomicUsize::new(0),
            max,
            idle,
            epoch: Instant::now(),
        }
    }

    fn shard(&self, id: &str) -> &Mutex<HashMap<String, Arc<Slot>>> {
        &self.shards[(self.shard_hasher.hash_one(id) as usize) % SHARDS]
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    pub fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, id: &str) -> Option<Arc<Slot>> {
        let slot = self
            .shard(id)
            .lock()
            .expect("session shard")
            .get(id)
            .cloned()?;
        slot.last_used.store(self.now_ms(), Ordering::Relaxed);
        Some(slot)
    }

    /// Inserts a session, returning the one it replaced; fails when the table is full.
    pub fn insert(&self, id: String, entry: Entry) -> Result<Option<Arc<Slot>>, Full> {
        let mut shard = self.shard(&id).lock().expect("session shard");
        if !shard.contains_key(&id) && self.count.load(Ordering::Relaxed) >= self.max {
            return Err(Full);
        }
        let slot = Arc::new(Slot {
            entry: tokio::sync::Mutex::new(entry),
            last_used: AtomicU64::new(self.now_ms()),
        });
        let previous = shard.insert(id, slot);
        if previous.is_none() {
            self.count.fetch_add(1, Ordering::Relaxed);
        }
        Ok(previous)
    }

    pub fn remove(&self, id: &str) -> Option<Arc<Slot>> {
        let removed = self.shard(id).lock().expect("session shard").remove(id);
        if removed.is_some() {
            self.count.fetch_sub(1, Ordering::Relaxed);
        }
        removed
    }

    /// Removes and returns sessions idle for longer than the timeout.
    pub fn expire(&self) -> Vec<Arc<Slot>> {
        let cutoff = self.now_ms().saturating_sub(self.idle.as_millis() as u64);
        let mut expired = Vec::new();
        for shard in &self.shards {
            let mut shard = shard.lock().expect("session shard");
            shard.retain(|_, slot| {
                let keep = slot.last_used.load(Ordering::Relaxed) >= cutoff;
                if !keep {
                    expired.push(slot.clone());
                }
                keep
            });
        }
        self.count.fetch_sub(expired.len(), Ordering::Relaxed);
        expired
    }

    /// Removes every session (shutdown).
    pub fn drain(&self) -> Vec<Arc<Slot>> {
        let mut all = Vec::new();
        for shard in &self.shards {
            all.extend(shard.lock().expect("session shard").drain().map(|(_, s)| s));
        }
        self.count.store(0, Ordering::Relaxed);
        all
    }
}
