//! Posting an event: its parameters join the session, event patterns advance, and the event's
//! actions (and those of patterns that just became true) run in order.

use std::collections::BTreeMap;

use kairos_model::model::PatternKind;
use kairos_rules::time::{NANOS_PER_SECOND, Timestamp};
use kairos_rules::{Root, Value};

use crate::deployment::{Action, Deployment, GuardedAction, Pattern};
use crate::messages::{Message, MessageCode};
use crate::session::{Session, SessionActivation};
use crate::world::{HistoryRecord, PatternState, ResponseKind, TimedSuppression, Treatment, World};

/// Parameter names that carry a treatment code: ours and Unica Interact's.
pub const TREATMENT_CODE_PARAMS: [&str; 2] = ["treatment_code", "UACIOfferTrackingCode"];

/// Unica Interact's parameter naming the response a generic event logs: CNT, ACC or RJT.
pub const RESPONSE_TYPE_PARAM: &str = "UACIResponseTypeCode";

/// How deep `fire` may chain (validation rejects cycles; this guards the engine regardless).
const MAX_FIRE_DEPTH: usize = 16;

#[derive(Clone, Debug, PartialEq)]
pub struct EventResponse {
    pub messages: Vec<Message>,
    /// Present when the session is in debug mode.
    pub segments: Option<Vec<String>>,
    pub patterns: Option<BTreeMap<String, bool>>,
}

impl Session {
    pub fn post_event(
        &mut self,
        dep: &Deployment,
        world: &dyn World,
        name: &str,
        params: &[(String, Value)],
        now: Timestamp,
    ) -> EventResponse {
        self.bind(dep, now);
        self.merge_params(dep, params);
        let mut messages = Vec::new();
        match dep.event_index.find(name) {
            None => messages.push(Message::warning(
                MessageCode::UnknownEvent,
                format!("event '{name}' is not defined in channel '{}'", dep.channel),
            )),
            Some(event) => {
                let event_slots: Vec<Option<Value>> = dep
                    .env
                    .slots(Root::Event)
                    .iter()
                    .map(|(slot_name, _)| {
                        params
                            .iter()
                            .find(|(n, _)| n == slot_name)
                            .map(|(_, v)| v.clone())
                    })
                    .collect();
                let code = TREATMENT_CODE_PARAMS
                    .iter()
                    .find_map(|p| params.iter().find(|(n, _)| n.eq_ignore_ascii_case(p)))
                    .map(|(_, v)| crate::world::id_text(v));
                let mut ctx = EventContext {
                    world,
                    slots: &event_slots,
                    code: code.as_deref(),
                    messages: &mut messages,
                    now,
                };
                self.occur(dep, event, &mut ctx, 0);
                // Unica Interact's convention: a generic event carries the response type.
                let response_type = params
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(RESPONSE_TYPE_PARAM));
                if let Some((_, kind)) = response_type {
                    let kind = match crate::world::id_text(kind).to_ascii_uppercase().as_str() {
                        "CNT" => Some(ResponseKind::Contact),
                        "ACC" => Some(ResponseKind::Accept),
                        "RJT" => Some(ResponseKind::Reject),
                        _ => None,
                    };
                    match (kind, ctx.code) {
                        (Some(kind), Some(code)) => self.log(kind, code, &mut ctx),
                        (Some(_), None) => ctx.messages.push(Message::warning(
                            MessageCode::MissingTreatmentCode,
                            format!("{RESPONSE_TYPE_PARAM} needs UACIOfferTrackingCode, the offer's treatment code"),
                        )),
                        (None, _) => ctx.messages.push(Message::warning(
                            MessageCode::UnknownResponseType,
                            format!("{RESPONSE_TYPE_PARAM} is CNT, ACC or RJT"),
                        )),
                    }
                }
            }
        }
        let debug = self.debug;
        EventResponse {
            messages,
            segments: debug.then(|| self.segments(dep, now)),
            patterns: debug.then(|| {
                let b = self.bound();
                dep.patterns
                    .iter()
                    .enumerate()
                    .map(|(i, p)| {
                        (
                            p.name.clone(),
                            matches!(b.patterns[i], Some(Value::Bool(true))),
                        )
                    })
                    .collect()
            }),
        }
    }

    /// One occurrence of an event (posted or fired): patterns advance, then actions run.
    fn occur(&mut self, dep: &Deployment, event: usize, ctx: &mut EventContext<'_>, depth: usize) {
        let mut newly_matched = Vec::new();
        for &p in &dep.patterns_by_event[event] {
            let pattern = &dep.patterns[p];
            let weight = pattern
                .events
                .iter()
                .find(|(e, _)| *e == event)
                .map_or(1.0, |(_, w)| *w);
            let state = self.state.patterns.get_or_insert(&pattern.name);
            if advance(pattern, state, &dep.events[event].name, weight, ctx.now) {
                newly_matched.push(p);
            }
            self.state_changed = true;
        }
        self.refresh_patterns(dep, ctx.now);
        self.run(dep, &dep.events[event].actions, ctx, depth);
        for p in newly_matched {
            self.run(dep, &dep.patterns[p].actions, ctx, depth);
        }
    }

    fn run(
        &mut self,
        dep: &Deployment,
        actions: &[GuardedAction],
        ctx: &mut EventContext<'_>,
        depth: usize,
    ) {
        for guarded in actions {
            if let Some(when) = &guarded.when {
                let act = SessionActivation {
                    event: ctx.slots,
                    ..SessionActivation::new(dep, self.bound(), ctx.now)
                };
                match when.eval_bool(&act) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(_) => {
                        self.eval_errors += 1;
                        continue;
                    }
                }
            }
            match &guarded.action {
                Action::Resegment => self.resegment(dep, ctx.now),
                Action::LogContact => match ctx.code {
                    Some(code) => self.log(ResponseKind::Contact, code, ctx),
                    None => {
                        // Taken and put back: logging never reads them.
                        let codes = std::mem::take(&mut self.last_offers);
                        for code in &codes {
                            self.log(ResponseKind::Contact, code, ctx);
                        }
                        self.last_offers = codes;
                    }
                },
                Action::LogAccept | Action::LogReject => {
                    let kind = if matches!(guarded.action, Action::LogAccept) {
                        ResponseKind::Accept
                    } else {
                        ResponseKind::Reject
                    };
                    match ctx.code {
                        Some(code) => self.log(kind, code, ctx),
                        None => ctx.messages.push(Message::warning(
                            MessageCode::MissingTreatmentCode,
                            format!(
                                "a {} needs the treatment_code of the offer it answers",
                                kind.name()
                            ),
                        )),
                    }
                }
                Action::SetSession { slot, name, expr }
                | Action::SetProfile { slot, name, expr } => {
                    let act = SessionActivation {
                        event: ctx.slots,
                        ..SessionActivation::new(dep, self.bound(), ctx.now)
                    };
                    match expr.eval(&act) {
                        Ok(value) => {
                            let bound = self.bound.as_mut().expect("bound");
                            if matches!(guarded.action, Action::SetProfile { .. }) {
                                bound.profile[*slot as usize] = Some(value.clone());
                                self.profile.insert(name.clone(), value);
                            } else {
                                bound.session[*slot as usize] = Some(value.clone());
                                self.params.insert(name.clone(), value);
                            }
                        }
                        Err(_) => self.eval_errors += 1,
                    }
                }
                Action::Fire(target) => {
                    if depth < MAX_FIRE_DEPTH {
                        self.occur(dep, *target, ctx, depth + 1);
                    }
                }
                Action::Suppress {
                    offers,
                    category,
                    seconds,
                } => {
                    let until = Timestamp(
                        ctx.now
                            .0
                            .saturating_add(seconds.saturating_mul(NANOS_PER_SECOND)),
                    );
                    self.state.suppressions.retain(|s| s.until > ctx.now);
                    self.state.suppressions.push(TimedSuppression {
                        offers: offers.clone(),
                        category: category.clone(),
                        until,
                    });
                    self.state_changed = true;
                }
            }
        }
    }

    /// Logs a contact, accept or reject for a treatment of this session or, failing that, a
    /// contact logged in an earlier session.
    fn log(&mut self, kind: ResponseKind, code: &str, ctx: &mut EventContext<'_>) {
        let (treatment, cross_session): (Treatment, bool) = match self
            .treatments
            .iter()
            .rev()
            .find(|t| *t.code == *code)
        {
            Some(t) => (t.clone(), false),
            None => match ctx.world.find_treatment(code) {
                Some(t) => (t, true),
                None => {
                    ctx.messages.push(Message::warning(
                        MessageCode::UnknownTreatmentCode,
                        format!("treatment code '{code}' matches no offer shown in this session or logged before"),
                    ));
                    return;
                }
            },
        };
        let offer = &*treatment.origin.offer;
        let history = self.state.offers.get_or_insert(offer);
        match kind {
            ResponseKind::Contact => {
                history.record_contact(ctx.now);
                *self.visit_contacts.get_or_insert(offer) += 1;
            }
            ResponseKind::Accept => history.last_accept = Some(ctx.now),
            ResponseKind::Reject => history.last_reject = Some(ctx.now),
        }
        self.state_changed = true;
        self.records.push(HistoryRecord {
            kind,
            treatment,
            at: ctx.now,
            cross_session,
        });
    }

    /// Sets `patterns.NAME` slots from the audience's pattern states as of `now`.
    pub(crate) fn refresh_patterns(&mut self, dep: &Deployment, now: Timestamp) {
        let bound = self.bound.as_mut().expect("bound");
        // Pattern slots are declared in channel order, so slot i is pattern i.
        for (slot, pattern) in bound.patterns.iter_mut().zip(&dep.patterns) {
            let on = self
                .state
                .patterns
                .get(&pattern.name)
                .is_some_and(|s| is_true(pattern, s, now));
            *slot = Some(Value::Bool(on));
        }
    }
}

struct EventContext<'a> {
    world: &'a dyn World,
    slots: &'a [Option<Value>],
    code: Option<&'a str>,
    messages: &'a mut Vec<Message>,
    now: Timestamp,
}

fn window_nanos(pattern: &Pattern) -> Option<i64> {
    pattern.window.map(|w| w.saturating_mul(NANOS_PER_SECOND))
}

/// Records one occurrence; returns whether the pattern just became true.
fn advance(
    pattern: &Pattern,
    state: &mut PatternState,
    event: &str,
    weight: f64,
    now: Timestamp,
) -> bool {
    match (window_nanos(pattern), pattern.rolling) {
        (Some(window), true) => {
            state.hits.push((event.to_string(), now, weight));
            state
                .hits
                .retain(|(_, at, _)| at.0 > now.0.saturating_sub(window));
        }
        (window, _) => {
            let expired = match (window, state.window_start) {
                (Some(w), Some(start)) => now.0 >= start.0.saturating_add(w),
                (Some(_), None) => true,
                (None, _) => false,
            };
            if expired {
                *state = PatternState {
                    window_start: Some(now),
                    ..PatternState::default()
                };
            }
            state.sum += weight;
            state.seen.insert(event.to_string());
        }
    }
    let was = state.matched;
    state.matched = is_true(pattern, state, now);
    state.matched && !was
}

/// Whether the pattern holds at `now` (windows lapse with time).
fn is_true(pattern: &Pattern, state: &PatternState, now: Timestamp) -> bool {
    let (sum, seen): (f64, Vec<&str>) = match (window_nanos(pattern), pattern.rolling) {
        (Some(window), true) => {
            let live: Vec<&(String, Timestamp, f64)> = state
                .hits
                .iter()
                .filter(|(_, at, _)| at.0 > now.0.saturating_sub(window))
                .collect();
            (
                live.iter().map(|(_, _, w)| *w).sum(),
                live.iter().map(|(e, _, _)| e.as_str()).collect(),
            )
        }
        (Some(window), false) => {
            if state
                .window_start
                .is_none_or(|start| now.0 >= start.0.saturating_add(window))
            {
                return false;
            }
            (state.sum, state.seen.iter().map(String::as_str).collect())
        }
        (None, _) => (state.sum, state.seen.iter().map(String::as_str).collect()),
    };
    match pattern.kind {
        // By event name: states outlive deployments, indices do not.
        PatternKind::All => pattern
            .event_names
            .iter()
            .all(|n| seen.iter().any(|s| s.eq_ignore_ascii_case(n))),
        PatternKind::Counter | PatternKind::Weighted => sum >= pattern.threshold,
    }
}
