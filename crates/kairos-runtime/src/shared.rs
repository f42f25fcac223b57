//! Sessions shared by several runtime instances of one server group, in Redis: each call
//! takes the session's lock, loads its snapshot, runs, and stores it back. Idle sessions
//! expire with their key's time to live; everything they had to write was written at the
//! call that produced it. A sorted set of session IDs by expiry time counts the group's live
//! sessions, for the maximum and the `kairos_sessions_live` gauge; times are Redis's own, so
//! the instances' clocks need not agree.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use kairos_engine::SessionSnapshot;
use kairos_engine::world::{AudienceId, Origin, Treatment};
use kairos_rules::Value;
use kairos_rules::time::{Duration as Span, Timestamp};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use serde_json::{Map, Value as J, json};

use kairos_api::{Code, Problem};

use crate::group::GroupCounts;

/// How long a call may hold a session's lock before another instance may take it.
const LOCK_MS: u64 = 10_000;
/// How long a call waits for a session another call holds.
const LOCK_WAIT: Duration = Duration::from_secs(5);

pub struct RedisSessions {
    conn: ConnectionManager,
    client: redis::Client,
    prefix: String,
    ttl: Duration,
    unlock: redis::Script,
    lock_load: redis::Script,
    save_release: redis::Script,
    start: redis::Script,
    remove: redis::Script,
    remove_locked: redis::Script,
    live: redis::Script,
}

/// Milliseconds by Redis's clock, in a script.
const NOW_MS: &str =
    "local t = redis.call('time') local now = t[1] * 1000 + math.floor(t[2] / 1000) ";
/// Forgets the sessions whose keys have expired (KEYS[1] is the set).
const PRUNE: &str = "redis.call('zremrangebyscore', KEYS[1], '-inf', now) ";
/// Stores a snapshot and counts its session live until it expires. KEYS[1] is the set,
/// KEYS[2] the session's key; ARGV: session ID, time to live (ms), snapshot.
const STORE: &str = "redis.call('set', KEYS[2], ARGV[3], 'PX', ARGV[2]) \
     redis.call('zadd', KEYS[1], now + ARGV[2], ARGV[1]) ";
/// Answers -1 while another call holds the session's lock (KEYS[3]).
const UNLESS_HELD: &str = "if redis.call('exists', KEYS[3]) == 1 then return -1 end ";

/// A script's answer while another call holds the session.
const HELD: i64 = -1;

fn unavailable(e: impl std::fmt::Display) -> Problem {
    Problem::new(
        Code::SessionsUnavailable,
        format!("the shared session store failed: {e}"),
    )
}

impl RedisSessions {
    /// Connects to `redis://...`; keys start with `prefix` (one per server group).
    pub async fn connect(url: &str, prefix: &str, ttl: Duration) -> Result<RedisSessions, String> {
        let client =
            redis::Client::open(url).map_err(|e| format!("bad sessions url '{url}': {e}"))?;
        let conn = client
            .get_connection_manager()
            .await
            .map_err(|e| format!("cannot reach {url}: {e}"))?;
        // Each call on a session is two round trips: take its lock and read it in one script,
        // store it and release the lock in another; start and end are one each.
        Ok(RedisSessions {
            conn,
            client,
            prefix: prefix.to_string(),
            ttl,
            // KEYS[1] the lock; ARGV[1] the caller's token.
            unlock: redis::Script::new(
                "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end",
            ),
            // KEYS[1] the lock, KEYS[2] the session; ARGV: token, lock time (ms). Nothing
            // while another call holds the lock, else the session (false when there is none).
            lock_load: redis::Script::new(
                "if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then \
                    return { redis.call('get', KEYS[2]) } end return false",
            ),
            // KEYS as `start`; ARGV as `STORE`, and ARGV[4] the token whose lock goes.
            save_release: redis::Script::new(&format!(
                "{NOW_MS}{STORE}\
                 if redis.call('get', KEYS[3]) == ARGV[4] then redis.call('del', KEYS[3]) end return 1"
            )),
            // KEYS: the set, the session, its lock; ARGV as `STORE`, ARGV[4] the group's
            // maximum (0, storing nothing, when full), and ARGV[5] a token to hold the lock
            // with from now on, or empty.
            start: redis::Script::new(&format!(
                "{UNLESS_HELD}{NOW_MS}{PRUNE}\
                 if not redis.call('zscore', KEYS[1], ARGV[1]) \
                    and redis.call('zcard', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end \
                 {STORE}\
                 if ARGV[5] ~= '' then redis.call('set', KEYS[3], ARGV[5], 'PX', {LOCK_MS}) end \
                 return 1"
            )),
            // KEYS as `start`; ARGV[1] the session ID. The keys removed.
            remove: redis::Script::new(&format!(
                "{UNLESS_HELD}redis.call('zrem', KEYS[1], ARGV[1]) return redis.call('del', KEYS[2])"
            )),
            // KEYS as `start`; ARGV: the session ID, the token holding its lock.
            remove_locked: redis::Script::new(
                "redis.call('zrem', KEYS[1], ARGV[1]) redis.call('del', KEYS[2]) \
                 if redis.call('get', KEYS[3]) == ARGV[2] then redis.call('del', KEYS[3]) end \
                 return 1",
            ),
            live: redis::Script::new(&format!(
                "{NOW_MS}{PRUNE}return redis.call('zcard', KEYS[1])"
            )),
        })
    }

    /// The group's shared counts, over the same server and key prefix.
    pub fn group_counts(&self) -> GroupCounts {
        GroupCounts::new(self.conn.clone(), self.client.clone(), &self.prefix)
    }

    fn live_key(&self) -> String {
        format!("{}:live", self.prefix)
    }

    fn ttl_ms(&self) -> u64 {
        self.ttl.as_millis() as u64
    }

    fn key(&self, id: &str) -> String {
        format!("{}:session:{id}", self.prefix)
    }

    fn lock_key(&self, id: &str) -> String {
        format!("{}:lock:{id}", self.prefix)
    }

    /// Runs `attempt` until it finds session `id` free of other calls (it answers `Some`),
    /// waiting a little longer each time; after [`LOCK_WAIT`], the session is busy.
    async fn when_free<T, F: Future<Output = Result<Option<T>, Problem>>>(
        &self,
        id: &str,
        mut attempt: impl FnMut() -> F,
    ) -> Result<T, Problem> {
        let deadline = tokio::time::Instant::now() + LOCK_WAIT;
        let mut pause = Duration::from_micros(200);
        loop {
            if let Some(done) = attempt().await? {
                return Ok(done);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Problem::new(
                    Code::SessionBusy,
                    format!("session '{id}' is busy; retry"),
                ));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(10));
        }
    }

    /// `script` called with the keys and arguments [`STORE`] takes, and the session's lock.
    fn store_call<'s>(
        &self,
        script: &'s redis::Script,
        channel: &str,
        snapshot: &SessionSnapshot,
    ) -> redis::ScriptInvocation<'s> {
        let mut call = script.key(self.live_key());
        call.key(self.key(&snapshot.id))
            .key(self.lock_key(&snapshot.id))
            .arg(&snapshot.id)
            .arg(self.ttl_ms())
            .arg(encode(channel, snapshot));
        call
    }

    /// Stores a new session's first snapshot and counts it among the group's, unless the
    /// group holds `max` already (then stores nothing, and answers false); a session already
    /// counted (restarted under its ID) is always let in. One script: admission and storage
    /// cannot part, and a call holding the session is waited for.
    pub async fn start(
        &self,
        channel: &str,
        snapshot: &SessionSnapshot,
        max: usize,
    ) -> Result<bool, Problem> {
        self.start_with(channel, snapshot, max, "").await
    }

    /// As [`RedisSessions::start`], and the session's lock is held from then on with the
    /// answer (none when the group is full).
    pub async fn start_locked(
        self: &Arc<Self>,
        channel: &str,
        snapshot: &SessionSnapshot,
        max: usize,
        token: String,
    ) -> Result<Option<SessionLock>, Problem> {
        let started = self.start_with(channel, snapshot, max, &token).await?;
        Ok(started.then(|| SessionLock {
            sessions: self.clone(),
            id: snapshot.id.clone(),
            token,
            unsaved: None,
            released: false,
        }))
    }

    async fn start_with(
        &self,
        channel: &str,
        snapshot: &SessionSnapshot,
        max: usize,
        token: &str,
    ) -> Result<bool, Problem> {
        let mut call = self.store_call(&self.start, channel, snapshot);
        call.arg(max).arg(token);
        let call = &call;
        self.when_free(&snapshot.id, || {
            let mut conn = self.conn.clone();
            async move {
                let started: i64 = call.invoke_async(&mut conn).await.map_err(unavailable)?;
                Ok((started != HELD).then_some(started == 1))
            }
        })
        .await
    }

    /// The group's live sessions.
    pub async fn live(&self) -> Result<usize, Problem> {
        let mut conn = self.conn.clone();
        self.live
            .key(self.live_key())
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)
    }

    /// Takes the session's lock (calls for one session are serialised across instances) and
    /// reads the session: its channel and snapshot, or none. The lock is held from before it
    /// is asked for: a call dropped at any await from here on still releases it (see
    /// [`SessionLock`]).
    pub async fn lock_and_load(
        self: &Arc<Self>,
        id: &str,
        token: String,
    ) -> Result<(SessionLock, Option<(String, SessionSnapshot)>), Problem> {
        let mut lock = SessionLock {
            sessions: self.clone(),
            id: id.to_string(),
            token,
            unsaved: None,
            released: false,
        };
        let mut call = self.lock_load.key(self.lock_key(id));
        call.key(self.key(id)).arg(&lock.token).arg(LOCK_MS);
        let call = &call;
        let found = self
            .when_free(id, || {
                let mut conn = self.conn.clone();
                async move {
                    let taken: Option<(Option<String>,)> =
                        call.invoke_async(&mut conn).await.map_err(unavailable)?;
                    Ok(taken.map(|(text,)| text))
                }
            })
            .await;
        let text = match found {
            Ok(text) => text,
            Err(problem) => {
                // Not taken: nothing of this call's to release.
                lock.released = true;
                return Err(problem);
            }
        };
        let session = text
            .map(|t: String| {
                decode(&t).ok_or_else(|| unavailable(format!("session '{id}' is unreadable")))
            })
            .transpose();
        match session {
            Ok(session) => Ok((lock, session)),
            Err(problem) => {
                lock.release().await;
                Err(problem)
            }
        }
    }

    /// Releases the lock if `token` still holds it.
    async fn unlock(&self, id: &str, token: &str) {
        let mut conn = self.conn.clone();
        let _: Result<i64, _> = self
            .unlock
            .key(self.lock_key(id))
            .arg(token)
            .invoke_async(&mut conn)
            .await;
    }

    pub async fn exists(&self, id: &str) -> Result<bool, Problem> {
        let mut conn = self.conn.clone();
        conn.exists(self.key(id)).await.map_err(unavailable)
    }

    async fn save_release(
        &self,
        channel: &str,
        snapshot: &SessionSnapshot,
        token: &str,
    ) -> Result<(), Problem> {
        let mut conn = self.conn.clone();
        let _: i64 = self
            .store_call(&self.save_release, channel, snapshot)
            .arg(token)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Ends a session once no call holds it; whether there was one.
    pub async fn remove(&self, id: &str) -> Result<bool, Problem> {
        let mut call = self.remove.key(self.live_key());
        call.key(self.key(id)).key(self.lock_key(id)).arg(id);
        let call = &call;
        self.when_free(id, || {
            let mut conn = self.conn.clone();
            async move {
                let removed: i64 = call.invoke_async(&mut conn).await.map_err(unavailable)?;
                Ok((removed != HELD).then_some(removed > 0))
            }
        })
        .await
    }
}

/// One call's hold on a session's lock. A call whose caller hangs up is dropped at whatever
/// await it is in; dropped before it is released, this leaves the rest to a task of its own:
/// storing the state the call had ready to store, then releasing the lock. Without it the
/// session would stay locked for the lock's time to live (10 s), its next calls failing as
/// busy, and lose what the call had done.
pub struct SessionLock {
    sessions: Arc<RedisSessions>,
    id: String,
    token: String,
    /// The state being stored, until it is.
    unsaved: Option<(String, SessionSnapshot)>,
    released: bool,
}

impl SessionLock {
    /// Stores the session's state (of `channel`) and releases its lock, in one round trip.
    pub async fn save_and_release(
        mut self,
        channel: String,
        snapshot: SessionSnapshot,
    ) -> Result<(), Problem> {
        let (channel, snapshot) = self.unsaved.insert((channel, snapshot));
        self.sessions
            .save_release(channel, snapshot, &self.token)
            .await?;
        self.unsaved = None;
        self.released = true;
        Ok(())
    }

    pub async fn release(mut self) {
        self.sessions.unlock(&self.id, &self.token).await;
        self.released = true;
    }

    /// Ends the session while holding its lock: it is forgotten, and so is the lock.
    pub async fn remove_session(mut self) -> Result<(), Problem> {
        let sessions = &self.sessions;
        let mut conn = sessions.conn.clone();
        let _: i64 = sessions
            .remove_locked
            .key(sessions.live_key())
            .key(sessions.key(&self.id))
            .key(sessions.lock_key(&self.id))
            .arg(&self.id)
            .arg(&self.token)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        self.released = true;
        Ok(())
    }

    /// The state to store if this lock is dropped unreleased.
    pub fn keep_unsaved(&mut self, channel: String, snapshot: SessionSnapshot) {
        self.unsaved = Some((channel, snapshot));
    }
}

impl Drop for SessionLock {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        // Outside a runtime (its shutdown) the lock's time to live releases it.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let sessions = self.sessions.clone();
        let (id, token) = (
            std::mem::take(&mut self.id),
            std::mem::take(&mut self.token),
        );
        let unsaved = self.unsaved.take();
        runtime.spawn(async move {
            let saved = match &unsaved {
                Some((channel, snapshot)) => sessions
                    .save_release(channel, snapshot, &token)
                    .await
                    .is_ok(),
                None => false,
            };
            if !saved {
                sessions.unlock(&id, &token).await;
            }
        });
    }
}

/// Values keep their type: `{"i": 1}` is an int, `{"f": 1.0}` a double.
fn value(v: &Value) -> J {
    match v {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::String(s) => J::String(s.to_string()),
        Value::Int(i) => json!({ "i": i }),
        Value::Double(d) => json!({ "f": d }),
        Value::Timestamp(t) => json!({ "t": t.0 }),
        Value::Duration(d) => json!({ "d": d.0 }),
        Value::List(items) => J::Array(items.iter().map(value).collect()),
        Value::Map(pairs) => {
            json!({ "m": pairs.iter().map(|(k, v)| json!([value(k), value(v)])).collect::<Vec<_>>() })
        }
    }
}

fn unvalue(j: &J) -> Option<Value> {
    Some(match j {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(*b),
        J::String(s) => Value::string(s.as_str()),
        J::Array(items) => Value::list(items.iter().map(unvalue).collect::<Option<Vec<_>>>()?),
        J::Object(o) => match o.iter().next()? {
            (k, v) if k == "i" => Value::Int(v.as_i64()?),
            (k, v) if k == "f" => Value::Double(v.as_f64()?),
            (k, v) if k == "t" => Value::Timestamp(Timestamp(v.as_i64()?)),
            (k, v) if k == "d" => Value::Duration(Span(v.as_i64()?)),
            (k, v) if k == "m" => Value::map(
                v.as_array()?
                    .iter()
                    .map(|pair| Some((unvalue(pair.get(0)?)?, unvalue(pair.get(1)?)?)))
                    .collect::<Option<Vec<_>>>()?,
            ),
            _ => return None,
        },
        J::Number(_) => return None,
    })
}

fn pairs(items: impl IntoIterator<Item = (impl Into<String>, J)>) -> J {
    J::Object(
        items
            .into_iter()
            .map(|(k, v)| (k.into(), v))
            .collect::<Map<_, _>>(),
    )
}

fn unpairs(j: &J) -> Option<Vec<(String, Value)>> {
    j.as_object()?
        .iter()
        .map(|(k, v)| Some((k.clone(), unvalue(v)?)))
        .collect()
}

fn treatment(t: &Treatment) -> J {
    json!({
        "code": t.code.as_str(), "offer": &*t.origin.offer, "category": t.origin.category.as_deref(),
        "rule": &*t.origin.rule, "segment": t.origin.segment.as_deref(), "ip": &*t.ip, "zone": &*t.zone, "score": t.score,
        "deployment": t.deployment, "session_id": &*t.session_id, "audience": &*t.audience,
        "issued_at": t.issued_at.0,
    })
}

fn untreatment(j: &J) -> Option<Treatment> {
    let text = |k: &str| j[k].as_str().map(Arc::<str>::from);
    Some(Treatment {
        code: j["code"].as_str()?.into(),
        origin: Arc::new(Origin {
            offer: text("offer")?,
            category: text("category"),
            rule: text("rule")?,
            segment: text("segment"),
        }),
        ip: text("ip")?,
        zone: text("zone")?,
        score: j["score"].as_f64()?,
        deployment: j["deployment"].as_u64()?,
        session_id: text("session_id")?,
        audience: text("audience")?,
        issued_at: Timestamp(j["issued_at"].as_i64()?),
    })
}

fn encode(channel: &str, s: &SessionSnapshot) -> String {
    json!({
        "channel": channel,
        "id": s.id,
        "level": s.audience.level,
        "audience": s.audience.fields.iter().map(|(k, v)| json!([k, value(v)])).collect::<Vec<_>>(),
        "profile": pairs(s.profile.iter().map(|(k, v)| (k.clone(), value(v)))),
        "params": pairs(s.params.iter().map(|(k, v)| (k.clone(), value(v)))),
        "state": kairos_store::encode_state(&s.state),
        "state_base": kairos_store::encode_state(&s.state_base),
        "state_changed": s.state_changed,
        "debug": s.debug,
        "visit_contacts": s.visit_contacts,
        "treatments": s.treatments.iter().map(treatment).collect::<Vec<_>>(),
        "last_offers": s.last_offers,
        "eval_errors": s.eval_errors,
        "segments": s.segments,
    })
    .to_string()
}

fn decode(text: &str) -> Option<(String, SessionSnapshot)> {
    let j: J = serde_json::from_str(text).ok()?;
    let snapshot = SessionSnapshot {
        id: j["id"].as_str()?.to_string(),
        // A list, not an object: the ID fields keep their order, which the audience key follows.
        audience: AudienceId {
            level: j["level"].as_str()?.to_string(),
            fields: j["audience"]
                .as_array()?
                .iter()
                .map(|pair| Some((pair.get(0)?.as_str()?.to_string(), unvalue(pair.get(1)?)?)))
                .collect::<Option<Vec<_>>>()?,
        },
        profile: unpairs(&j["profile"])?.into_iter().collect(),
        params: unpairs(&j["params"])?
            .into_iter()
            .collect::<BTreeMap<_, _>>(),
        state: kairos_store::decode_state(j["state"].as_str()?).ok()?,
        // A snapshot from an earlier build has no base: what it holds is what it read.
        state_base: match j["state_base"].as_str() {
            Some(base) => kairos_store::decode_state(base).ok()?,
            None => kairos_store::decode_state(j["state"].as_str()?).ok()?,
        },
        state_changed: j["state_changed"].as_bool()?,
        debug: j["debug"].as_bool()?,
        visit_contacts: serde_json::from_value::<HashMap<String, u64>>(j["visit_contacts"].clone())
            .ok()?,
        treatments: j["treatments"]
            .as_array()?
            .iter()
            .map(untreatment)
            .collect::<Option<Vec<_>>>()?,
        last_offers: serde_json::from_value(j["last_offers"].clone()).ok()?,
        eval_errors: j["eval_errors"].as_u64()?,
        segments: serde_json::from_value(j["segments"].clone()).ok()?,
    };
    Some((j["channel"].as_str()?.to_string(), snapshot))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_their_types() {
        let v = Value::list([
            Value::Int(1),
            Value::Double(1.0),
            Value::from("1"),
            Value::Bool(true),
            Value::Timestamp(Timestamp(5)),
            Value::map([(Value::from("k"), Value::Int(2))]),
        ]);
        let back = unvalue(&value(&v)).unwrap();
        assert_eq!(format!("{back:?}"), format!("{v:?}"));
    }
}
