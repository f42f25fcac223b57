//! The design repository: channels as components, each edit a revision.

use kairos_api::Problem;
use kairos_api::control::{
    Applied, ApplyRequest, ChangeView, ChannelSummary, ChannelView, ComponentDeleted,
    ComponentSaved, ComponentView, DesignError, Diff, DiffQuery, Validation,
};
use kairos_model::components::{self, Component, Kind, SETTINGS};
use kairos_store::control::Expect;
use serde_json::Value as J;

use super::{Caller, ControlPlane, not_found, rejected, storage, time};
use crate::auth::Role;

/// A component kind by its name in a path, or a problem listing the kinds.
pub fn kind_of(kind: &str) -> Result<Kind, Problem> {
    Kind::from_name(kind).ok_or_else(|| {
        let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
        not_found(format!(
            "'{kind}' is not a component kind; kinds are {}",
            kinds.join(", ")
        ))
    })
}

impl ControlPlane {
    pub async fn channels(&self) -> Result<Vec<ChannelSummary>, Problem> {
        let channels = self.store.channels().await.map_err(storage)?;
        Ok(channels
            .into_iter()
            .map(|c| ChannelSummary {
                name: c.name,
                revision: c.revision,
                updated_by: c.updated_by,
                updated_at: time(c.updated_at),
            })
            .collect())
    }

    /// Imports a channel file: each of its components becomes a new revision.
    pub async fn apply(&self, caller: &Caller, request: ApplyRequest) -> Result<Applied, Problem> {
        caller.require(&[Role::Designer])?;
        let channel =
            kairos_model::parse_channel(&request.file, &request.yaml, &self.schemas().await?)
                .map_err(|e| rejected(&format!("{} was not applied", request.file), e))?;
        let name = channel.name.value.clone();
        let parts = components::split(&channel);
        let revision = self
            .store
            .replace_channel(&name, &parts, &caller.name, self.now())
            .await
            .map_err(storage)?;
        self.audit(
            &caller.name,
            "apply",
            &name,
            format!("{} at revision {revision}", request.file),
        )
        .await?;
        Ok(Applied {
            channel: name,
            revision,
            components: parts.len(),
        })
    }

    /// Imports a channel file, snapshots it and activates it on `group`, unless a channel of
    /// that name exists already (`kairos up`'s demo). Returns whether it did.
    pub async fn seed_channel(&self, file: &str, yaml: &str, group: &str) -> Result<bool, Problem> {
        let channel = kairos_model::parse_channel(file, yaml, &self.schemas().await?)
            .map_err(|e| rejected(file, e))?;
        let name = channel.name.value.clone();
        if self.store.channel(&name).await.map_err(storage)?.is_some() {
            return Ok(false);
        }
        let caller = Caller::system();
        self.store
            .replace_channel(
                &name,
                &components::split(&channel),
                &caller.name,
                self.now(),
            )
            .await
            .map_err(storage)?;
        self.audit(&caller.name, "apply", &name, file.to_string())
            .await?;
        let (version, _) = self
            .snapshot(&name, "the demo channel", &caller.name)
            .await?;
        self.activate(&caller, group, &version, "deploy", None)
            .await?;
        Ok(true)
    }

    pub async fn channel(&self, channel: &str) -> Result<ChannelView, Problem> {
        let info = self
            .store
            .channel(channel)
            .await
            .map_err(storage)?
            .ok_or_else(|| not_found(format!("channel '{channel}' does not exist")))?;
        let components = self.store.components(channel).await.map_err(storage)?;
        Ok(ChannelView {
            name: info.name,
            revision: info.revision,
            updated_by: info.updated_by,
            updated_at: time(info.updated_at),
            components: components
                .into_iter()
                .map(|c| ComponentView {
                    kind: c.component.kind.name().to_string(),
                    name: c.component.name,
                    revision: c.revision,
                    updated_by: c.updated_by,
                    updated_at: time(c.updated_at),
                    body: c.component.body,
                })
                .collect(),
        })
    }

    /// A version's channel file, or the current design's (whatever has the right shape: the
    /// design may be mid-edit).
    pub async fn export(&self, channel: &str, version: Option<i64>) -> Result<String, Problem> {
        Ok(match version {
            Some(n) => self.stored_version(channel, n).await?.yaml,
            None => {
                let design = self.design(channel).await?;
                let assembled = components::assemble(channel, &design);
                let read = kairos_model::read_channel("design", &assembled.text)
                    .map_err(|e| rejected("the design cannot be exported", e))?;
                kairos_model::to_yaml(&read)
            }
        })
    }

    /// Every error of the design, each in its component.
    pub async fn validate(&self, channel: &str) -> Result<Validation, Problem> {
        let errors = self.design_errors(channel).await?;
        Ok(Validation {
            valid: errors.is_empty(),
            errors,
        })
    }

    async fn design_errors(&self, channel: &str) -> Result<Vec<DesignError>, Problem> {
        let design = self.design(channel).await?;
        Ok(
            match components::check(channel, &design, &self.schemas().await?) {
                Ok(_) => Vec::new(),
                Err(r) => {
                    r.0.into_iter()
                        .map(|d| DesignError {
                            component: d.file,
                            line: d.line,
                            column: d.column,
                            message: d.message,
                        })
                        .collect()
                }
            },
        )
    }

    /// One component and its revision (the ETag of an edit).
    pub async fn component(
        &self,
        channel: &str,
        kind: Kind,
        name: &str,
    ) -> Result<(J, i64), Problem> {
        let found = self
            .store
            .components(channel)
            .await
            .map_err(storage)?
            .into_iter()
            .find(|c| c.component.kind == kind && c.component.name == name)
            .ok_or_else(|| not_found(format!("{channel} has no {}/{name}", kind.name())))?;
        Ok((found.component.body, found.revision))
    }

    /// Saves a component, whatever its errors (a design may be mid-edit); `expect` says
    /// which revision the edit was based on.
    pub async fn put_component(
        &self,
        caller: &Caller,
        channel: &str,
        component: Component,
        expect: Expect,
    ) -> Result<ComponentSaved, Problem> {
        caller.require(&[Role::Designer])?;
        if component.kind == Kind::Settings && component.name != SETTINGS {
            return Err(Problem::bad_request(format!(
                "name: a channel's settings are named '{SETTINGS}'"
            )));
        }
        let revision = self
            .store
            .put_component(channel, &component, expect, &caller.name, self.now())
            .await
            .map_err(storage)?;
        self.audit(
            &caller.name,
            "edit",
            &format!("{channel}/{}", component.path()),
            format!("revision {revision}"),
        )
        .await?;
        Ok(ComponentSaved {
            revision,
            errors: self.design_errors(channel).await?,
        })
    }

    pub async fn delete_component(
        &self,
        caller: &Caller,
        channel: &str,
        kind: Kind,
        name: &str,
        expect: Expect,
    ) -> Result<ComponentDeleted, Problem> {
        caller.require(&[Role::Designer])?;
        let revision = self
            .store
            .delete_component(channel, kind, name, expect, &caller.name, self.now())
            .await
            .map_err(storage)?;
        self.audit(
            &caller.name,
            "delete",
            &format!("{channel}/{}/{name}", kind.name()),
            format!("revision {revision}"),
        )
        .await?;
        Ok(ComponentDeleted { revision })
    }

    /// What changed between two versions, or a version and the design.
    pub async fn diff(&self, channel: &str, query: DiffQuery) -> Result<Diff, Problem> {
        let old = self.components_of(channel, &query.from).await?;
        let new = self.components_of(channel, &query.to).await?;
        Ok(Diff {
            changes: components::diff(&old, &new)
                .into_iter()
                .map(|c| ChangeView {
                    path: c.path,
                    change: c.change.to_string(),
                    lines: c.lines,
                })
                .collect(),
            from: query.from,
            to: query.to,
        })
    }
}
