//! Running a deployment in process: profile tables in memory, history in a [`MemoryWorld`],
//! a seeded random source and a scenario clock. `kairos test --channel-file` uses it.

use std::collections::HashMap;

use kairos_model::table::Table;
use kairos_rules::Value;
use kairos_rules::time::{NANOS_PER_SECOND, Timestamp};

use crate::arbitrate::{OfferRequest, OffersRequest};
use crate::deployment::Deployment;
use crate::random::SplitMix64;
use crate::scenario::{Call, ChannelNames, Outcome, Target};
use crate::session::{Session, Start};
use crate::world::{
    AudienceId, MemoryWorld, Profile, Row, assemble_profile, id_text, matches_audience,
};

/// Profile and dimension tables held in memory, indexed by their key columns on first use.
#[derive(Default)]
pub struct MemoryTables {
    tables: HashMap<String, Table>,
    /// (table, column) -> key text -> row numbers.
    indexes: HashMap<(String, String), HashMap<String, Vec<usize>>>,
}

impl MemoryTables {
    pub fn new(tables: impl IntoIterator<Item = Table>) -> Self {
        let tables = tables
            .into_iter()
            .map(|t| (t.schema.name.to_ascii_lowercase(), t))
            .collect();
        MemoryTables {
            tables,
            indexes: HashMap::new(),
        }
    }

    pub fn schemas(&self) -> kairos_model::Schemas {
        let mut schemas = kairos_model::Schemas::new();
        for table in self.tables.values() {
            schemas.insert(table.schema.clone());
        }
        schemas
    }

    /// Indexes the key columns `dep` reads profiles by: audience ID fields in profile tables,
    /// keys in dimension tables. Loading a profile then needs no lock and no scan.
    pub fn prepare(&mut self, dep: &Deployment) {
        let mut wanted = Vec::new();
        for level in dep.audience_levels() {
            let Some(tables) = dep.profile_tables(level) else {
                continue;
            };
            if let (Some(table), Some(field)) = (tables.table, tables.id_fields.first()) {
                wanted.push((table.to_ascii_lowercase(), field.clone()));
            }
            for d in &tables.dimensions {
                wanted.push((d.table.to_ascii_lowercase(), d.key.to_string()));
            }
        }
        for key in wanted {
            if self.indexes.contains_key(&key) {
                continue;
            }
            let Some(t) = self.tables.get(&key.0) else {
                continue;
            };
            let Some(col) = t.schema.columns.iter().position(|c| c.name == key.1) else {
                continue;
            };
            let mut index: HashMap<String, Vec<usize>> = HashMap::new();
            for (i, row) in t.rows.iter().enumerate() {
                if let Some(v) = &row[col] {
                    index.entry(id_text(v)).or_default().push(i);
                }
            }
            self.indexes.insert(key, index);
        }
    }

    fn rows(&self, table: &str, column: &str, id: &str) -> Vec<Row> {
        let key = (table.to_ascii_lowercase(), column.to_string());
        let (Some(t), Some(index)) = (self.tables.get(&key.0), self.indexes.get(&key)) else {
            return Vec::new();
        };
        let rows = index.get(id).map(Vec::as_slice).unwrap_or_default();
        rows.iter()
            .map(|&r| {
                t.schema
                    .columns
                    .iter()
                    .zip(&t.rows[r])
                    .filter_map(|(c, v)| v.clone().map(|v| (c.name.clone(), v)))
                    .collect()
            })
            .collect()
    }

    /// The visitor's profile row joined with their dimension rows; `None` without a row.
    /// Every value of `column` in `table` (the audience IDs of a flowchart test run).
    pub fn column_values(&self, table: &str, column: &str) -> Vec<Value> {
        let Some(t) = self.tables.get(&table.to_ascii_lowercase()) else {
            return Vec::new();
        };
        let Some(col) = t.schema.columns.iter().position(|c| c.name == column) else {
            return Vec::new();
        };
        t.rows.iter().filter_map(|row| row[col].clone()).collect()
    }

    /// Needs [`MemoryTables::prepare`] for `dep` first.
    pub fn load_profile(&self, dep: &Deployment, audience: &AudienceId) -> Option<Profile> {
        let query = dep.profile_query(audience)?;
        let row = self
            .rows(query.table, query.id_field, &query.id)
            .into_iter()
            .find(|row| matches_audience(row, audience))?;
        let dimensions = query
            .dimensions
            .iter()
            .map(|d| (d.name.to_string(), self.rows(d.table, d.key, &query.id)))
            .collect();
        Some(assemble_profile(row, dimensions))
    }
}

/// The visitors of an audience level's profile table.
pub struct Population {
    pub level: String,
    pub table: String,
    pub visitors: Vec<(AudienceId, Option<Profile>)>,
}

/// Every visitor of an audience level's profile table (the rows of a flowchart test run or an
/// impact report), with their profiles. Needs `tables` prepared for `dep`.
pub fn population(
    tables: &MemoryTables,
    dep: &Deployment,
    level: Option<&str>,
) -> Result<Population, String> {
    let Some(level) = level.or(dep.default_audience_level()).map(str::to_string) else {
        return Err("the channel has no audience level".into());
    };
    let Some(source) = dep.profile_tables(&level) else {
        return Err(format!(
            "channel '{}' has no audience level '{level}'",
            dep.channel
        ));
    };
    let (Some(table), Some(field)) = (source.table, source.id_fields.first()) else {
        return Err(format!(
            "audience level '{level}' has no profile table to run over"
        ));
    };
    let ids = tables.column_values(table, field);
    if ids.is_empty() {
        return Err(format!("table '{table}' has no rows"));
    }
    let visitors = ids
        .into_iter()
        .map(|id| {
            let audience = AudienceId {
                level: level.clone(),
                fields: vec![(field.clone(), id)],
            };
            let profile = tables.load_profile(dep, &audience);
            (audience, profile)
        })
        .collect();
    Ok(Population {
        level,
        table: table.to_string(),
        visitors,
    })
}

/// A deployment served in process, one session at a time, for scenario files.
pub struct InProcess<'a> {
    dep: &'a Deployment,
    tables: &'a mut MemoryTables,
    pub world: MemoryWorld,
    rng: SplitMix64,
    pub now: Timestamp,
    session: Option<Session>,
    sessions_started: u64,
}

impl<'a> InProcess<'a> {
    pub fn new(
        dep: &'a Deployment,
        tables: &'a mut MemoryTables,
        now: Timestamp,
        seed: u64,
    ) -> Self {
        tables.prepare(dep);
        InProcess {
            dep,
            tables,
            world: MemoryWorld::new(),
            rng: SplitMix64(seed),
            now,
            session: None,
            sessions_started: 0,
        }
    }

    /// Stores what the session produced, as the runtime's history writer would.
    fn persist(&mut self) {
        if let Some(session) = self.session.as_mut() {
            self.world.apply(session.take_records());
            // One session at a time in process: what it wrote is what is stored.
            if let Some((_, state)) = session.take_changed_state() {
                let state = state.clone();
                self.world
                    .save_audience_state(session.audience_key(), state);
            }
        }
    }

    fn session(&mut self) -> Result<&mut Session, String> {
        self.session
            .as_mut()
            .ok_or_else(|| "no session: start one first".to_string())
    }

    fn audience(level: &Option<String>, id: &[(String, Value)]) -> AudienceId {
        AudienceId {
            level: level.clone().unwrap_or_default(),
            fields: id.to_vec(),
        }
    }
}

impl Target for InProcess<'_> {
    fn call(&mut self, call: &Call) -> Result<Outcome, String> {
        let dep = self.dep;
        let now = self.now;
        let mut outcome = Outcome::default();
        match call {
            Call::StartSession {
                session_id,
                audience_level,
                audience_id,
                params,
            } => {
                self.persist();
                self.session = None;
                self.sessions_started += 1;
                let audience = Self::audience(audience_level, audience_id);
                // Resolve the default level first so the right profile table is read.
                let level = if audience.level.is_empty() {
                    dep.audience_levels()
                        .next()
                        .map(str::to_string)
                        .unwrap_or_default()
                } else {
                    audience.level.clone()
                };
                let audience = AudienceId { level, ..audience };
                let profile = self.tables.load_profile(dep, &audience);
                let state = self.world.audience_state(&audience.key());
                let start = Start {
                    session_id: session_id
                        .clone()
                        .unwrap_or_else(|| format!("session-{}", self.sessions_started)),
                    audience,
                    profile,
                    state,
                    params: params.clone(),
                    debug: true,
                };
                let (session, messages) = Session::start(dep, start, now)
                    .map_err(|m| format!("{}: {}", m.code, m.message))?;
                outcome.messages = messages.iter().map(|m| m.code.to_string()).collect();
                self.session = Some(session);
            }
            Call::GetOffers {
                requests,
                params,
                allow_duplicates,
            } => {
                let request = OffersRequest {
                    requests: requests
                        .iter()
                        .map(|(ip, count)| OfferRequest::new(ip, *count as usize))
                        .collect(),
                    params: params.clone(),
                    allow_duplicates: *allow_duplicates,
                };
                let session = self.session.as_mut().ok_or("no session: start one first")?;
                let response = session.get_offers(dep, &self.world, &mut self.rng, &request, now);
                outcome.offers = response
                    .offer_lists
                    .iter()
                    .map(|l| {
                        (
                            l.ip.to_string(),
                            l.offers
                                .iter()
                                .map(|o| (o.code().to_string(), o.treatment_code.to_string()))
                                .collect(),
                        )
                    })
                    .collect();
                outcome.messages = response
                    .messages
                    .iter()
                    .map(|m| m.code.to_string())
                    .collect();
                outcome.explain = response
                    .explain
                    .map(|e| e.iter().map(|ip| ip.to_text()).collect());
            }
            Call::PostEvent { event, params } => {
                let session = self.session.as_mut().ok_or("no session: start one first")?;
                let response = session.post_event(dep, &self.world, event, params, now);
                outcome.messages = response
                    .messages
                    .iter()
                    .map(|m| m.code.to_string())
                    .collect();
            }
            Call::SetAudience {
                audience_level,
                audience_id,
                params,
            } => {
                self.persist();
                let audience = Self::audience(audience_level, audience_id);
                let profile = self.tables.load_profile(dep, &audience);
                let state = self.world.audience_state(&audience.key());
                let session = self.session.as_mut().ok_or("no session: start one first")?;
                let messages = session
                    .set_audience(dep, audience, profile, state, params, now)
                    .map_err(|m| format!("{}: {}", m.code, m.message))?;
                outcome.messages = messages.iter().map(|m| m.code.to_string()).collect();
            }
            Call::GetProfile => {
                self.session()?;
            }
            Call::EndSession => {
                let ended = self
                    .session
                    .take()
                    .ok_or("no session: start one first")?
                    .end();
                self.world.apply(ended.records);
                if let Some((_, state)) = ended.state {
                    self.world.save_audience_state(&ended.audience_key, state);
                }
            }
            Call::Wait(d) => {
                self.now = Timestamp(
                    self.now
                        .0
                        .saturating_add(d.seconds.saturating_mul(NANOS_PER_SECOND)),
                )
            }
        }
        self.persist();
        Ok(outcome)
    }

    fn segments(&mut self) -> Result<Vec<String>, String> {
        let (dep, now) = (self.dep, self.now);
        Ok(self.session()?.segments(dep, now))
    }

    fn names(&mut self) -> Result<ChannelNames, String> {
        let names = |it: &mut dyn Iterator<Item = &str>| it.map(str::to_string).collect();
        Ok(ChannelNames {
            offers: names(&mut self.dep.offer_codes()),
            segments: names(&mut self.dep.segment_names()),
            interaction_points: names(&mut self.dep.interaction_points()),
        })
    }
}
