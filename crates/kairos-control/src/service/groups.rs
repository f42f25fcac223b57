//! Server groups: what each runs, deployments through the gates, rollback, and the runtimes'
//! side (the long poll for what to serve, status reports).

use std::time::Duration;

use kairos_api::control::{
    ActiveAnswer, ActiveDeployment, ActiveQuery, ActiveVersion, DeployRequest, Deployed,
    GroupRequest, GroupSaved, GroupTotals, GroupView, Heartbeat, InstanceView, RollbackRequest,
    RolledBack,
};
use kairos_api::control::{Gates, TouchpointGrant};
use kairos_api::{Code, Problem};
use kairos_store::ProfileStore;
use kairos_store::control::{Activation, Group, Instance, UnknownName, Version};

use super::access::token_channels;
use super::review::gates_of;
use super::{Caller, ControlPlane, storage, time, within};
use crate::auth::Role;

fn internal(e: serde_json::Error) -> Problem {
    Problem::internal(e.to_string())
}

/// At most this many origins per group.
const MOST_ORIGINS: usize = 100;

/// Origins as browsers send them: `*`, or `http(s)://host[:port]` (a trailing `/` is
/// dropped, scheme and host are lowercased), each once.
fn cors_origins(given: Vec<String>) -> Result<Vec<String>, Problem> {
    if given.len() > MOST_ORIGINS {
        return Err(Problem::bad_request(format!(
            "cors_origins: {} origins, more than {MOST_ORIGINS}",
            given.len()
        )));
    }
    let mut origins: Vec<String> = Vec::new();
    for (i, origin) in given.iter().enumerate() {
        let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
        let host = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"));
        let valid = origin == "*"
            || host.is_some_and(|h| {
                !h.is_empty()
                    && h.chars().all(|c| {
                        c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']')
                    })
            });
        if !valid {
            return Err(Problem::bad_request(format!(
                "cors_origins[{i}]: '{}' is not an origin: https://host[:port], or * for any",
                given[i]
            )));
        }
        if !origins.contains(&origin) {
            origins.push(origin);
        }
    }
    Ok(origins)
}

/// The longest a long poll waits for a change, in seconds (runtimes wait 5).
const LONGEST_WAIT: i64 = 20;

impl ControlPlane {
    pub async fn groups(&self) -> Result<Vec<GroupView>, Problem> {
        let now = self.now();
        let mut out = Vec::new();
        for g in self.store.groups().await.map_err(storage)? {
            let active = self.store.active(&g.name).await.map_err(storage)?;
            let instances: Vec<InstanceView> = self
                .store
                .instances(&g.name)
                .await
                .map_err(storage)?
                .into_iter()
                .map(|i| InstanceView {
                    seconds_since_seen: (now.0 - i.seen_at.0) / 1_000_000_000,
                    seen_at: time(i.seen_at),
                    instance: i.instance,
                    address: i.address,
                    // As the instance reported them; a report this version cannot read
                    // shows as nothing rather than hiding the instance.
                    running: serde_json::from_value(i.running).unwrap_or_default(),
                    stats: serde_json::from_value(i.stats).unwrap_or_default(),
                })
                .collect();
            out.push(GroupView {
                active: active
                    .into_iter()
                    .map(|(channel, version)| ActiveVersion { channel, version })
                    .collect(),
                totals: GroupTotals::of(&instances),
                instances,
                gates: gates_of(&g)?,
                open: g.open,
                name: g.name,
                production: g.production,
                data: g.data,
                history: g.history,
                cors_origins: g.cors_origins,
            });
        }
        Ok(out)
    }

    /// Creates a server group or changes one; what the request leaves out is kept.
    pub async fn put_group(
        &self,
        caller: &Caller,
        name: &str,
        request: GroupRequest,
    ) -> Result<GroupSaved, Problem> {
        caller.require(&[Role::Administrator])?;
        let valid_name = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid_name {
            return Err(Problem::bad_request(
                "group: letters, digits, '-' and '_' only",
            ));
        }
        if let Some(url) = request.history.as_deref().filter(|u| !u.is_empty())
            && !["sqlite://", "postgres://", "postgresql://"]
                .iter()
                .any(|scheme| url.starts_with(scheme))
        {
            return Err(Problem::bad_request(format!(
                "history: '{url}' is not a database URL: sqlite://PATH or postgres://..."
            )));
        }
        if let Some(url) = &request.data {
            // Opened now, so a wrong URL is refused here rather than at the first import.
            ProfileStore::open(url)
                .await
                .map_err(|e| Problem::bad_request(format!("data: {e}")))?;
        }
        let existing = self.store.group(name).await.map_err(storage)?;
        let production = request
            .production
            .or(existing.as_ref().map(|g| g.production))
            .unwrap_or(false);
        if let Some(gates) = &request.gates {
            within("gates.approvals", gates.approvals, 0..=100)?;
            within(
                "gates.min_loadtest_seconds",
                gates.min_loadtest_seconds,
                0..=3600,
            )?;
            if ![Role::Reviewer, Role::Manager].contains(&gates.review_role) {
                return Err(Problem::bad_request(format!(
                    "gates.review_role: {} cannot review; reviewer or manager",
                    gates.review_role.name()
                )));
            }
        }
        let gates = match (request.gates, &existing) {
            (Some(gates), _) => gates,
            (None, Some(g)) => gates_of(g)?,
            (None, None) if production => Gates::production(),
            (None, None) => Gates::none(),
        };
        let open = request
            .open
            .or(existing.as_ref().map(|g| g.open))
            .unwrap_or(!production);
        let cors_origins = match request.cors_origins {
            Some(origins) => cors_origins(origins)?,
            None => existing
                .as_ref()
                .map(|g| g.cors_origins.clone())
                .unwrap_or_default(),
        };
        let group = Group {
            name: name.to_string(),
            production,
            gates: serde_json::to_value(&gates).map_err(internal)?,
            open,
            generation: 0,
            data: request.data,
            // Absent keeps it; an empty string forgets it.
            history: match request.history {
                Some(url) if url.is_empty() => None,
                Some(url) => Some(url),
                None => existing.and_then(|g| g.history),
            },
            cors_origins,
        };
        self.store.put_group(&group).await.map_err(storage)?;
        self.signal();
        self.audit(
            &caller.name,
            "group",
            name,
            format!(
                "production: {production}, open: {open}, gates: {}, data: {}, cors: [{}]",
                group.gates,
                group.data.as_deref().unwrap_or("shared"),
                group.cors_origins.join(" ")
            ),
        )
        .await?;
        Ok(GroupSaved {
            name: group.name,
            production,
            gates,
            open,
            data: group.data,
            history: group.history,
            cors_origins: group.cors_origins,
        })
    }

    /// Records where `group`'s runtimes keep their history, so reports can read it.
    pub async fn set_history(&self, group: &str, url: &str) -> Result<(), Problem> {
        let mut g = self.group_named(group).await?;
        if g.history.as_deref() != Some(url) {
            g.history = Some(url.to_string());
            self.store.put_group(&g).await.map_err(storage)?;
        }
        Ok(())
    }

    /// Puts a version on a group: a given one, or a snapshot of the design. To a production
    /// group only through its gates, or past them with an administrator's recorded reason.
    pub async fn deploy(
        &self,
        caller: &Caller,
        group: &str,
        request: DeployRequest,
    ) -> Result<Deployed, Problem> {
        caller.require(&[Role::Administrator, Role::Manager])?;
        let g = self.group_named(group).await?;
        let channel = &request.channel;
        let version = match request.version {
            Some(n) => self.stored_version(channel, n).await?,
            None => self.snapshot(channel, &request.note, &caller.name).await?.0,
        };
        let mut reason = None;
        if g.production {
            self.check_one_production_group(&g, channel).await?;
            let failed = self.failed_gates(&g, &version).await?;
            if !failed.is_empty() {
                let given = request
                    .override_reason
                    .as_deref()
                    .map(str::trim)
                    .filter(|r| !r.is_empty());
                match given {
                    Some(r) if caller.has(Role::Administrator) => {
                        reason = Some(format!("override of [{}]: {r}", failed.join("; ")));
                    }
                    Some(_) => {
                        return Err(Problem::new(
                            Code::Forbidden,
                            "only an administrator can override gates",
                        )
                        .with_errors(failed));
                    }
                    None => {
                        return Err(Problem::new(
                            Code::GatesFailed,
                            format!(
                                "version {} of {channel} cannot go to {group}: {} gate(s) failed",
                                version.number,
                                failed.len()
                            ),
                        )
                        .with_errors(failed));
                    }
                }
            }
        }
        self.activate(caller, group, &version, "deploy", reason)
            .await?;
        Ok(Deployed {
            group: group.to_string(),
            channel: request.channel,
            version: version.number,
            hash: version.hash,
        })
    }

    /// A channel has exactly one production group: the first it goes to.
    async fn check_one_production_group(&self, g: &Group, channel: &str) -> Result<(), Problem> {
        for other in self.store.groups().await.map_err(storage)? {
            if !other.production || other.name == g.name {
                continue;
            }
            let runs_it = self
                .store
                .activations(channel, Some(&other.name))
                .await
                .map_err(storage)?;
            if !runs_it.is_empty() {
                return Err(Problem::new(
                    Code::OneProductionGroup,
                    format!(
                        "{channel}'s production group is {}; a channel has exactly one",
                        other.name
                    ),
                ));
            }
        }
        Ok(())
    }

    pub(super) async fn activate(
        &self,
        caller: &Caller,
        group: &str,
        version: &Version,
        action: &str,
        reason: Option<String>,
    ) -> Result<(), Problem> {
        self.store
            .activate(&Activation {
                group: group.to_string(),
                channel: version.channel.clone(),
                version: version.number,
                by: caller.name.clone(),
                at: self.now(),
                action: action.to_string(),
                reason: reason.clone(),
            })
            .await
            .map_err(storage)?;
        self.signal();
        self.audit(
            &caller.name,
            action,
            &format!("{} v{} on {group}", version.channel, version.number),
            reason.unwrap_or_default(),
        )
        .await
    }

    /// Back to a version the group ran before: `to`, or the one before the current one.
    /// Anything else goes through deploy and its gates.
    pub async fn rollback(
        &self,
        caller: &Caller,
        group: &str,
        request: RollbackRequest,
    ) -> Result<RolledBack, Problem> {
        caller.require(&[Role::Administrator, Role::Manager])?;
        self.group_named(group).await?;
        let channel = &request.channel;
        let history = self
            .store
            .activations(channel, Some(group))
            .await
            .map_err(storage)?;
        let current = self
            .store
            .active(group)
            .await
            .map_err(storage)?
            .into_iter()
            .find(|(c, _)| c == channel)
            .map(|(_, n)| n);
        let target = match request.to {
            Some(n) if history.iter().any(|a| a.version == n) => n,
            Some(n) => {
                return Err(Problem::new(
                    Code::NeverActive,
                    format!("version {n} of {channel} never ran on {group}; deploy it instead"),
                ));
            }
            None => history
                .iter()
                .rev()
                .map(|a| a.version)
                .find(|n| Some(*n) != current)
                .ok_or_else(|| {
                    Problem::new(
                        Code::NothingToRollBackTo,
                        format!("{group} has run no other version of {channel}"),
                    )
                })?,
        };
        let version = self.stored_version(channel, target).await?;
        self.activate(caller, group, &version, "rollback", None)
            .await?;
        Ok(RolledBack {
            group: group.to_string(),
            channel: request.channel,
            version: target,
            previous: current,
        })
    }

    /// What a group's runtimes serve. With `after` and `wait`, answers as soon as the group's
    /// generation passes `after` (a long poll), or after `wait` seconds with what is current.
    pub async fn active(
        &self,
        caller: &Caller,
        group: &str,
        query: ActiveQuery,
    ) -> Result<ActiveAnswer, Problem> {
        match caller.runtime_group.as_deref() {
            Some(g) if g != group => {
                return Err(Problem::new(
                    Code::Forbidden,
                    format!("this runtime token is not for {group}"),
                ));
            }
            Some(_) => {}
            None => caller.may_read()?,
        }
        let wait = Duration::from_secs(within("wait", query.wait, 0..=LONGEST_WAIT)? as u64);
        let deadline = tokio::time::Instant::now() + wait;
        let mut changed = self.changed.subscribe();
        let g = loop {
            let g = self.group_named(group).await?;
            if g.generation > query.after
                || tokio::time::Instant::now() >= deadline
                || self.stopping.load(std::sync::atomic::Ordering::Relaxed)
            {
                break g;
            }
            // Another control plane instance may have changed it: look again within a second.
            let _ = tokio::time::timeout(
                Duration::from_secs(1).min(deadline - tokio::time::Instant::now()),
                changed.changed(),
            )
            .await;
        };
        let mut deployments = Vec::new();
        for (channel, number) in self.store.active(group).await.map_err(storage)? {
            let v = self.stored_version(&channel, number).await?;
            deployments.push(ActiveDeployment {
                channel,
                version: number,
                hash: v.hash,
                yaml: v.yaml,
            });
        }
        // Each token with the channels of it this group serves; expired ones not at all.
        let now = self.now();
        let mut touchpoint_tokens = Vec::new();
        for t in self.store.tokens("touchpoint").await.map_err(storage)? {
            let channels: Vec<String> = token_channels(&t.subject)
                .filter(|c| {
                    deployments
                        .iter()
                        .any(|d| d.channel.eq_ignore_ascii_case(c))
                })
                .map(str::to_ascii_lowercase)
                .collect();
            if channels.is_empty() || t.expired(now) {
                continue;
            }
            touchpoint_tokens.push(TouchpointGrant {
                digest: t.digest,
                channels,
                expires_at: t.expires_at.map(|at| at.0.div_euclid(1_000_000_000)),
            });
        }
        Ok(ActiveAnswer {
            group: group.to_string(),
            generation: g.generation,
            data: g.data,
            deployments,
            open: g.open,
            touchpoint_tokens,
            cors_origins: g.cors_origins,
        })
    }

    /// A runtime's status report: what it runs, its load, names touchpoints called that its
    /// channels lack.
    pub async fn heartbeat(
        &self,
        caller: &Caller,
        group: &str,
        instance: &str,
        report: Heartbeat,
    ) -> Result<(), Problem> {
        if caller.runtime_group.as_deref() != Some(group) {
            caller.require(&[Role::Administrator])?;
        }
        self.group_named(group).await?;
        // Counts as the document gives them: what a signed 64-bit integer holds.
        let counts = std::iter::once(("stats.requests_total", report.stats.requests_total))
            .chain(report.unknown.iter().map(|u| ("unknown.calls", u.calls)));
        for (name, count) in counts {
            if i64::try_from(count).is_err() {
                return Err(Problem::bad_request(format!(
                    "{name}: {count} is more than a 64-bit count"
                )));
            }
        }
        let now = self.now();
        self.store
            .report_instance(&Instance {
                group: group.to_string(),
                instance: instance.to_string(),
                address: report.address,
                running: serde_json::to_value(&report.running).map_err(internal)?,
                stats: serde_json::to_value(&report.stats).map_err(internal)?,
                seen_at: now,
            })
            .await
            .map_err(storage)?;
        for u in report.unknown {
            self.store
                .report_unknown(&UnknownName {
                    channel: u.channel,
                    kind: u.kind,
                    name: u.name,
                    calls: i64::try_from(u.calls).unwrap_or(i64::MAX),
                    last_at: now,
                })
                .await
                .map_err(storage)?;
        }
        Ok(())
    }
}
