//! Numbered, immutable versions: snapshots of the design, their reviews and test results,
//! the gates a version must pass for production, and reports over what a version would do.

use kairos_api::control::{
    ActivationView, Against, ImpactQuery, ImpactReport, ImpactRow, NoteRequest, ResultView,
    ReviewView, SegmentCount, SegmentsQuery, SegmentsReport, VersionView,
};
use kairos_api::{Code, Problem};
use kairos_engine::channel_hash;
use kairos_engine::inprocess::{MemoryTables, population};
use kairos_engine::report::{impact, segment_counts};
use kairos_model::Schemas;
use kairos_model::components;
use kairos_store::control::{Activation, Version};
use serde_json::json;

use super::{Caller, ControlPlane, blocking, rejected, storage, time, within};
use crate::auth::Role;

/// Where a channel's versions have run and run now: read once for all its versions.
struct Deployments {
    activations: Vec<Activation>,
    /// (group, version active there).
    active: Vec<(String, i64)>,
}

fn report_failed(e: impl std::fmt::Display) -> Problem {
    Problem::new(Code::NoPopulation, e.to_string())
}

impl ControlPlane {
    async fn deployments(&self, channel: &str) -> Result<Deployments, Problem> {
        let mut active = Vec::new();
        for g in self.store.groups().await.map_err(storage)? {
            let running = self.store.active(&g.name).await.map_err(storage)?;
            if let Some((_, n)) = running.into_iter().find(|(c, _)| c == channel) {
                active.push((g.name, n));
            }
        }
        Ok(Deployments {
            activations: self
                .store
                .activations(channel, None)
                .await
                .map_err(storage)?,
            active,
        })
    }

    async fn version_view(
        &self,
        v: Version,
        with_yaml: bool,
        deployments: &Deployments,
    ) -> Result<VersionView, Problem> {
        let reviews = self
            .store
            .reviews(&v.channel, v.number)
            .await
            .map_err(storage)?;
        let results = self
            .store
            .results(&v.channel, v.number)
            .await
            .map_err(storage)?;
        Ok(VersionView {
            active_in: deployments
                .active
                .iter()
                .filter(|(_, n)| *n == v.number)
                .map(|(g, _)| g.clone())
                .collect(),
            deployments: deployments
                .activations
                .iter()
                .filter(|a| a.version == v.number)
                .map(|a| ActivationView {
                    group: a.group.clone(),
                    by: a.by.clone(),
                    at: time(a.at),
                    action: a.action.clone(),
                    reason: a.reason.clone(),
                })
                .collect(),
            reviews: reviews
                .into_iter()
                .map(|r| ReviewView {
                    reviewer: r.reviewer,
                    decision: if r.approved { "approved" } else { "rejected" }.to_string(),
                    comment: r.comment,
                    at: time(r.at),
                })
                .collect(),
            results: results
                .into_iter()
                .map(|r| ResultView {
                    group: r.group,
                    kind: r.kind,
                    passed: r.passed,
                    // Stored as the runtime sent it; an older kind of summary reads empty.
                    summary: serde_json::from_value(r.summary).unwrap_or_default(),
                    by: r.by,
                    at: time(r.at),
                })
                .collect(),
            yaml: with_yaml.then(|| v.yaml.clone()),
            channel: v.channel,
            number: v.number,
            hash: v.hash,
            author: v.author,
            created_at: time(v.created_at),
            note: v.note,
            report: v.report,
        })
    }

    pub async fn versions(&self, channel: &str) -> Result<Vec<VersionView>, Problem> {
        let deployments = self.deployments(channel).await?;
        let mut out = Vec::new();
        for v in self.store.versions(channel).await.map_err(storage)? {
            out.push(self.version_view(v, false, &deployments).await?);
        }
        Ok(out)
    }

    /// One version, with its channel file.
    pub async fn version(&self, channel: &str, number: i64) -> Result<VersionView, Problem> {
        let v = self.stored_version(channel, number).await?;
        let deployments = self.deployments(channel).await?;
        self.version_view(v, true, &deployments).await
    }

    /// Snapshots the design as a version; the answer says whether it is new (an unchanged
    /// design reuses the newest version).
    pub async fn create_version(
        &self,
        caller: &Caller,
        channel: &str,
        request: NoteRequest,
    ) -> Result<(VersionView, bool), Problem> {
        caller.require(&[Role::Designer, Role::Administrator, Role::Manager])?;
        let (v, created) = self.snapshot(channel, &request.note, &caller.name).await?;
        let deployments = self.deployments(channel).await?;
        Ok((self.version_view(v, false, &deployments).await?, created))
    }

    /// Snapshots the design as a version, reusing the newest one when nothing changed.
    pub(super) async fn snapshot(
        &self,
        channel: &str,
        note: &str,
        author: &str,
    ) -> Result<(Version, bool), Problem> {
        let design = self.design(channel).await?;
        let checked = components::check(channel, &design, &self.schemas().await?)
            .map_err(|e| rejected(&format!("the design of '{channel}' is not deployable"), e))?;
        let hash = channel_hash(&checked);
        let versions = self.store.versions(channel).await.map_err(storage)?;
        if let Some(last) = versions.last().filter(|v| v.hash == hash) {
            return Ok((last.clone(), false));
        }
        let mut version = Version {
            channel: channel.to_string(),
            number: 0,
            yaml: kairos_model::to_yaml(&checked),
            hash,
            author: author.to_string(),
            created_at: self.now(),
            note: note.to_string(),
            report: json!({
                "errors": [],
                "zones": checked.zones.len(),
                "offers": checked.offers.len(),
                "segments": checked.segments.len(),
                "flowcharts": checked.flowcharts.len(),
                "rules": checked.rules.len(),
                "events": checked.events.len(),
            }),
        };
        version.number = self.store.create_version(&version).await.map_err(storage)?;
        self.audit(
            author,
            "snapshot",
            &format!("{channel} v{}", version.number),
            note.to_string(),
        )
        .await?;
        Ok((version, true))
    }

    /// A version compiled against the default data source's tables.
    async fn compiled(
        &self,
        channel: &str,
        number: i64,
        schemas: &Schemas,
    ) -> Result<kairos_engine::Deployment, Problem> {
        let v = self.stored_version(channel, number).await?;
        let parsed = kairos_model::parse_channel(&format!("{channel} v{number}"), &v.yaml, schemas)
            .map_err(|e| rejected("the version no longer checks against the tables", e))?;
        kairos_engine::Deployment::compile(&parsed, schemas, number as u64)
            .map_err(|e| Problem::new(Code::InvalidChannelFile, e.to_string()))
    }

    /// The default data source's tables in memory, prepared for `deployments`.
    async fn population_tables(
        &self,
        deployments: &[&kairos_engine::Deployment],
        limit: i64,
    ) -> Result<MemoryTables, Problem> {
        let mut tables = Vec::new();
        for schema in self.profiles.schemas().await.map_err(storage)? {
            tables.push(self.profiles.table(&schema, limit).await.map_err(storage)?);
        }
        let mut tables = MemoryTables::new(tables);
        for dep in deployments {
            tables.prepare(dep);
        }
        Ok(tables)
    }

    /// For reviewers: over the profile table's visitors, which offers gain or lose how many
    /// visitors, and which segments change size, if this version replaced the one `against`
    /// runs (a group, `production` by default, or a version number).
    pub async fn impact(
        &self,
        channel: &str,
        number: i64,
        query: ImpactQuery,
    ) -> Result<ImpactReport, Problem> {
        let against = query.against.unwrap_or_else(|| "production".into());
        let current_number = match against.parse::<i64>() {
            Ok(n) => n,
            Err(_) => {
                self.group_named(&against).await?;
                self.store
                    .active(&against)
                    .await
                    .map_err(storage)?
                    .into_iter()
                    .find(|(c, _)| *c == channel)
                    .map(|(_, n)| n)
                    .ok_or_else(|| {
                        Problem::new(
                            Code::NothingActive,
                            format!(
                                "{against} runs no version of {channel}: nothing to compare with"
                            ),
                        )
                    })?
            }
        };
        let schemas = self.schemas().await?;
        let candidate = self.compiled(channel, number, &schemas).await?;
        let current = self.compiled(channel, current_number, &schemas).await?;
        let count = within("count", query.count.unwrap_or(3), 1..=100)? as usize;
        let limit = within("limit", query.limit.unwrap_or(100_000), 1..=1_000_000)?;
        let tables = self
            .population_tables(&[&current, &candidate], limit)
            .await?;
        let now = self.now();
        let level = query.level;
        let (level, table, report) = blocking("the impact report", move || {
            let p = population(&tables, &candidate, level.as_deref())?;
            let report = impact(&current, &candidate, p.visitors, count, now);
            Ok::<_, String>((p.level, p.table, report))
        })
        .await?
        .map_err(report_failed)?;
        let rows = |rows: Vec<(String, u64, u64)>| -> Vec<ImpactRow> {
            rows.into_iter()
                .map(|(name, current, candidate)| ImpactRow {
                    name,
                    current,
                    candidate,
                })
                .collect()
        };
        Ok(ImpactReport {
            channel: channel.to_string(),
            version: number,
            against: Against {
                name: against,
                version: current_number,
            },
            level,
            table,
            visitors: report.visitors,
            offers: rows(report.offers),
            segments: rows(report.segments),
        })
    }

    /// A flowchart test run of a version over the profile table: segment sizes and path
    /// counts.
    pub async fn segments(
        &self,
        channel: &str,
        number: i64,
        query: SegmentsQuery,
    ) -> Result<SegmentsReport, Problem> {
        let limit = within("limit", query.limit.unwrap_or(100_000), 1..=1_000_000)?;
        let schemas = self.schemas().await?;
        let dep = self.compiled(channel, number, &schemas).await?;
        let tables = self.population_tables(&[&dep], limit).await?;
        let now = self.now();
        let level = query.level;
        let (level, table, counts) = blocking("the segments report", move || {
            let p = population(&tables, &dep, level.as_deref())?;
            let counts = segment_counts(&dep, p.visitors, now);
            Ok::<_, String>((p.level, p.table, counts))
        })
        .await?
        .map_err(report_failed)?;
        let pairs = |rows: Vec<(String, u64)>| -> Vec<SegmentCount> {
            rows.into_iter()
                .map(|(name, visitors)| SegmentCount { name, visitors })
                .collect()
        };
        Ok(SegmentsReport {
            channel: channel.to_string(),
            version: number,
            level,
            table,
            visitors: counts.visitors,
            rejected: counts.rejected,
            segments: pairs(counts.segments),
            branches: pairs(counts.branches),
        })
    }
}
