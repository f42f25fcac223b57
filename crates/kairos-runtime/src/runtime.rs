//! The runtime's shared state and its operations, independent of the wire format: the native
//! API and the Interact-compatible one are thin translations onto these.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use kairos_engine::inprocess::MemoryTables;
use kairos_engine::random::SplitMix64;
use kairos_engine::world::{AudienceId, AudienceState, Profile};
use kairos_engine::{
    Deployment, EventResponse, Message, MessageCode, OffersRequest, OffersResponse, ProfileView,
    Session, SessionSnapshot, Start,
};
use kairos_rules::Value;
use kairos_rules::time::Timestamp;
use kairos_store::{BoxFuture, EncodedState, HistoryStore, StateWrite};

use crate::access::{Access, Grants, Origins};
use crate::held;
use crate::live::{Counted, Live, RequestWorld};
use crate::metrics::Metrics;
use crate::offers_json::OfferFragments;
use crate::sessions::{Entry, Sessions};
use crate::shared::{RedisSessions, SessionLock};
use kairos_api::{Code, Problem};

/// Where session profiles come from.
pub trait ProfileSource: Send + Sync {
    fn load<'a>(
        &'a self,
        dep: &'a Deployment,
        audience: &'a AudienceId,
    ) -> BoxFuture<'a, Result<Option<Profile>, String>>;
}

impl ProfileSource for MemoryTables {
    fn load<'a>(
        &'a self,
        dep: &'a Deployment,
        audience: &'a AudienceId,
    ) -> BoxFuture<'a, Result<Option<Profile>, String>> {
        let profile = self.load_profile(dep, audience);
        Box::pin(async move { Ok(profile) })
    }
}

/// A deployed channel version.
pub struct Loaded {
    pub deployment: Arc<Deployment>,
    /// Content hash of the channel's canonical form.
    pub hash: String,
    /// The get offers answer's fixed part of each offer, rendered once here.
    pub fragments: OfferFragments,
}

pub struct Config {
    pub max_sessions: usize,
    pub idle_timeout: Duration,
    /// The longest start session waits for the profile and history stores.
    pub store_budget: Duration,
    /// Touchpoint tokens; empty runs open (the banner says so).
    pub tokens: Vec<String>,
    /// Origins whose pages may call from a browser (CORS), besides the group's.
    pub cors_origins: Vec<String>,
    pub body_limit: usize,
    pub limits: Limits,
    /// The clock decisions use: the wall clock, or a fixed time in tests.
    pub clock: fn() -> Timestamp,
}

/// What one caller can make a runtime hold or answer. A call past one is refused with 422
/// `LIMIT_EXCEEDED` naming it, and changes nothing.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// A session ID a caller chooses.
    pub session_id_chars: usize,
    /// Real-time parameters one session holds.
    pub params_per_session: usize,
    /// One parameter: its name and, for text, its value, in bytes.
    pub param_bytes: usize,
    /// Commands in one batch (native or Interact).
    pub batch_commands: usize,
    /// The answer of one batch.
    pub answer_bytes: usize,
    pub connections: kairos_api::serve::ConnectionLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            session_id_chars: 128,
            params_per_session: 1000,
            param_bytes: 4096,
            batch_commands: 100,
            answer_bytes: 1024 * 1024,
            connections: Default::default(),
        }
    }
}

/// A refusal naming the limit a call met.
pub fn limit_exceeded(detail: String) -> Problem {
    Problem::new(Code::LimitExceeded, detail)
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_sessions: 1_000_000,
            idle_timeout: Duration::from_secs(30 * 60),
            store_budget: Duration::from_millis(200),
            tokens: Vec::new(),
            cors_origins: Vec::new(),
            body_limit: 64 * 1024,
            limits: Limits::default(),
            clock: kairos_api::wall_clock,
        }
    }
}

pub struct ProfileHandle(pub Box<dyn ProfileSource>);

pub struct Runtime {
    channels: ArcSwap<HashMap<String, Arc<Loaded>>>,
    profiles: ArcSwap<ProfileHandle>,
    pub sessions: Sessions,
    /// Sessions shared with the other instances of the group (Redis), instead of `sessions`.
    shared: Option<Arc<RedisSessions>>,
    pub store: HistoryStore,
    pub live: Arc<Live>,
    pub metrics: Metrics,
    pub config: Config,
    /// The touchpoint tokens the control plane issued for this group's channels, and
    /// whether the group is open.
    grants: ArcSwap<Grants>,
    origins: Arc<ArcSwap<Origins>>,
    /// CORS over `origins`, for calls from browsers.
    cors: tower_http::cors::CorsLayer,
    counter: AtomicU64,
    /// Per-process random keys: hashing a counter under them gives session IDs and random
    /// seeds nobody can predict, without a cryptography dependency.
    keys: RandomState,
}

/// Start-session parameters, already validated.
pub struct StartCall {
    pub session_id: Option<String>,
    pub channel: String,
    pub audience: AudienceId,
    pub params: Vec<(String, Value)>,
    pub rely_on_existing_session: bool,
    pub debug: bool,
}

pub struct Started {
    pub session_id: String,
    pub messages: Vec<Message>,
    pub segments: Option<Vec<String>>,
}

impl Runtime {
    pub fn new(store: HistoryStore, profiles: Box<dyn ProfileSource>, config: Config) -> Runtime {
        let origins = Arc::new(ArcSwap::from_pointee(Origins::new(&config.cors_origins)));
        let cors = crate::cors(origins.clone());
        Runtime {
            channels: ArcSwap::from_pointee(HashMap::new()),
            profiles: ArcSwap::from_pointee(ProfileHandle(profiles)),
            sessions: Sessions::new(config.max_sessions, config.idle_timeout),
            shared: None,
            store,
            live: Arc::default(),
            metrics: Metrics::default(),
            config,
            grants: ArcSwap::from_pointee(Grants::open()),
            origins,
            cors,
            counter: AtomicU64::new(0),
            keys: RandomState::new(),
        }
    }

    /// Keeps sessions in Redis, shared with the group's other instances, and counts
    /// contacts and learning statistics with them.
    pub fn with_shared_sessions(mut self, shared: RedisSessions) -> Runtime {
        self.live = Arc::new(Live::shared(shared.group_counts()));
        self.shared = Some(Arc::new(shared));
        self
    }

    /// Loads learning statistics and recent contact counts from history (at start-up); an
    /// instance of a group fills the group's counters from it if they are missing.
    pub async fn warm(&self) -> Result<(), Problem> {
        self.live.warm(&self.store, self.now()).await
    }

    /// Swaps in a deployment: requests already running finish on the version they hold, new
    /// ones get this one.
    pub fn deploy(&self, deployment: Deployment, hash: String) {
        let name = deployment.channel.to_ascii_lowercase();
        let loaded = Arc::new(Loaded {
            fragments: OfferFragments::new(&deployment),
            deployment: Arc::new(deployment),
            hash,
        });
        self.channels.rcu(|current| {
            let mut next = HashMap::clone(current);
            next.insert(name.clone(), loaded.clone());
            next
        });
    }

    pub fn set_profiles(&self, profiles: Box<dyn ProfileSource>) {
        self.profiles.store(Arc::new(ProfileHandle(profiles)));
    }

    pub fn channels(&self) -> Arc<HashMap<String, Arc<Loaded>>> {
        self.channels.load_full()
    }

    pub fn ready(&self) -> bool {
        !self.channels.load().is_empty()
    }

    /// Whether a load balancer may send it calls: a deployment is loaded, and the history
    /// database and (for a group sharing them) the session store answer within a second.
    pub async fn readiness(&self) -> Result<(), Problem> {
        if !self.ready() {
            return Err(Problem::new(Code::NotReady, "no deployment is loaded yet"));
        }
        let budget = Duration::from_secs(1);
        match tokio::time::timeout(budget, self.store.ping()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(storage(e)),
            Err(_) => {
                return Err(Problem::new(
                    Code::StorageUnavailable,
                    format!("the history database did not answer within {budget:?}"),
                ));
            }
        }
        if self.shared.is_some() {
            tokio::time::timeout(budget, self.live_sessions())
                .await
                .map_err(|_| {
                    Problem::new(
                        Code::SessionsUnavailable,
                        format!("the shared session store did not answer within {budget:?}"),
                    )
                })??;
        }
        Ok(())
    }

    /// The deployment serving `channel`; sessions keep the lowercase key, so the request
    /// path looks it up without allocating.
    fn loaded(&self, channel: &str) -> Result<Arc<Loaded>, Problem> {
        let channels = self.channels.load();
        let found = match channels.get(channel) {
            Some(loaded) => Some(loaded),
            None => channels.get(&channel.to_ascii_lowercase()),
        };
        found
            .cloned()
            .ok_or_else(|| Problem::channel_not_found(channel))
    }

    /// Replaces what the control plane says of the group: open or closed, and its tokens.
    pub fn set_grants(&self, grants: Grants) {
        self.grants.store(Arc::new(grants));
    }

    /// The group's browser origins, with those of the command line.
    pub fn set_group_origins(&self, group: &[String]) {
        let origins = Origins::new(self.config.cors_origins.iter().chain(group));
        self.origins.store(Arc::new(origins));
    }

    /// CORS for a call from a browser.
    pub(crate) fn cors(&self) -> &tower_http::cors::CorsLayer {
        &self.cors
    }

    /// Whether touchpoints may call without a token: the group is open and no token was
    /// given on the command line.
    pub fn is_open(&self) -> bool {
        self.config.tokens.is_empty() && self.grants.load().open
    }

    /// What a call with these credentials may reach. Tokens given on the command line are
    /// compared in constant time, so the answer's timing tells nothing about how close a
    /// guess was; issued tokens are compared by digest, which a guess cannot steer.
    pub fn access<'a>(&self, tokens: impl IntoIterator<Item = &'a str>) -> Result<Access, Problem> {
        if self.is_open() {
            return Ok(Access::Any);
        }
        let same = |a: &[u8], b: &[u8]| {
            a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
        };
        let grants = self.grants.load();
        let now = self.now().0.div_euclid(1_000_000_000);
        let mut given = false;
        for token in tokens {
            given = true;
            let configured = self.config.tokens.iter().fold(false, |found, t| {
                same(t.as_bytes(), token.as_bytes()) | found
            });
            if configured {
                return Ok(Access::Any);
            }
            if let Some(access) = grants.access(token, now) {
                return access;
            }
        }
        Err(if given {
            Problem::new(Code::Forbidden, "this token is not valid for this runtime")
        } else {
            Problem::new(
                Code::Unauthorized,
                "send a touchpoint token: Authorization: Bearer <token>",
            )
        })
    }

    /// Refuses a call that sends a parameter larger than the limit, or would leave a session
    /// holding `total` parameters, more than the limit.
    fn check_params(&self, total: usize, params: &[(String, Value)]) -> Result<(), Problem> {
        let limit = self.config.limits.param_bytes;
        for (name, value) in params {
            let bytes = name.len()
                + match value {
                    Value::String(text) => text.len(),
                    _ => 0,
                };
            if bytes > limit {
                let shown: String = name.chars().take(40).collect();
                return Err(limit_exceeded(format!(
                    "params: '{shown}' takes {bytes} bytes, more than the limit of {limit}"
                )));
            }
        }
        let limit = self.config.limits.params_per_session;
        if total > limit {
            return Err(limit_exceeded(format!(
                "params: the session would hold {total} parameters, more than the limit of {limit}"
            )));
        }
        Ok(())
    }

    pub fn now(&self) -> Timestamp {
        (self.config.clock)()
    }

    fn unpredictable(&self) -> u64 {
        self.keys
            .hash_one(self.counter.fetch_add(1, Ordering::Relaxed))
    }

    /// A random source for one request (treatment codes, sampling, learning draws).
    fn rng(&self) -> SplitMix64 {
        SplitMix64(self.unpredictable())
    }

    /// A request's ID, for logs.
    pub fn request_id(&self) -> String {
        format!("{:016x}", self.unpredictable())
    }

    /// A session ID nobody can guess from another.
    pub(crate) fn new_session_id(&self) -> String {
        format!("{:016x}{:016x}", self.unpredictable(), self.unpredictable())
    }

    /// Loads what a session needs about its audience within the time budget; on overrun or
    /// failure the session starts with what is known, and a warning says so.
    async fn load_audience(
        &self,
        dep: &Deployment,
        audience: &AudienceId,
        messages: &mut Vec<Message>,
    ) -> (Option<Profile>, AudienceState) {
        let budget = self.config.store_budget;
        let key = audience.key();
        let profiles = self.profiles.load_full();
        let (profile, state) = tokio::join!(
            tokio::time::timeout(budget, profiles.0.load(dep, audience)),
            tokio::time::timeout(budget, self.store.load_audience(&key)),
        );
        let profile_codes = (MessageCode::ProfileUnavailable, MessageCode::ProfileTimeout);
        let profile = within_budget(
            profile,
            Some(Profile::new()),
            profile_codes,
            "the profile",
            budget,
            messages,
        );
        let state_codes = (MessageCode::HistoryUnavailable, MessageCode::HistoryTimeout);
        let state = within_budget(
            state,
            Default::default(),
            state_codes,
            "suppression and pattern state",
            budget,
            messages,
        );
        (profile, state)
    }

    pub async fn start_session(
        &self,
        call: StartCall,
        access: &Access,
    ) -> Result<Started, Problem> {
        access.check(&call.channel)?;
        let limit = self.config.limits.session_id_chars;
        if let Some(id) = &call.session_id
            && id.chars().count() > limit
        {
            return Err(limit_exceeded(format!(
                "session_id: {} characters, more than the limit of {limit}",
                id.chars().count()
            )));
        }
        self.check_params(Session::params_of_new(&call.params), &call.params)?;
        let loaded = self.loaded(&call.channel)?;
        let dep = &loaded.deployment;
        let session_id = call
            .session_id
            .clone()
            .unwrap_or_else(|| self.new_session_id());
        let channel = dep.channel.to_ascii_lowercase();
        if call.rely_on_existing_session && self.session_exists(&session_id).await? {
            let reused = self
                .with_session(&session_id, access, async |entry: &mut Entry| {
                    if entry.channel != channel {
                        return Ok(None);
                    }
                    self.check_params(entry.session.params_after(&call.params), &call.params)?;
                    let now = self.now();
                    entry.session.set_params(dep, &call.params, now);
                    Ok(Some(
                        entry
                            .session
                            .debug()
                            .then(|| entry.session.segments(dep, now)),
                    ))
                })
                .await?;
            if let Some(segments) = reused {
                return Ok(Started {
                    session_id,
                    messages: Vec::new(),
                    segments,
                });
            }
        }
        let mut messages = Vec::new();
        let mut audience = call.audience;
        if audience.level.is_empty()
            && let Some(level) = dep.default_audience_level()
        {
            audience.level = level.to_string();
        }
        let (profile, state) = self.load_audience(dep, &audience, &mut messages).await;
        let start = Start {
            session_id: session_id.clone(),
            audience,
            profile,
            state,
            params: call.params,
            debug: call.debug,
        };
        let now = self.now();
        let (mut session, engine_messages) =
            Session::start(dep, start, now).map_err(|m| Problem::new(m.code.into(), m.message))?;
        messages.extend(engine_messages);
        let segments = call.debug.then(|| session.segments(dep, now));
        if let Some(shared) = &self.shared {
            // A replaced session had nothing left to write: each call wrote what it produced.
            let started = if held::in_batch() {
                let entry = Entry { session, channel };
                self.start_held(shared, entry, loaded.deployment.clone())
                    .await?
            } else {
                shared
                    .start(&channel, &session.snapshot(dep), self.sessions.max)
                    .await?
            };
            if !started {
                return Err(self.too_many_sessions("the server group holds"));
            }
            return Ok(Started {
                session_id,
                messages,
                segments,
            });
        }
        match self
            .sessions
            .insert(session_id.clone(), Entry { session, channel })
        {
            // The session it replaces is ended properly: what it held is written.
            Ok(Some(replaced)) => self.close(replaced).await?,
            Ok(None) => {}
            Err(_) => return Err(self.too_many_sessions("this runtime holds")),
        }
        Ok(Started {
            session_id,
            messages,
            segments,
        })
    }

    /// `holder`: who is full, "this runtime holds" or, with shared sessions, "the server
    /// group holds".
    fn too_many_sessions(&self, holder: &str) -> Problem {
        Problem::new(
            Code::TooManySessions,
            format!(
                "{holder} its maximum of {} sessions; retry later",
                self.sessions.max
            ),
        )
    }

    /// Takes session `id`'s shared lock and reads it.
    pub(crate) async fn lock_shared(
        &self,
        id: &str,
    ) -> Result<(SessionLock, Option<(String, SessionSnapshot)>), Problem> {
        let shared = self.shared.as_ref().expect("only for shared sessions");
        shared.lock_and_load(id, self.new_session_id()).await
    }

    /// The deployment serving `channel`.
    pub(crate) fn deployment_of(&self, channel: &str) -> Result<Arc<Deployment>, Problem> {
        Ok(self.loaded(channel)?.deployment.clone())
    }

    /// Whether its sessions are shared with the group's other instances.
    pub fn shares_sessions(&self) -> bool {
        self.shared.is_some()
    }

    /// Live sessions: this runtime's in memory or, with shared sessions, the group's.
    pub async fn live_sessions(&self) -> Result<usize, Problem> {
        match &self.shared {
            Some(shared) => shared.live().await,
            None => Ok(self.sessions.len()),
        }
    }

    async fn session_exists(&self, id: &str) -> Result<bool, Problem> {
        match &self.shared {
            Some(shared) => shared.exists(id).await,
            None => Ok(self.sessions.get(id).is_some()),
        }
    }

    /// Runs `f` on session `id`, when `access` reaches its channel: in memory under the
    /// session's mutex, or, with shared sessions, under its Redis lock, loaded before and
    /// stored after.
    async fn with_session<R>(
        &self,
        id: &str,
        access: &Access,
        f: impl AsyncFnOnce(&mut Entry) -> Result<R, Problem>,
    ) -> Result<R, Problem> {
        if self.shared.is_none() {
            let slot = self
                .sessions
                .get(id)
                .ok_or_else(|| Problem::session_not_found(id))?;
            let mut entry = slot.entry.lock().await;
            access.check(&entry.channel)?;
            return f(&mut entry).await;
        }
        if held::in_batch() {
            return self
                .with_held(id, async move |entry: &mut Entry| {
                    access.check(&entry.channel)?;
                    f(entry).await
                })
                .await;
        }
        let (lock, found) = self.lock_shared(id).await?;
        let done = async {
            let (channel, snapshot) = found.ok_or_else(|| Problem::session_not_found(id))?;
            access.check(&channel)?;
            let mut entry = Entry {
                session: Session::restore(snapshot),
                channel,
            };
            let value = f(&mut entry).await?;
            let loaded = self.loaded(&entry.channel)?;
            let snapshot = entry.session.snapshot(&loaded.deployment);
            Ok((value, entry.channel, snapshot))
        }
        .await;
        match done {
            Ok((value, channel, snapshot)) => {
                lock.save_and_release(channel, snapshot).await?;
                Ok(value)
            }
            Err(problem) => {
                lock.release().await;
                Err(problem)
            }
        }
    }

    /// Decides the offers, and hands back the deployment that did, for its rendered fragments.
    pub async fn get_offers(
        &self,
        id: &str,
        access: &Access,
        request: OffersRequest,
    ) -> Result<(OffersResponse, Arc<Loaded>), Problem> {
        self.with_session(id, access, async |entry: &mut Entry| {
            self.check_params(entry.session.params_after(&request.params), &request.params)?;
            let loaded = self.loaded(&entry.channel)?;
            let dep = &loaded.deployment;
            let now = self.now();
            let group_contacts = self.live.group_contacts(dep, now).await?;
            let world = RequestWorld::new(&self.live, None).with_group_contacts(group_contacts);
            let response = entry
                .session
                .get_offers(dep, &world, &mut self.rng(), &request, now);
            self.metrics
                .offers_served(response.offer_lists.iter().map(|l| l.offers.len()).sum());
            for r in request
                .requests
                .iter()
                .filter(|r| !dep.has_interaction_point(&r.ip))
            {
                self.metrics
                    .unknown_name("interaction_point", &dep.channel, &r.ip);
            }
            Ok((response, loaded))
        })
        .await
    }

    pub async fn post_event(
        &self,
        id: &str,
        access: &Access,
        event: &str,
        params: Vec<(String, Value)>,
    ) -> Result<EventResponse, Problem> {
        let (response, write) = self
            .with_session(id, access, async |entry: &mut Entry| {
                self.check_params(entry.session.params_after(&params), &params)?;
                let loaded = self.loaded(&entry.channel)?;
                let dep = &loaded.deployment;
                // A response naming a treatment of an earlier session: fetch it before deciding.
                let code = kairos_engine::TREATMENT_CODE_PARAMS
                    .iter()
                    .find_map(|p| params.iter().find(|(n, _)| n.eq_ignore_ascii_case(p)))
                    .map(|(_, v)| kairos_engine::world::id_text(v));
                let earlier = match code {
                    Some(code) if !entry.session.has_treatment(&code) => {
                        self.store.find_contact(&code).await.map_err(storage)?
                    }
                    _ => None,
                };
                // The world holds a snapshot guard: a temporary, gone before the write's await.
                let response = entry.session.post_event(
                    dep,
                    &RequestWorld::new(&self.live, earlier),
                    event,
                    &params,
                    self.now(),
                );
                if !dep.has_event(event) {
                    self.metrics.unknown_name("event", &dep.channel, event);
                }
                // Queued in order under the session's lock; waited for after it is released,
                // so the next call for this session need not wait for this fsync.
                Ok((
                    response,
                    QueuedWrite::queue(&self.store, &self.live, &mut entry.session).await?,
                ))
            })
            .await?;
        write.durable().await?;
        Ok(response)
    }

    pub async fn set_audience(
        &self,
        id: &str,
        access: &Access,
        audience: AudienceId,
        params: Vec<(String, Value)>,
    ) -> Result<Vec<Message>, Problem> {
        self.with_session(id, access, async |entry: &mut Entry| {
            self.check_params(entry.session.params_after(&params), &params)?;
            let loaded = self.loaded(&entry.channel)?;
            let dep = &loaded.deployment;
            // The previous audience's state is saved before the session moves on.
            QueuedWrite::queue(&self.store, &self.live, &mut entry.session)
                .await?
                .durable()
                .await?;
            let mut messages = Vec::new();
            let (profile, state) = self.load_audience(dep, &audience, &mut messages).await;
            let more = entry
                .session
                .set_audience(dep, audience, profile, state, &params, self.now())
                .map_err(|m| Problem::new(m.code.into(), m.message))?;
            messages.extend(more);
            Ok(messages)
        })
        .await
    }

    pub async fn get_profile(&self, id: &str, access: &Access) -> Result<ProfileView, Problem> {
        self.with_session(id, access, async |entry: &mut Entry| {
            let loaded = self.loaded(&entry.channel)?;
            let dep = &loaded.deployment;
            Ok(entry.session.profile_view(dep, self.now()))
        })
        .await
    }

    pub async fn set_debug(&self, id: &str, access: &Access, debug: bool) -> Result<(), Problem> {
        self.with_session(id, access, async |entry: &mut Entry| {
            entry.session.set_debug(debug);
            Ok(())
        })
        .await
    }

    /// Ends a session; its history is durable before this returns.
    pub async fn end_session(&self, id: &str, access: &Access) -> Result<(), Problem> {
        if !matches!(access, Access::Any) {
            // Only a token for the session's channel may end it.
            self.with_session(id, access, async |_: &mut Entry| Ok(()))
                .await?;
        }
        let Some(shared) = &self.shared else {
            let slot = self
                .sessions
                .remove(id)
                .ok_or_else(|| Problem::session_not_found(id))?;
            return self.close(slot).await;
        };
        if held::in_batch()
            && let Some(ended) = self.end_held(id).await
        {
            return ended;
        }
        // Every call already wrote what it produced: ending is forgetting.
        if shared.remove(id).await? {
            Ok(())
        } else {
            Err(Problem::session_not_found(id))
        }
    }

    /// Writes what a session taken out of the table still holds. The work runs as a task of
    /// its own: a caller that hangs up while it waits for the session's lock or for the
    /// commit must not leave a session gone from the table with its state unwritten.
    async fn close(&self, slot: Arc<crate::sessions::Slot>) -> Result<(), Problem> {
        let (store, live) = (self.store.clone(), self.live.clone());
        tokio::spawn(async move {
            let mut entry = slot.entry.lock().await;
            QueuedWrite::queue(&store, &live, &mut entry.session)
                .await?
                .durable()
                .await
        })
        .await
        .map_err(|e| Problem::internal(format!("closing the session failed: {e}")))?
    }

    /// Flushes and forgets sessions idle past the timeout, as an end session would.
    pub async fn expire_idle(&self) -> usize {
        let expired = self.sessions.expire();
        let n = expired.len();
        for slot in expired {
            let _ = self.close(slot).await;
        }
        n
    }

    /// Shutdown: every session's pending state is written.
    pub async fn close_all(&self) {
        for slot in self.sessions.drain() {
            let _ = self.close(slot).await;
        }
    }
}

/// A write queued for the next group commit. It counts its records for learning and global
/// caps once the commit is on disk, whoever is still waiting: a caller that hangs up drops
/// it half-way (at any await after it was queued), yet the write still commits, so what is
/// left of the wait then goes to a task of its own and the counts never miss a record the
/// history holds.
struct QueuedWrite {
    /// `None` once the commit has resolved.
    commit: Option<kairos_store::Commit>,
    counted: Vec<Counted>,
    live: Arc<Live>,
}

impl QueuedWrite {
    /// Queues what a session has to write: its new records and, when it changed, its
    /// audience's state. Room in the queue comes first, so a caller dropped while it waits
    /// for room leaves all of it in the session for the next write.
    async fn queue(
        store: &HistoryStore,
        live: &Arc<Live>,
        session: &mut Session,
    ) -> Result<QueuedWrite, Problem> {
        let room = store.reserve().await.map_err(storage)?;
        let records = session.take_records();
        let key = session.audience_key().to_string();
        let state = session
            .take_changed_state()
            .map(|(base, state)| StateWrite {
                key,
                base: Some(EncodedState::new(&base)),
                state: EncodedState::new(state),
            });
        let counted = records.iter().map(Counted::of).collect();
        Ok(QueuedWrite {
            commit: Some(room.enqueue(records, state)),
            counted,
            live: live.clone(),
        })
    }

    /// Waits until the write is on disk, then counts its records.
    async fn durable(mut self) -> Result<(), Problem> {
        if let Some(commit) = self.commit.as_mut() {
            let committed = commit.await;
            self.commit = None;
            committed.map_err(storage)?;
        }
        self.live.commit(&self.counted).await;
        Ok(())
    }
}

impl Drop for QueuedWrite {
    fn drop(&mut self) {
        let Some(commit) = self.commit.take() else {
            return;
        };
        // Outside a runtime (its shutdown) there is nothing left to count for.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (counted, live) = (std::mem::take(&mut self.counted), self.live.clone());
            runtime.spawn(async move {
                if commit.await.is_ok() {
                    live.commit(&counted).await;
                }
            });
        }
    }
}

/// A store's answer within the time budget, or `fallback` and a warning: the first code when
/// the store failed, the second when it was too slow.
fn within_budget<T, E: std::fmt::Display>(
    result: Result<Result<T, E>, tokio::time::error::Elapsed>,
    fallback: T,
    (failed, slow): (MessageCode, MessageCode),
    what: &str,
    budget: Duration,
    messages: &mut Vec<Message>,
) -> T {
    let (code, message) = match result {
        Ok(Ok(value)) => return value,
        Ok(Err(e)) => (
            failed,
            format!("{what} could not be loaded ({e}); the session starts without it"),
        ),
        Err(_) => (
            slow,
            format!("{what} did not load within {budget:?}; the session starts without it"),
        ),
    };
    messages.push(Message::warning(code, message));
    fallback
}

fn storage(e: kairos_store::StoreError) -> Problem {
    Problem::new(Code::StorageUnavailable, e.to_string())
}
