//! A runtime following its server group: long-polls the control plane for the group's
//! active versions, compiles and swaps them in, caches the last good answer on disk (served
//! at the next start even with the control plane down), and reports which versions it runs
//! and the names touchpoints called that its channels lack.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kairos_api::control::{ActiveAnswer, Heartbeat, InstanceStats, RunningVersion, UnknownReport};
use kairos_api::{Client, ClientError};
use kairos_engine::{CompileError, Deployment};
use kairos_model::Rejected;
use kairos_store::{ProfileStore, StoreError};

use serde::de::IgnoredAny;

use crate::Runtime;
use crate::access::Grants;
use crate::profiles::StoreProfiles;

/// Why a group's versions were not swapped in (the runtime keeps serving what it ran).
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Rejected(#[from] Rejected),
    #[error("cannot compile {shown}: {source}")]
    Compile { shown: String, source: CompileError },
    #[error("the cached answer is not JSON: {0}")]
    Cache(#[from] serde_json::Error),
    #[error("cannot write the cache: {0}")]
    Io(#[from] std::io::Error),
}

type Result<T> = std::result::Result<T, FollowError>;

/// How long one poll waits for a change; also the longest gap between status reports.
const POLL_SECONDS: u64 = 5;

pub struct Follow {
    pub control: String,
    /// A PEM file of the CA that signed the control plane's certificate, if private.
    pub ca_file: Option<PathBuf>,
    pub token: Option<String>,
    pub group: String,
    /// This instance's name in the control plane's status page.
    pub instance: String,
    /// The address touchpoints reach it at.
    pub address: String,
    /// Where the last good answer is kept.
    pub cache: PathBuf,
    /// The database with the profile tables, for type checking and profile loads, unless
    /// the group names its own data source.
    pub database: String,
}

impl Follow {
    fn cache_file(&self) -> PathBuf {
        self.cache.join(format!("{}.json", self.group))
    }

    /// Serves the cached versions, if any: what the group ran when this instance last heard.
    /// A cache that cannot be used is reported and skipped: the control plane's answer
    /// replaces it.
    pub async fn serve_cached(&self, runtime: &Runtime) -> bool {
        let Ok(bytes) = std::fs::read(self.cache_file()) else {
            return false;
        };
        let served = match serde_json::from_slice::<ActiveAnswer>(&bytes) {
            Ok(answer) => self.apply(runtime, &answer, true).await.map(|_| ()),
            Err(e) => Err(FollowError::Cache(e)),
        };
        if let Err(e) = &served {
            tracing::warn!(
                cache = %self.cache_file().display(),
                "not serving the cached versions: {e}"
            );
        }
        served.is_ok()
    }

    /// Swaps in every version of `answer` the runtime does not run yet, and the group's
    /// profile tables when they changed or `reload_profiles` says so.
    async fn apply(
        &self,
        runtime: &Runtime,
        answer: &ActiveAnswer,
        reload_profiles: bool,
    ) -> Result<Vec<String>> {
        let running = runtime.channels();
        let mut changed = Vec::new();
        let data = answer.data.as_deref().unwrap_or(&self.database);
        let mut profiles = None;
        if reload_profiles {
            profiles = Some(StoreProfiles::open(ProfileStore::open(data).await?).await?);
        }
        for d in &answer.deployments {
            let (channel, version) = (&d.channel, d.version.max(0) as u64);
            let current = running.get(&channel.to_ascii_lowercase());
            if current.is_some_and(|l| l.hash == d.hash && l.deployment.version == version) {
                continue;
            }
            // Tables may have been re-imported since: read their schemas afresh.
            if profiles.is_none() {
                profiles = Some(StoreProfiles::open(ProfileStore::open(data).await?).await?);
            }
            let schemas = profiles.as_ref().expect("opened above").schemas();
            let shown = format!("{channel} version {version}");
            let parsed = kairos_model::parse_channel(&shown, &d.yaml, &schemas)?;
            let deployment = Deployment::compile(&parsed, &schemas, version).map_err(|source| {
                FollowError::Compile {
                    shown: shown.clone(),
                    source,
                }
            })?;
            runtime.deploy(deployment, d.hash.clone());
            changed.push(shown);
        }
        if let Some(profiles) = profiles {
            runtime.set_profiles(Box::new(profiles));
        }
        runtime.set_grants(Grants::new(answer.open, &answer.touchpoint_tokens));
        runtime.set_group_origins(&answer.cors_origins);
        Ok(changed)
    }

    fn write_cache(&self, answer: &ActiveAnswer) -> Result<()> {
        std::fs::create_dir_all(&self.cache)?;
        // Written aside, synced and renamed: a crash mid-write leaves the previous cache whole.
        let partial = self.cache.join(format!("{}.json.partial", self.group));
        let mut file = std::fs::File::create(&partial)?;
        let text = serde_json::to_vec(answer).map_err(std::io::Error::other)?;
        std::io::Write::write_all(&mut file, &text)?;
        file.sync_all()?;
        std::fs::rename(&partial, self.cache_file())?;
        Ok(())
    }

    fn running(runtime: &Runtime) -> BTreeMap<String, RunningVersion> {
        runtime
            .channels()
            .values()
            .map(|l| {
                let running = RunningVersion {
                    version: u32::try_from(l.deployment.version).unwrap_or(u32::MAX),
                    hash: l.hash.clone(),
                };
                (l.deployment.channel.clone(), running)
            })
            .collect()
    }

    /// Polls and reports until the process ends. Runs on its own thread: the control plane
    /// being slow or down never holds up a request.
    pub fn spawn(self, runtime: Arc<Runtime>, handle: tokio::runtime::Handle) {
        std::thread::spawn(move || self.follow(&runtime, &handle));
    }

    fn follow(&self, runtime: &Runtime, handle: &tokio::runtime::Handle) {
        let mut generation = -1i64;
        // The group's data source as last applied (the cached answer's, at start).
        let mut data: Option<Option<String>> = None;
        let mut reported: HashMap<(String, String, String), u64> = HashMap::new();
        let mut last_report: Option<Instant> = None;
        let mut requests_at_report = runtime.metrics.requests();
        let mut down_since: Option<Instant> = None;
        let mut swapped = false;
        let control = match Client::with_ca_file(
            &self.control,
            self.token.clone(),
            self.ca_file.as_deref(),
        ) {
            Ok(client) => client,
            Err(e) => {
                tracing::error!(control = %self.control, "cannot follow the control plane: {e}");
                return;
            }
        };
        loop {
            let path = format!(
                "/api/groups/{}/active?after={generation}&wait={POLL_SECONDS}",
                self.group
            );
            match control.call::<ActiveAnswer>("GET", &path, None::<&()>) {
                Ok(answer) => {
                    if down_since.take().is_some() {
                        tracing::info!(control = %self.control, "control plane reachable again");
                    }
                    let next = answer.generation;
                    if next != generation {
                        let reload = data.as_ref() != Some(&answer.data);
                        match handle.block_on(self.apply(runtime, &answer, reload)) {
                            Ok(changed) => {
                                generation = next;
                                // Reported at once: a test run may be waiting for it.
                                swapped |= !changed.is_empty();
                                data = Some(answer.data.clone());
                                for shown in changed {
                                    tracing::info!(group = %self.group, "now serving {shown}");
                                }
                                if let Err(e) = self.write_cache(&answer) {
                                    tracing::warn!("cannot cache the group's versions: {e}");
                                }
                            }
                            Err(e) => {
                                tracing::error!(
                                    group = %self.group,
                                    "not swapped in, still serving what ran: {e}"
                                );
                                std::thread::sleep(Duration::from_secs(POLL_SECONDS));
                            }
                        }
                    }
                }
                Err(ClientError::Refused { text, .. }) => {
                    tracing::error!(control = %self.control, "control plane refused {path}: {text}");
                    std::thread::sleep(Duration::from_secs(POLL_SECONDS));
                }
                Err(e @ ClientError::Unexpected { .. }) => {
                    tracing::warn!("{e}; still serving what ran");
                    std::thread::sleep(Duration::from_secs(POLL_SECONDS));
                }
                Err(e) => {
                    if down_since.is_none() {
                        tracing::warn!(
                            control = %self.control,
                            "control plane unreachable ({e}); still serving what ran"
                        );
                        down_since = Some(Instant::now());
                    }
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            }
            if swapped
                || last_report.is_none_or(|t| t.elapsed() >= Duration::from_secs(POLL_SECONDS))
            {
                let mut unknown = Vec::new();
                let mut counted = Vec::new();
                for (kind, channel, name, count) in runtime.metrics.unknown_names() {
                    let key = (kind.to_string(), channel.clone(), name.clone());
                    let before = reported.get(&key).copied().unwrap_or(0);
                    if count > before {
                        unknown.push(UnknownReport {
                            channel,
                            kind: kind.to_string(),
                            name,
                            calls: count - before,
                        });
                        counted.push((key, count));
                    }
                }
                let requests = runtime.metrics.requests();
                let seconds = last_report.map_or(1.0, |t| t.elapsed().as_secs_f64().max(0.001));
                let ms = |q| {
                    runtime
                        .metrics
                        .quantile("get_offers", q)
                        .map(|s| s * 1000.0)
                };
                let status = Heartbeat {
                    address: self.address.clone(),
                    running: Self::running(runtime),
                    unknown,
                    stats: InstanceStats {
                        requests_per_second: (requests - requests_at_report) as f64 / seconds,
                        requests_total: requests,
                        get_offers_p50_ms: ms(0.5),
                        get_offers_p99_ms: ms(0.99),
                        sessions_live: handle
                            .block_on(runtime.live_sessions())
                            .ok()
                            .map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
                        sessions_shared: runtime.shares_sessions(),
                    },
                };
                let path = format!("/api/groups/{}/instances/{}", self.group, self.instance);
                // Counts are marked reported only once the control plane has them.
                if control
                    .call::<IgnoredAny>("POST", &path, Some(&status))
                    .is_ok()
                {
                    reported.extend(counted);
                    requests_at_report = requests;
                    last_report = Some(Instant::now());
                    swapped = false;
                }
            }
        }
    }
}
