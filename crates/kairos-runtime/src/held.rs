//! A batch holds its session: with sessions shared in Redis, the commands of one batch on one
//! session take its lock and read it once, and store it (or end it) once, instead of once per
//! command. A whole visit in one batch (start, get offers, end) is two Redis round trips
//! instead of four. The held session lives in a task-local slot, which only a batch opens;
//! a batch dropped half-way (its caller hung up) still stores what it held.

use std::cell::RefCell;
use std::sync::Arc;

use kairos_api::Problem;
use kairos_engine::{Deployment, Session};

use crate::runtime::Runtime;
use crate::sessions::Entry;
use crate::shared::{RedisSessions, SessionLock};

tokio::task_local! {
    static HELD: RefCell<Option<Held>>;
}

/// A session a batch holds: its lock, its state and the deployment that state is of.
pub(crate) struct Held {
    id: String,
    lock: Option<SessionLock>,
    entry: Entry,
    deployment: Arc<Deployment>,
}

impl Drop for Held {
    /// Dropped before the batch stored it: the lock's own drop stores this state.
    fn drop(&mut self) {
        if let Some(mut lock) = self.lock.take() {
            let snapshot = self.entry.session.snapshot(&self.deployment);
            lock.keep_unsaved(std::mem::take(&mut self.entry.channel), snapshot);
        }
    }
}

impl Held {
    pub(crate) fn new(
        id: String,
        lock: SessionLock,
        entry: Entry,
        deployment: Arc<Deployment>,
    ) -> Held {
        Held {
            id,
            lock: Some(lock),
            entry,
            deployment,
        }
    }

    /// Stores the state and releases the lock.
    async fn store(mut self) -> Result<(), Problem> {
        let lock = self
            .lock
            .take()
            .expect("a held session has its lock until stored");
        let snapshot = self.entry.session.snapshot(&self.deployment);
        lock.save_and_release(std::mem::take(&mut self.entry.channel), snapshot)
            .await
    }
}

/// Whether this task runs a batch that holds sessions.
pub(crate) fn in_batch() -> bool {
    HELD.try_with(|_| ()).is_ok()
}

/// The session this batch holds, taken out of its slot, if it is `id`.
fn take(id: &str) -> Option<Held> {
    HELD.with(|slot| {
        let mut slot = slot.borrow_mut();
        match slot.as_ref() {
            Some(held) if held.id == id => slot.take(),
            _ => None,
        }
    })
}

/// Puts a session back in the batch's slot, handing back the one it replaces.
fn put(held: Held) -> Option<Held> {
    HELD.with(|slot| slot.borrow_mut().replace(held))
}

impl Runtime {
    /// Runs a batch's commands holding their session (when sessions are shared), then stores
    /// what it holds.
    pub async fn holding_sessions<R>(&self, work: impl Future<Output = R>) -> Result<R, Problem> {
        if !self.shares_sessions() {
            return Ok(work.await);
        }
        let (answer, held) = HELD
            .scope(RefCell::new(None), async {
                let answer = work.await;
                (answer, HELD.with(|slot| slot.borrow_mut().take()))
            })
            .await;
        if let Some(held) = held {
            held.store().await?;
        }
        Ok(answer)
    }

    /// Runs `f` on session `id` as this batch holds it: taken (locked and read) at its first
    /// command, kept for the next ones. A batch moving to another session stores the one it
    /// held first.
    pub(crate) async fn with_held<R>(
        &self,
        id: &str,
        f: impl AsyncFnOnce(&mut Entry) -> Result<R, Problem>,
    ) -> Result<R, Problem> {
        let mut held = match take(id) {
            Some(held) => held,
            None => {
                if let Some(other) = HELD.with(|slot| slot.borrow_mut().take()) {
                    other.store().await?;
                }
                let (lock, found) = self.lock_shared(id).await?;
                let Some((channel, snapshot)) = found else {
                    lock.release().await;
                    return Err(Problem::session_not_found(id));
                };
                let deployment = match self.deployment_of(&channel) {
                    Ok(deployment) => deployment,
                    Err(problem) => {
                        lock.release().await;
                        return Err(problem);
                    }
                };
                let entry = Entry {
                    session: Session::restore(snapshot),
                    channel,
                };
                Held::new(id.to_string(), lock, entry, deployment)
            }
        };
        let result = f(&mut held.entry).await;
        // A command may have moved the session to another deployment's channel version.
        if let Ok(deployment) = self.deployment_of(&held.entry.channel) {
            held.deployment = deployment;
        }
        put(held);
        result
    }

    /// Starts a session (as [`RedisSessions::start`]) that this batch then holds, storing any
    /// other it held first; false when the group is full.
    pub(crate) async fn start_held(
        &self,
        shared: &Arc<RedisSessions>,
        entry: Entry,
        deployment: Arc<Deployment>,
    ) -> Result<bool, Problem> {
        if let Some(other) = HELD.with(|slot| slot.borrow_mut().take()) {
            other.store().await?;
        }
        let snapshot = entry.session.snapshot(&deployment);
        let id = snapshot.id.clone();
        let lock = shared
            .start_locked(
                &entry.channel,
                &snapshot,
                self.sessions.max,
                self.new_session_id(),
            )
            .await?;
        let Some(lock) = lock else {
            return Ok(false);
        };
        put(Held::new(id, lock, entry, deployment));
        Ok(true)
    }

    /// Ends session `id` if this batch holds it: forgotten in Redis under the batch's own lock.
    /// `None` when it does not hold it.
    pub(crate) async fn end_held(&self, id: &str) -> Option<Result<(), Problem>> {
        let mut held = take(id)?;
        let lock = held
            .lock
            .take()
            .expect("a held session has its lock until stored");
        Some(lock.remove_session().await)
    }
}
