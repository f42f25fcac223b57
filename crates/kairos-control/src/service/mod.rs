//! The control plane as a typed service: each action a method taking the [`Caller`] and a
//! request of `kairos_api::control`, checking the caller's role, writing the audit log and
//! answering a type of the same module, or a [`Problem`] with its code. The API's routes and
//! the design UI both call these methods; neither checks a role or writes the audit log.

mod access;
mod design;
mod groups;
mod records;
mod review;
mod testruns;
mod throttle;
mod versions;

pub use design::kind_of;
pub use records::declared_types;

use std::collections::HashMap;
use std::sync::Arc;

use kairos_api::{Code, Problem};
use kairos_model::components::{self, Component};
use kairos_model::{Rejected, Schemas};
use kairos_rules::time::Timestamp;
use kairos_store::control::{AuditEntry, ControlStore, Version};
use kairos_store::{ProfileStore, StoreError};
use serde_json::Value as J;

use crate::auth::{self, Role};

/// The gates a production group checks unless configured otherwise, as stored.
fn default_gates() -> J {
    serde_json::to_value(kairos_api::control::Gates::production()).expect("gates are JSON")
}

pub struct ControlPlane {
    store: ControlStore,
    /// The profile and dimension tables the runtimes read: their schemas type-check
    /// channels; the data administrator imports into them here.
    profiles: Arc<ProfileStore>,
    /// What an unknown user's password is checked against.
    no_user_hash: String,
    /// Groups' own data sources, opened when first used, by URL.
    group_data: tokio::sync::Mutex<HashMap<String, Arc<ProfileStore>>>,
    /// Groups' history databases, for reports, opened when first used, by URL.
    histories: tokio::sync::Mutex<HashMap<String, Arc<kairos_store::Sql>>>,
    clock: fn() -> Timestamp,
    /// Bumped on every activation or token change, so long polls answer at once.
    changed: tokio::sync::watch::Sender<u64>,
    /// Set when the server shuts down: long polls answer at once.
    stopping: std::sync::atomic::AtomicBool,
    /// Set when it serves TLS: the UI's cookies are then `Secure`.
    tls: std::sync::atomic::AtomicBool,
    /// Failed logins, per user and per address.
    throttle: std::sync::Mutex<throttle::Throttle>,
    /// Test runs in flight and the latest finished.
    runs: std::sync::Mutex<testruns::RunBook>,
}

/// Who is calling: a user with roles, or a runtime of a group.
#[derive(Clone, Debug)]
pub struct Caller {
    pub name: String,
    pub roles: Vec<Role>,
    /// For a runtime token: the group it serves.
    pub runtime_group: Option<String>,
    /// The digest of the token the caller came with (logout ends it).
    pub token: Option<String>,
}

impl Caller {
    /// The caller the control plane acts as for itself (`kairos up`'s demo).
    fn system() -> Caller {
        Caller {
            name: "admin".to_string(),
            roles: Role::ALL.to_vec(),
            runtime_group: None,
            token: None,
        }
    }

    /// Whether the caller may read the design, versions, groups and records: a user with at
    /// least one role. A runtime reads only what its group runs; a user with no role, nothing.
    pub fn may_read(&self) -> Result<(), Problem> {
        if self.runtime_group.is_some() {
            return Err(Problem::new(
                Code::Forbidden,
                "a runtime token reads only what its group runs",
            ));
        }
        self.require(&Role::ALL)
    }

    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    fn require(&self, any_of: &[Role]) -> Result<(), Problem> {
        if any_of.iter().any(|r| self.has(*r)) {
            return Ok(());
        }
        let wanted: Vec<&str> = any_of.iter().map(|r| r.name()).collect();
        let held: Vec<&str> = self.roles.iter().map(|r| r.name()).collect();
        Err(Problem::new(
            Code::Forbidden,
            format!(
                "this needs the {} role; {} has {}",
                wanted.join(" or "),
                self.name,
                if held.is_empty() {
                    "none".to_string()
                } else {
                    held.join(", ")
                }
            ),
        ))
    }
}

fn storage(e: StoreError) -> Problem {
    match e {
        StoreError::Conflict { .. } => Problem::new(Code::Conflict, e.to_string()),
        StoreError::NotFound(_) => Problem::new(Code::NotFound, e.to_string()),
        other => Problem::new(Code::StorageUnavailable, other.to_string()),
    }
}

fn rejected(what: &str, r: Rejected) -> Problem {
    Problem::new(
        Code::InvalidChannelFile,
        format!("{what}: {} error(s)", r.0.len()),
    )
    .with_errors(r.0.iter().map(ToString::to_string).collect())
}

/// `value` when it is within `range`, else a problem naming the parameter.
fn within<T: PartialOrd + std::fmt::Display>(
    name: &str,
    value: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, Problem> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(Problem::bad_request(format!(
            "{name}: {value} is not within {} to {}",
            range.start(),
            range.end()
        )))
    }
}

fn not_found(what: String) -> Problem {
    Problem::new(Code::NotFound, what)
}

fn time(t: Timestamp) -> String {
    kairos_rules::time::format_timestamp(t)
}

/// Slow work (password hashing, reports over thousands of visitors) off the async workers.
async fn blocking<T: Send + 'static>(
    what: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Problem> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Problem::internal(format!("{what} failed: {e}")))
}

impl ControlPlane {
    pub async fn open(
        database: &str,
        clock: fn() -> Timestamp,
    ) -> Result<ControlPlane, StoreError> {
        Ok(ControlPlane {
            store: ControlStore::open(database, &default_gates()).await?,
            profiles: Arc::new(ProfileStore::open(database).await?),
            no_user_hash: auth::hash_password(&auth::new_password()),
            group_data: tokio::sync::Mutex::new(HashMap::new()),
            histories: tokio::sync::Mutex::new(HashMap::new()),
            clock,
            changed: tokio::sync::watch::channel(0).0,
            stopping: std::sync::atomic::AtomicBool::new(false),
            tls: std::sync::atomic::AtomicBool::new(false),
            throttle: Default::default(),
            runs: Default::default(),
        })
    }

    fn now(&self) -> Timestamp {
        (self.clock)()
    }

    /// Whether it can serve: its design database answers.
    pub async fn ready(&self) -> Result<(), Problem> {
        self.store.groups().await.map(|_| ()).map_err(storage)
    }

    fn signal(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    /// Says the control plane is served over TLS.
    pub fn set_serves_tls(&self) {
        self.tls.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn serves_tls(&self) -> bool {
        self.tls.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Long polls in flight answer now rather than hold a shutdown for their wait.
    pub fn stop(&self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.signal();
    }

    async fn audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        detail: String,
    ) -> Result<(), Problem> {
        self.store
            .audit(&AuditEntry {
                at: self.now(),
                actor: actor.to_string(),
                action: action.to_string(),
                target: target.to_string(),
                detail,
            })
            .await
            .map_err(storage)
    }

    /// The tables of `group`'s data source: its own, or the default one.
    async fn profiles_for(&self, group: Option<&str>) -> Result<Arc<ProfileStore>, Problem> {
        let Some(group) = group else {
            return Ok(self.profiles.clone());
        };
        let Some(url) = self.group_named(group).await?.data else {
            return Ok(self.profiles.clone());
        };
        let mut open = self.group_data.lock().await;
        if let Some(store) = open.get(&url) {
            return Ok(store.clone());
        }
        let store = Arc::new(ProfileStore::open(&url).await.map_err(storage)?);
        open.insert(url, store.clone());
        Ok(store)
    }

    /// The default data source's table schemas, which channels are checked against.
    pub async fn schemas(&self) -> Result<Schemas, Problem> {
        let mut schemas = Schemas::new();
        for s in self.profiles.schemas().await.map_err(storage)? {
            schemas.insert(s);
        }
        Ok(schemas)
    }

    /// The current design of a channel, component by component.
    pub async fn design(&self, channel: &str) -> Result<Vec<Component>, Problem> {
        if self
            .store
            .channel(channel)
            .await
            .map_err(storage)?
            .is_none()
        {
            return Err(not_found(format!("channel '{channel}' does not exist")));
        }
        Ok(self
            .store
            .components(channel)
            .await
            .map_err(storage)?
            .into_iter()
            .map(|c| c.component)
            .collect())
    }

    async fn stored_version(&self, channel: &str, number: i64) -> Result<Version, Problem> {
        self.store
            .version(channel, number)
            .await
            .map_err(storage)?
            .ok_or_else(|| not_found(format!("channel '{channel}' has no version {number}")))
    }

    async fn group_named(&self, name: &str) -> Result<kairos_store::control::Group, Problem> {
        self.store
            .group(name)
            .await
            .map_err(storage)?
            .ok_or_else(|| not_found(format!("there is no server group '{name}'")))
    }

    /// Components of a version, or of the current design for `design`.
    async fn components_of(&self, channel: &str, which: &str) -> Result<Vec<Component>, Problem> {
        if which == "design" {
            return self.design(channel).await;
        }
        let number: i64 = which.parse().map_err(|_| {
            Problem::bad_request(format!("'{which}' is not a version number or 'design'"))
        })?;
        let v = self.stored_version(channel, number).await?;
        let parsed = kairos_model::read_channel(&format!("{channel} v{number}"), &v.yaml)
            .map_err(|e| rejected("stored version", e))?;
        Ok(components::split(&parsed))
    }
}
