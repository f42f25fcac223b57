//! A visitor's session: who they are, their profile and real-time parameters, their segments,
//! and what they were shown. Values are kept by name; each deployment gets its own slot view
//! of them ([`Bound`]), rebuilt when a new deployment is swapped in mid-session.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use kairos_rules::time::Timestamp;
use kairos_rules::{Activation, Root, Value};

use crate::deployment::Deployment;
use crate::messages::{Message, MessageCode};
use crate::segments::SegmentSet;
use crate::world::{
    AudienceId, AudienceState, HistoryRecord, NameMap, Profile, Treatment, TreatmentCode,
};

/// How many treatments a session remembers for responses within it; older ones are matched
/// through the contact history like responses from another session.
pub(crate) const TREATMENTS_KEPT: usize = 64;

/// The deployment-specific view of a session: slot arrays and segment membership.
pub(crate) struct Bound {
    pub version: u64,
    pub level: Option<usize>,
    pub profile: Vec<Option<Value>>,
    pub session: Vec<Option<Value>>,
    pub patterns: Vec<Option<Value>>,
    pub segments: SegmentSet,
    pub control_group: bool,
}

pub struct Session {
    pub(crate) id: Arc<str>,
    pub(crate) audience: AudienceId,
    pub(crate) audience_key: Arc<str>,
    pub(crate) profile: Profile,
    pub(crate) params: BTreeMap<String, Value>,
    pub(crate) state: AudienceState,
    /// The state as this session last read or wrote it: what it changed since is what a
    /// write merges into the stored state (see [`AudienceState::merged`]).
    pub(crate) state_base: AudienceState,
    pub(crate) debug: bool,
    pub(crate) bound: Option<Bound>,
    /// Contacts per offer this visit (for the channel's cap per visit).
    pub(crate) visit_contacts: NameMap<u64>,
    pub(crate) treatments: VecDeque<Treatment>,
    /// Treatment codes of the offers the last get offers returned (for `log_contact` without
    /// a code).
    pub(crate) last_offers: Vec<TreatmentCode>,
    pub(crate) records: Vec<HistoryRecord>,
    pub(crate) state_changed: bool,
    pub(crate) eval_errors: u64,
    /// Segments carried over from a snapshot, used instead of re-segmenting when the same
    /// deployment binds the session next.
    pub(crate) restored_segments: Option<(u64, Vec<String>)>,
}

/// A session as plain data: what runtime instances sharing sessions (through Redis) store
/// between requests. Records are not in it: they are written before a snapshot is taken.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionSnapshot {
    pub id: String,
    pub audience: AudienceId,
    pub profile: Profile,
    pub params: BTreeMap<String, Value>,
    pub state: AudienceState,
    pub state_base: AudienceState,
    pub state_changed: bool,
    pub debug: bool,
    pub visit_contacts: HashMap<String, u64>,
    pub treatments: Vec<Treatment>,
    pub last_offers: Vec<String>,
    pub eval_errors: u64,
    /// The segments, by name, under the deployment version that computed them.
    pub segments: Option<(u64, Vec<String>)>,
}

/// Everything needed to start a session, already loaded by the shell.
pub struct Start {
    pub session_id: String,
    pub audience: AudienceId,
    /// `None` when the profile store has no row for this audience ID.
    pub profile: Option<Profile>,
    pub state: AudienceState,
    pub params: Vec<(String, Value)>,
    pub debug: bool,
}

/// What an ended session leaves to persist.
#[derive(Clone, Debug, PartialEq)]
pub struct Ended {
    pub records: Vec<HistoryRecord>,
    /// The audience's state, when it changed since it was last taken, and the state it was
    /// changed from.
    pub state: Option<(AudienceState, AudienceState)>,
    pub audience_key: String,
}

/// What a session shows of itself (`GET /v1/sessions/{id}/profile`).
#[derive(Clone, Debug, PartialEq)]
pub struct ProfileView {
    pub audience_level: String,
    pub audience_id: Vec<(String, Value)>,
    pub profile: BTreeMap<String, Value>,
    pub params: BTreeMap<String, Value>,
    pub segments: Vec<String>,
}

/// The distinct names of `params` that `held` says are not held yet.
fn distinct_new(params: &[(String, Value)], held: impl Fn(&str) -> bool) -> usize {
    let mut new: Vec<&str> = params
        .iter()
        .map(|(name, _)| name.as_str())
        .filter(|name| !held(name))
        .collect();
    new.sort_unstable();
    new.dedup();
    new.len()
}

impl Session {
    /// Starts a session: checks the audience, loads the profile into slots and segments the
    /// visitor.
    pub fn start(
        dep: &Deployment,
        start: Start,
        now: Timestamp,
    ) -> Result<(Session, Vec<Message>), Message> {
        let mut messages = Vec::new();
        let audience = check_audience(dep, start.audience)?;
        if start.profile.is_none()
            && dep
                .profile_tables(&audience.level)
                .is_some_and(|t| t.table.is_some())
        {
            messages.push(Message::warning(
                MessageCode::ProfileNotFound,
                format!(
                    "no profile for {}; the session starts with an empty profile",
                    audience.key()
                ),
            ));
        }
        let mut session = Session {
            id: start.session_id.into(),
            audience_key: audience.key().into(),
            audience,
            profile: start.profile.unwrap_or_default(),
            params: BTreeMap::new(),
            state_base: start.state.clone(),
            state: start.state,
            debug: start.debug,
            bound: None,
            visit_contacts: NameMap::default(),
            treatments: VecDeque::new(),
            last_offers: Vec::new(),
            records: Vec::new(),
            state_changed: false,
            eval_errors: 0,
            restored_segments: None,
        };
        session.merge_params(dep, &start.params);
        session.bind(dep, now);
        Ok((session, messages))
    }

    /// Changes who the session is about (a visitor logs in): reloads profile and history state
    /// and segments again. The caller persists the previous audience's state first.
    pub fn set_audience(
        &mut self,
        dep: &Deployment,
        audience: AudienceId,
        profile: Option<Profile>,
        state: AudienceState,
        params: &[(String, Value)],
        now: Timestamp,
    ) -> Result<Vec<Message>, Message> {
        let audience = check_audience(dep, audience)?;
        let mut messages = Vec::new();
        if profile.is_none()
            && dep
                .profile_tables(&audience.level)
                .is_some_and(|t| t.table.is_some())
        {
            messages.push(Message::warning(
                MessageCode::ProfileNotFound,
                format!("no profile for {}", audience.key()),
            ));
        }
        self.audience_key = audience.key().into();
        self.audience = audience;
        self.profile = profile.unwrap_or_default();
        self.state_base = state.clone();
        self.state = state;
        self.state_changed = false;
        self.bound = None;
        self.merge_params(dep, params);
        self.bind(dep, now);
        Ok(messages)
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn audience(&self) -> &AudienceId {
        &self.audience
    }

    pub fn audience_key(&self) -> &str {
        &self.audience_key
    }

    pub fn debug(&self) -> bool {
        self.debug
    }

    pub fn set_debug(&mut self, debug: bool) {
        self.debug = debug;
    }

    /// The session as plain data (take its records first: they are not part of it); its
    /// segments are named as `dep` names them.
    pub fn snapshot(&self, dep: &Deployment) -> SessionSnapshot {
        debug_assert!(
            self.records.is_empty(),
            "records are written before a snapshot"
        );
        let segments = self
            .bound
            .as_ref()
            .filter(|b| b.version == dep.version)
            .map(|b| {
                (
                    b.version,
                    b.segments
                        .iter()
                        .map(|i| dep.segments[i].to_string())
                        .collect(),
                )
            });
        SessionSnapshot {
            id: self.id.to_string(),
            audience: self.audience.clone(),
            profile: self.profile.clone(),
            params: self.params.clone(),
            state: self.state.clone(),
            state_base: self.state_base.clone(),
            state_changed: self.state_changed,
            debug: self.debug,
            visit_contacts: self
                .visit_contacts
                .iter()
                .map(|(offer, n)| (offer.to_string(), *n))
                .collect(),
            treatments: self.treatments.iter().cloned().collect(),
            last_offers: self.last_offers.iter().map(|c| c.to_string()).collect(),
            eval_errors: self.eval_errors,
            segments: segments.or_else(|| self.restored_segments.clone()),
        }
    }

    /// A session from its snapshot; it is bound to a deployment on its next call.
    pub fn restore(s: SessionSnapshot) -> Session {
        Session {
            audience_key: s.audience.key().into(),
            id: s.id.into(),
            audience: s.audience,
            profile: s.profile,
            params: s.params,
            state: s.state,
            state_base: s.state_base,
            debug: s.debug,
            bound: None,
            visit_contacts: s.visit_contacts.into_iter().collect(),
            treatments: s.treatments.into(),
            last_offers: s
                .last_offers
                .into_iter()
                .map(|c| TreatmentCode::from(c.as_str()))
                .collect(),
            records: Vec::new(),
            state_changed: s.state_changed,
            eval_errors: s.eval_errors,
            restored_segments: s.segments,
        }
    }

    /// Ends the session: everything left to persist.
    pub fn end(mut self) -> Ended {
        Ended {
            records: self.take_records(),
            state: self.state_changed.then_some((self.state_base, self.state)),
            audience_key: self.audience_key.to_string(),
        }
    }

    /// Keeps real-time parameters sent outside an event or get offers (a reused session).
    pub fn set_params(&mut self, dep: &Deployment, params: &[(String, Value)], now: Timestamp) {
        self.bind(dep, now);
        self.merge_params(dep, params);
    }

    /// Whether a treatment code was issued to this session (and is still remembered).
    pub fn has_treatment(&self, code: &str) -> bool {
        self.treatments.iter().any(|t| *t.code == *code)
    }

    /// Contact and response records produced since the last call, for durable storage.
    pub fn take_records(&mut self) -> Vec<HistoryRecord> {
        std::mem::take(&mut self.records)
    }

    /// The audience's cross-session state, when it changed since the last call, with the
    /// state it was changed from; the state taken is the base of the next change.
    pub fn take_changed_state(&mut self) -> Option<(AudienceState, &AudienceState)> {
        if self.state_changed {
            self.state_changed = false;
            let base = std::mem::replace(&mut self.state_base, self.state.clone());
            Some((base, &self.state))
        } else {
            None
        }
    }

    pub fn audience_state(&self) -> &AudienceState {
        &self.state
    }

    /// Expressions that failed to evaluate in this session (counted, treated as false).
    pub fn evaluation_errors(&self) -> u64 {
        self.eval_errors
    }

    /// The visitor's current segments under `dep`.
    pub fn segments(&mut self, dep: &Deployment, now: Timestamp) -> Vec<String> {
        let b = self.bind(dep, now);
        b.segments
            .iter()
            .map(|s| dep.segments[s].to_string())
            .collect()
    }

    pub fn profile_view(&mut self, dep: &Deployment, now: Timestamp) -> ProfileView {
        let segments = self.segments(dep, now);
        ProfileView {
            audience_level: self.audience.level.clone(),
            audience_id: self.audience.fields.clone(),
            profile: self
                .profile
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            params: self.params.clone(),
            segments,
        }
    }

    /// How many parameters the session would hold with `params` merged in: a runtime bounds
    /// it before a call changes anything.
    pub fn params_after(&self, params: &[(String, Value)]) -> usize {
        self.params.len() + distinct_new(params, |name| self.params.contains_key(name))
    }

    /// How many parameters a session started with `params` holds.
    pub fn params_of_new(params: &[(String, Value)]) -> usize {
        distinct_new(params, |_| false)
    }

    /// Keeps real-time parameters in the session, and in their slots when expressions read them.
    pub(crate) fn merge_params(&mut self, dep: &Deployment, params: &[(String, Value)]) {
        for (name, value) in params {
            self.params.insert(name.clone(), value.clone());
            if let Some(b) = self.bound.as_mut().filter(|b| b.version == dep.version)
                && let Some(slot) = dep.env.slot_of(Root::Session, name)
            {
                b.session[slot as usize] = Some(value.clone());
            }
        }
    }

    /// The session's slot view for `dep`, built (and the visitor segmented) on first use.
    pub(crate) fn bind(&mut self, dep: &Deployment, now: Timestamp) -> &mut Bound {
        if self.bound.as_ref().is_none_or(|b| b.version != dep.version) {
            let fill = |root: Root, values: &dyn Fn(&str) -> Option<Value>| -> Vec<Option<Value>> {
                dep.env
                    .slots(root)
                    .iter()
                    .map(|(name, _)| values(name))
                    .collect()
            };
            let profile = fill(Root::Profile, &|name| {
                self.profile.get(name).cloned().or_else(|| {
                    self.audience
                        .fields
                        .iter()
                        .find(|(f, _)| f == name)
                        .map(|(_, v)| v.clone())
                })
            });
            let session = fill(Root::Session, &|name| self.params.get(name).cloned());
            let level = dep
                .levels
                .iter()
                .position(|l| l.name.eq_ignore_ascii_case(&self.audience.level));
            let control_group = dep.control_group_percent > 0.0
                && crate::random::percentile(&["control", &self.audience_key])
                    < dep.control_group_percent;
            self.bound = Some(Bound {
                version: dep.version,
                level,
                profile,
                session,
                patterns: vec![None; dep.env.slots(Root::Patterns).len()],
                segments: SegmentSet::with_capacity(dep.segments.len()),
                control_group,
            });
            self.refresh_patterns(dep, now);
            match self.restored_segments.take() {
                // The same deployment already segmented this visitor: keep its answer.
                Some((version, names)) if version == dep.version => {
                    let bound = self.bound.as_mut().expect("bound above");
                    for name in names {
                        if let Some(i) = dep.segments.iter().position(|s| **s == *name) {
                            bound.segments.insert(i);
                        }
                    }
                }
                _ => self.resegment(dep, now),
            }
        }
        self.bound.as_mut().expect("bound above")
    }

    pub(crate) fn bound(&self) -> &Bound {
        self.bound.as_ref().expect("callers bind first")
    }

    /// Records a treatment issued to this session, forgetting the oldest past the limit.
    pub(crate) fn remember(&mut self, treatment: Treatment) {
        if self.treatments.len() == TREATMENTS_KEPT {
            self.treatments.pop_front();
        }
        self.treatments.push_back(treatment);
    }
}

/// Resolves the audience level (default when absent) and checks the ID fields are all given.
fn check_audience(dep: &Deployment, mut audience: AudienceId) -> Result<AudienceId, Message> {
    if audience.level.is_empty() {
        match dep.default_level {
            Some(i) => audience.level = dep.levels[i].name.clone(),
            None => {
                return Err(Message::error(
                    MessageCode::InvalidAudienceLevel,
                    "the channel defines no audience level",
                ));
            }
        }
    }
    let Some(level) = dep
        .levels
        .iter()
        .find(|l| l.name.eq_ignore_ascii_case(&audience.level))
    else {
        let known: Vec<&str> = dep.audience_levels().collect();
        return Err(Message::error(
            MessageCode::InvalidAudienceLevel,
            format!(
                "unknown audience level '{}'; the channel has {}",
                audience.level,
                known.join(", ")
            ),
        ));
    };
    audience.level = level.name.clone();
    let mut ordered = Vec::with_capacity(level.id_fields.len());
    for field in &level.id_fields {
        match audience
            .fields
            .iter()
            .find(|(f, _)| f.eq_ignore_ascii_case(field))
        {
            Some((_, value)) => ordered.push((field.clone(), value.clone())),
            None => {
                return Err(Message::error(
                    MessageCode::InvalidAudienceId,
                    format!(
                        "audience level '{}' is identified by {}; '{field}' is missing",
                        level.name,
                        level.id_fields.join(", ")
                    ),
                ));
            }
        }
    }
    audience.fields = ordered;
    Ok(audience)
}

/// What expressions see while the engine decides for one session.
pub(crate) struct SessionActivation<'a> {
    pub dep: &'a Deployment,
    pub bound: &'a Bound,
    /// Usually the bound segments; during segmentation, the set being built.
    pub segments: &'a SegmentSet,
    pub event: &'a [Option<Value>],
    pub offer: &'a [Option<Value>],
    pub offer_overrides: &'a [(u32, Value)],
    pub now: Timestamp,
}

impl<'a> SessionActivation<'a> {
    pub fn new(dep: &'a Deployment, bound: &'a Bound, now: Timestamp) -> Self {
        SessionActivation {
            dep,
            bound,
            segments: &bound.segments,
            event: &[],
            offer: &[],
            offer_overrides: &[],
            now,
        }
    }
}

impl Activation for SessionActivation<'_> {
    fn get(&self, root: Root, slot: u32) -> Option<&Value> {
        let values = match root {
            Root::Profile => &self.bound.profile,
            Root::Session => &self.bound.session,
            Root::Patterns => &self.bound.patterns,
            Root::Event => self.event,
            Root::Offer => {
                if let Some((_, v)) = self.offer_overrides.iter().find(|(s, _)| *s == slot) {
                    return Some(v);
                }
                self.offer
            }
        };
        values.get(slot as usize)?.as_ref()
    }

    fn has_segment(&self, segment: u32) -> bool {
        self.segments.contains(segment as usize)
    }

    fn segments(&self) -> Value {
        Value::list(
            self.segments
                .iter()
                .map(|s| Value::String(self.dep.segments[s].clone())),
        )
    }

    fn has_segment_named(&self, name: &str) -> bool {
        self.dep
            .segments
            .iter()
            .position(|s| s.eq_ignore_ascii_case(name))
            .is_some_and(|i| self.segments.contains(i))
    }

    fn now(&self) -> Timestamp {
        self.now
    }
}
