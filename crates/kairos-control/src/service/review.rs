//! Four eyes: who authored a version, who may review it, and the gates it must pass on its
//! way to a production group.

use std::collections::{BTreeSet, HashMap};

use kairos_api::control::{Decision, Gates, ReviewRequest, Reviewed};
use kairos_api::testrun::{LoadtestSummary, ScenarioSummary};
use kairos_api::{Code, Problem};
use kairos_model::components::{self, Component};
use kairos_rules::time::Timestamp;
use kairos_store::control::{Group, Review, Version};

use super::{Caller, ControlPlane, rejected, storage};
use crate::auth::Role;

/// A group's gates as stored; what an older build stored reads with today's defaults.
pub(super) fn gates_of(group: &Group) -> Result<Gates, Problem> {
    serde_json::from_value(group.gates.clone()).map_err(|e| {
        Problem::new(
            Code::StorageUnavailable,
            format!("the gates of {} cannot be read: {e}", group.name),
        )
    })
}

/// Why a passing result still passes no gate, if it does not: one a client posted rather
/// than the control plane ran (an earlier version took such results), a scenario run that
/// ran no scenario, a load test without thresholds or shorter than the group asks.
fn not_enough(kind: &str, summary: &serde_json::Value, gates: &Gates) -> Option<String> {
    const POSTED: &str = "was posted by a client, not run by the control plane";
    if kind == "scenarios" {
        return match serde_json::from_value::<ScenarioSummary>(summary.clone()) {
            Ok(s) if s.run.is_none() => Some(POSTED.to_string()),
            Ok(s) if s.passed > 0 => None,
            Ok(_) => Some("ran no scenario".to_string()),
            Err(_) => Some("does not say how many scenarios passed".to_string()),
        };
    }
    match serde_json::from_value::<LoadtestSummary>(summary.clone()) {
        Ok(s) if s.run.is_none() => Some(POSTED.to_string()),
        Ok(s) if s.max_p99_ms.is_none() && s.min_rps.is_none() => {
            Some("had no threshold to meet (give --max-p99-ms or --min-rps)".to_string())
        }
        Ok(s) if s.duration_seconds < f64::from(gates.min_loadtest_seconds) => Some(format!(
            "ran {:.0} s, shorter than the {} s the group asks",
            s.duration_seconds, gates.min_loadtest_seconds
        )),
        Ok(_) => None,
        Err(_) => Some("does not say how long it ran or against which thresholds".to_string()),
    }
}

fn parsed(version: &Version) -> Result<Vec<Component>, Problem> {
    let name = format!("{} v{}", version.channel, version.number);
    let channel = kairos_model::read_channel(&name, &version.yaml)
        .map_err(|e| rejected("stored version", e))?;
    Ok(components::split(&channel))
}

impl ControlPlane {
    /// The users who changed a component in which `version` differs from the version the
    /// channel's production group runs (from every change since that one was made), or from
    /// nothing when no production group runs the channel yet. None of them may review it.
    pub(super) async fn authors(&self, version: &Version) -> Result<BTreeSet<String>, Problem> {
        let channel = &version.channel;
        let mut base: Option<Version> = None;
        for group in self.store.groups().await.map_err(storage)? {
            if !group.production {
                continue;
            }
            let active = self.store.active(&group.name).await.map_err(storage)?;
            if let Some((_, number)) = active.into_iter().find(|(c, _)| c == channel) {
                base = Some(self.stored_version(channel, number).await?);
                break;
            }
        }
        let mine = parsed(version)?;
        let theirs = base.as_ref().map(parsed).transpose()?.unwrap_or_default();
        let differs = |kind, name: &str| {
            let find = |list: &[Component]| {
                list.iter()
                    .find(|c| c.kind == kind && c.name == name)
                    .map(|c| c.body.clone())
            };
            find(&mine) != find(&theirs)
        };
        // Changes made in the second the base was made may be in it: counted, as a doubt
        // here only keeps someone from approving.
        let since = base.as_ref().map_or(Timestamp(i64::MIN), |b| b.created_at);
        let changes = self.store.changes(channel, since).await.map_err(storage)?;
        Ok(changes
            .into_iter()
            .filter(|c| c.at <= version.created_at && differs(c.kind, &c.name))
            .map(|c| c.by)
            .collect())
    }

    pub async fn review(
        &self,
        caller: &Caller,
        channel: &str,
        number: i64,
        request: ReviewRequest,
    ) -> Result<Reviewed, Problem> {
        caller.require(&[Role::Reviewer, Role::Manager])?;
        let version = self.stored_version(channel, number).await?;
        if self.authors(&version).await?.contains(&caller.name) {
            return Err(Problem::new(
                Code::Forbidden,
                format!(
                    "{} changed {channel} in version {number}: an author cannot review it",
                    caller.name
                ),
            ));
        }
        let approved = request.decision == Decision::Approve;
        let review = Review {
            reviewer: caller.name.clone(),
            approved,
            comment: request.comment,
            at: self.now(),
        };
        self.store
            .add_review(channel, number, &review)
            .await
            .map_err(storage)?;
        self.audit(
            &caller.name,
            request.decision.name(),
            &format!("{channel} v{number}"),
            review.comment,
        )
        .await?;
        Ok(Reviewed {
            channel: channel.to_string(),
            version: number,
            decision: request.decision,
        })
    }

    /// The gates `version` fails on its way to `group`: one line each.
    pub(super) async fn failed_gates(
        &self,
        group: &Group,
        version: &Version,
    ) -> Result<Vec<String>, Problem> {
        let gates = gates_of(group)?;
        let (channel, number) = (&version.channel, version.number);
        let mut failed = Vec::new();
        let groups = self.store.groups().await.map_err(storage)?;
        let staging: Vec<&str> = groups
            .iter()
            .filter(|g| !g.production)
            .map(|g| g.name.as_str())
            .collect();
        if gates.staged {
            let activations = self
                .store
                .activations(channel, None)
                .await
                .map_err(storage)?;
            if !activations
                .iter()
                .any(|a| a.version == number && staging.contains(&a.group.as_str()))
            {
                failed.push(format!(
                    "staged: version {number} has not been active on a staging group"
                ));
            }
        }
        let results = self.store.results(channel, number).await.map_err(storage)?;
        for (wanted, kind, what) in [
            (gates.scenarios, "scenarios", "scenario tests"),
            (gates.loadtest, "loadtest", "load test"),
        ] {
            if !wanted {
                continue;
            }
            let latest = results
                .iter()
                .rev()
                .find(|r| r.kind == kind && staging.contains(&r.group.as_str()));
            match latest {
                None => failed.push(format!(
                    "{kind}: no {what} result on staging for version {number}"
                )),
                Some(r) if !r.passed => {
                    failed.push(format!("{kind}: the last {what} on {} failed", r.group))
                }
                Some(r) => {
                    if let Some(why) = not_enough(kind, &r.summary, &gates) {
                        failed.push(format!("{kind}: the last {what} on {} {why}", r.group));
                    }
                }
            }
        }
        failed.extend(self.failed_approvals(&gates, version).await?);
        Ok(failed)
    }

    /// One decision per reviewer counts, their latest; only from users who hold the group's
    /// review role today and authored none of the version.
    async fn failed_approvals(
        &self,
        gates: &Gates,
        version: &Version,
    ) -> Result<Vec<String>, Problem> {
        let reviews = self
            .store
            .reviews(&version.channel, version.number)
            .await
            .map_err(storage)?;
        let mut latest: HashMap<&str, &Review> = HashMap::new();
        for r in &reviews {
            latest.insert(&r.reviewer, r);
        }
        let authors = self.authors(version).await?;
        let mut counted = Vec::new();
        for review in latest.into_values() {
            let holds_role = self
                .store
                .user(&review.reviewer)
                .await
                .map_err(storage)?
                .is_some_and(|u| {
                    !u.disabled && u.roles.iter().any(|r| r == gates.review_role.name())
                });
            if holds_role && !authors.contains(&review.reviewer) {
                counted.push(review);
            }
        }
        counted.sort_by(|a, b| a.reviewer.cmp(&b.reviewer));
        let mut failed: Vec<String> = counted
            .iter()
            .filter(|r| !r.approved)
            .map(|r| format!("approvals: rejected by {}: {}", r.reviewer, r.comment))
            .collect();
        let approvals = counted.iter().filter(|r| r.approved).count();
        let needed = gates.approvals as usize;
        if approvals < needed {
            failed.push(format!(
                "approvals: {approvals} of {needed} required approval(s) by a {} who authored none of it",
                gates.review_role.name()
            ));
        }
        Ok(failed)
    }
}
