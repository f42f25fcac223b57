//! The control plane's repository: users and tokens, the design (channels as components, each
//! change a new revision), numbered immutable versions, server groups and what each runs,
//! reviews, test results, runtime instances, names touchpoints called that no channel
//! defines, and the audit log. SQLite and PostgreSQL through the same portable statements.

use kairos_model::components::{Component, Kind};
use kairos_rules::time::Timestamp;
use serde_json::Value as Json;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use crate::StoreError;
use crate::migrate::{self, migrate};
use crate::sql::connect;
use crate::statements::Dialect;

mod access;

pub use access::{Token, User};

/// One component written or deleted, by whom: a version's authors are read from these.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub kind: Kind,
    pub name: String,
    pub by: String,
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StoredComponent {
    pub component: Component,
    pub revision: i64,
    pub updated_by: String,
    pub updated_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelInfo {
    pub name: String,
    pub revision: i64,
    pub updated_by: String,
    pub updated_at: Timestamp,
}

/// What an edit expects to find, for optimistic concurrency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Whatever is there (last writer wins).
    Any,
    /// Nothing: a create must not overwrite someone else's component.
    Absent,
    /// The component at this revision: anyone else's change in between is a conflict.
    Revision(i64),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Version {
    pub channel: String,
    pub number: i64,
    pub yaml: String,
    pub hash: String,
    pub author: String,
    pub created_at: Timestamp,
    pub note: String,
    /// The validation report at snapshot time (warnings, counts).
    pub report: Json,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub name: String,
    pub production: bool,
    /// Gate settings (see the server's `gates`); JSON so new gates need no migration.
    pub gates: Json,
    /// Touchpoints may call its runtimes without a token.
    pub open: bool,
    /// Bumped on every activation in the group: runtimes wait for it to change.
    pub generation: i64,
    /// The group's own data source for profile tables (staging on test data); `None`
    /// shares the default one.
    pub data: Option<String>,
    /// Where the group's runtimes keep contact and response history, for reports.
    pub history: Option<String>,
    /// The origins whose pages may call the group's runtimes from a browser (CORS); `*`
    /// allows any.
    pub cors_origins: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Activation {
    pub group: String,
    pub channel: String,
    pub version: i64,
    pub by: String,
    pub at: Timestamp,
    /// `deploy` or `rollback`.
    pub action: String,
    /// An administrator's reason for overriding gates.
    pub reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Review {
    pub reviewer: String,
    pub approved: bool,
    pub comment: String,
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TestResult {
    pub group: String,
    /// `scenarios` or `loadtest`.
    pub kind: String,
    pub passed: bool,
    pub summary: Json,
    pub by: String,
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Instance {
    pub group: String,
    pub instance: String,
    pub address: String,
    /// What the instance reported it runs: channel -> version, hash.
    pub running: Json,
    /// Its throughput and latency as it last reported them.
    pub stats: Json,
    pub seen_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownName {
    pub channel: String,
    /// `interaction_point`, `event` or `channel`.
    pub kind: String,
    pub name: String,
    pub calls: i64,
    pub last_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
}

pub struct ControlStore {
    pool: AnyPool,
    dialect: Dialect,
}

fn corrupt(what: &str) -> impl Fn(serde_json::Error) -> StoreError + '_ {
    move |e| StoreError::Corrupt(format!("{what}: {e}"))
}

fn ts(row: &AnyRow, column: &str) -> Result<Timestamp, sqlx::Error> {
    Ok(Timestamp(row.try_get(column)?))
}

fn stored_component(row: &AnyRow) -> Result<StoredComponent, StoreError> {
    let kind: String = row.try_get("kind")?;
    let body: String = row.try_get("body")?;
    Ok(StoredComponent {
        component: Component {
            kind: Kind::from_name(&kind)
                .ok_or_else(|| StoreError::Corrupt(format!("component kind '{kind}'")))?,
            name: row.try_get("name")?,
            body: serde_json::from_str(&body).map_err(corrupt("component body"))?,
        },
        revision: row.try_get("revision")?,
        updated_by: row.try_get("updated_by")?,
        updated_at: ts(row, "updated_at")?,
    })
}

fn version(row: &AnyRow) -> Result<Version, StoreError> {
    let report: String = row.try_get("report")?;
    Ok(Version {
        channel: row.try_get("channel")?,
        number: row.try_get("number")?,
        yaml: row.try_get("yaml")?,
        hash: row.try_get("hash")?,
        author: row.try_get("author")?,
        created_at: ts(row, "created_at")?,
        note: row.try_get("note")?,
        report: serde_json::from_str(&report).map_err(corrupt("version report"))?,
    })
}

fn group(row: &AnyRow) -> Result<Group, StoreError> {
    let gates: String = row.try_get("gates")?;
    Ok(Group {
        name: row.try_get("name")?,
        production: row.try_get::<i64, _>("production")? != 0,
        gates: serde_json::from_str(&gates).map_err(corrupt("group gates"))?,
        open: row.try_get::<i64, _>("open")? != 0,
        generation: row.try_get("generation")?,
        data: row.try_get("data")?,
        history: row.try_get("history")?,
        cors_origins: row
            .try_get::<String, _>("cors_origins")?
            .lines()
            .map(str::to_string)
            .collect(),
    })
}

fn activation(row: &AnyRow) -> Result<Activation, StoreError> {
    Ok(Activation {
        group: row.try_get("grp")?,
        channel: row.try_get("channel")?,
        version: row.try_get("version")?,
        by: row.try_get("by_user")?,
        at: ts(row, "at")?,
        action: row.try_get("action")?,
        reason: row.try_get("reason")?,
    })
}

impl ControlStore {
    /// Opens (and creates) the repository, with the default server groups: `staging`, and
    /// `production` with its gates.
    pub async fn open(url: &str, default_gates: &Json) -> Result<ControlStore, StoreError> {
        let (pool, dialect) = connect(url).await?;
        migrate(&pool, dialect, "control", migrate::CONTROL).await?;
        let store = ControlStore { pool, dialect };
        store
            .ensure_group("staging", false, &Json::Object(Default::default()))
            .await?;
        store
            .ensure_group("production", true, default_gates)
            .await?;
        Ok(store)
    }

    /// A transaction that writes. On SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`): one that read first and then wrote would fail at once with SQLITE_BUSY if
    /// another connection (a runtime's heartbeat, a table import) committed in between,
    /// rather than wait its turn.
    async fn write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        Ok(match self.dialect {
            Dialect::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Dialect::Postgres => self.pool.begin().await?,
        })
    }

    // ---- the design ----

    pub async fn channels(&self) -> Result<Vec<ChannelInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, revision, updated_by, updated_at FROM kc_channels ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ChannelInfo {
                    name: row.try_get("name")?,
                    revision: row.try_get("revision")?,
                    updated_by: row.try_get("updated_by")?,
                    updated_at: ts(row, "updated_at")?,
                })
            })
            .collect()
    }

    pub async fn channel(&self, name: &str) -> Result<Option<ChannelInfo>, StoreError> {
        Ok(self.channels().await?.into_iter().find(|c| c.name == name))
    }

    /// The channel's components in file order.
    pub async fn components(&self, channel: &str) -> Result<Vec<StoredComponent>, StoreError> {
        let rows = sqlx::query(
            "SELECT kind, name, body, revision, updated_by, updated_at FROM kc_components \
             WHERE channel = $1 ORDER BY position, name",
        )
        .bind(channel)
        .fetch_all(&self.pool)
        .await?;
        let mut components = rows
            .iter()
            .map(stored_component)
            .collect::<Result<Vec<_>, _>>()?;
        components.sort_by_key(|c| c.component.kind);
        Ok(components)
    }

    /// Bumps the channel's revision (creating the channel), inside `tx`: the row lock
    /// serialises concurrent edits of one channel.
    async fn bump(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        channel: &str,
        author: &str,
        at: Timestamp,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO kc_channels (name, revision, updated_by, updated_at) VALUES ($1, 1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET revision = kc_channels.revision + 1, \
             updated_by = excluded.updated_by, updated_at = excluded.updated_at RETURNING revision",
        )
        .bind(channel)
        .bind(author)
        .bind(at.0)
        .fetch_one(&mut **tx)
        .await?;
        Ok(row.try_get("revision")?)
    }

    /// Writes one component if it is as `expect`ed; returns its new revision, or
    /// [`StoreError::Conflict`] with the revision someone else wrote.
    pub async fn put_component(
        &self,
        channel: &str,
        component: &Component,
        expect: Expect,
        author: &str,
        at: Timestamp,
    ) -> Result<i64, StoreError> {
        let mut tx = self.write().await?;
        let revision = Self::bump(&mut tx, channel, author, at).await?;
        let current = Self::current_revision(&mut tx, channel, component).await?;
        check_expect(expect, current, &component.path())?;
        let body = component.body.to_string();
        if current.is_some() {
            sqlx::query(
                "UPDATE kc_components SET body = $1, revision = $2, updated_by = $3, updated_at = $4 \
                 WHERE channel = $5 AND kind = $6 AND name = $7",
            )
            .bind(&body)
            .bind(revision)
            .bind(author)
            .bind(at.0)
            .bind(channel)
            .bind(component.kind.name())
            .bind(&component.name)
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query(
                "INSERT INTO kc_components (channel, kind, name, body, revision, position, updated_by, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $5 * 100000, $6, $7)",
            )
            .bind(channel)
            .bind(component.kind.name())
            .bind(&component.name)
            .bind(&body)
            .bind(revision)
            .bind(author)
            .bind(at.0)
            .execute(&mut *tx)
            .await?;
        }
        Self::record_change(
            &mut tx,
            channel,
            component.kind,
            &component.name,
            author,
            at,
        )
        .await?;
        tx.commit().await?;
        Ok(revision)
    }

    async fn record_change(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        channel: &str,
        kind: Kind,
        name: &str,
        by: &str,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO kc_changes (channel, kind, name, by_user, at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(channel)
        .bind(kind.name())
        .bind(name)
        .bind(by)
        .bind(at.0)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// The changes to `channel`'s components from `since` (inclusive) on, oldest first.
    pub async fn changes(
        &self,
        channel: &str,
        since: Timestamp,
    ) -> Result<Vec<Change>, StoreError> {
        let rows = sqlx::query(
            "SELECT kind, name, by_user, at FROM kc_changes WHERE channel = $1 AND at >= $2 ORDER BY id",
        )
        .bind(channel)
        .bind(since.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let kind: String = row.try_get("kind")?;
                Ok(Change {
                    kind: Kind::from_name(&kind)
                        .ok_or_else(|| StoreError::Corrupt(format!("component kind '{kind}'")))?,
                    name: row.try_get("name")?,
                    by: row.try_get("by_user")?,
                    at: ts(row, "at")?,
                })
            })
            .collect()
    }

    async fn current_revision(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        channel: &str,
        component: &Component,
    ) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query(
            "SELECT revision FROM kc_components WHERE channel = $1 AND kind = $2 AND name = $3",
        )
        .bind(channel)
        .bind(component.kind.name())
        .bind(&component.name)
        .fetch_optional(&mut **tx)
        .await?
        .map(|row| row.try_get::<i64, _>("revision"))
        .transpose()?)
    }

    /// Deletes one component if it is as `expect`ed.
    pub async fn delete_component(
        &self,
        channel: &str,
        kind: Kind,
        name: &str,
        expect: Expect,
        author: &str,
        at: Timestamp,
    ) -> Result<i64, StoreError> {
        let component = Component {
            kind,
            name: name.to_string(),
            body: Json::Null,
        };
        let mut tx = self.write().await?;
        let revision = Self::bump(&mut tx, channel, author, at).await?;
        let current = Self::current_revision(&mut tx, channel, &component).await?;
        if current.is_none() {
            return Err(StoreError::NotFound(component.path()));
        }
        check_expect(expect, current, &component.path())?;
        sqlx::query("DELETE FROM kc_components WHERE channel = $1 AND kind = $2 AND name = $3")
            .bind(channel)
            .bind(kind.name())
            .bind(name)
            .execute(&mut *tx)
            .await?;
        Self::record_change(&mut tx, channel, kind, name, author, at).await?;
        tx.commit().await?;
        Ok(revision)
    }

    /// Replaces the whole design of a channel (a channel file applied) as one revision:
    /// components whose body is unchanged keep their revision, so edits in flight on them
    /// still succeed. Returns the new channel revision.
    pub async fn replace_channel(
        &self,
        channel: &str,
        components: &[Component],
        author: &str,
        at: Timestamp,
    ) -> Result<i64, StoreError> {
        let before: Vec<StoredComponent> = self.components(channel).await?;
        let mut tx = self.write().await?;
        let revision = Self::bump(&mut tx, channel, author, at).await?;
        sqlx::query("DELETE FROM kc_components WHERE channel = $1")
            .bind(channel)
            .execute(&mut *tx)
            .await?;
        for (position, component) in components.iter().enumerate() {
            let kept = before.iter().find(|s| {
                s.component.kind == component.kind
                    && s.component.name == component.name
                    && s.component.body == component.body
            });
            let (rev, by, when) = match kept {
                Some(s) => (s.revision, s.updated_by.as_str(), s.updated_at),
                None => {
                    Self::record_change(
                        &mut tx,
                        channel,
                        component.kind,
                        &component.name,
                        author,
                        at,
                    )
                    .await?;
                    (revision, author, at)
                }
            };
            sqlx::query(
                "INSERT INTO kc_components (channel, kind, name, body, revision, position, updated_by, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(channel)
            .bind(component.kind.name())
            .bind(&component.name)
            .bind(component.body.to_string())
            .bind(rev)
            .bind(position as i64)
            .bind(by)
            .bind(when.0)
            .execute(&mut *tx)
            .await?;
        }
        for gone in before.iter().filter(|s| {
            !components
                .iter()
                .any(|c| c.kind == s.component.kind && c.name == s.component.name)
        }) {
            Self::record_change(
                &mut tx,
                channel,
                gone.component.kind,
                &gone.component.name,
                author,
                at,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(revision)
    }

    // ---- versions ----

    /// Snapshots a version; its number is one more than the channel's last.
    pub async fn create_version(&self, v: &Version) -> Result<i64, StoreError> {
        let mut tx = self.write().await?;
        let row = sqlx::query(
            "SELECT COALESCE(MAX(number), 0) AS last FROM kc_versions WHERE channel = $1",
        )
        .bind(&v.channel)
        .fetch_one(&mut *tx)
        .await?;
        let number = row.try_get::<i64, _>("last")? + 1;
        sqlx::query(
            "INSERT INTO kc_versions (channel, number, yaml, hash, author, created_at, note, report) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&v.channel)
        .bind(number)
        .bind(&v.yaml)
        .bind(&v.hash)
        .bind(&v.author)
        .bind(v.created_at.0)
        .bind(&v.note)
        .bind(v.report.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(number)
    }

    pub async fn versions(&self, channel: &str) -> Result<Vec<Version>, StoreError> {
        sqlx::query("SELECT * FROM kc_versions WHERE channel = $1 ORDER BY number")
            .bind(channel)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(version)
            .collect()
    }

    pub async fn version(&self, channel: &str, number: i64) -> Result<Option<Version>, StoreError> {
        sqlx::query("SELECT * FROM kc_versions WHERE channel = $1 AND number = $2")
            .bind(channel)
            .bind(number)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(version)
            .transpose()
    }

    // ---- server groups ----

    /// Creates a group unless it exists; a production group starts closed, any other open.
    pub async fn ensure_group(
        &self,
        name: &str,
        production: bool,
        gates: &Json,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO kc_groups (name, production, gates, generation, open) VALUES ($1, $2, $3, 0, $4) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(i64::from(production))
        .bind(gates.to_string())
        .bind(i64::from(!production))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Creates or changes a group; its runtimes are told to fetch again.
    pub async fn put_group(&self, group: &Group) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO kc_groups (name, production, gates, generation, data, history, open, cors_origins) \
             VALUES ($1, $2, $3, 1, $4, $5, $6, $7) \
             ON CONFLICT (name) DO UPDATE SET production = excluded.production, gates = excluded.gates, \
             data = excluded.data, history = excluded.history, open = excluded.open, \
             cors_origins = excluded.cors_origins, generation = kc_groups.generation + 1",
        )
        .bind(&group.name)
        .bind(i64::from(group.production))
        .bind(group.gates.to_string())
        .bind(group.data.as_deref())
        .bind(group.history.as_deref())
        .bind(i64::from(group.open))
        .bind(group.cors_origins.join("\n"))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn groups(&self) -> Result<Vec<Group>, StoreError> {
        sqlx::query("SELECT * FROM kc_groups ORDER BY production, name")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(group)
            .collect()
    }

    pub async fn group(&self, name: &str) -> Result<Option<Group>, StoreError> {
        sqlx::query("SELECT * FROM kc_groups WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(group)
            .transpose()
    }

    /// Makes `version` the one `group` runs for its channel, and records it.
    pub async fn activate(&self, a: &Activation) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query("UPDATE kc_groups SET generation = generation + 1 WHERE name = $1")
            .bind(&a.group)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO kc_active (grp, channel, version) VALUES ($1, $2, $3) \
             ON CONFLICT (grp, channel) DO UPDATE SET version = excluded.version",
        )
        .bind(&a.group)
        .bind(&a.channel)
        .bind(a.version)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO kc_activations (grp, channel, version, by_user, at, action, reason) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&a.group)
        .bind(&a.channel)
        .bind(a.version)
        .bind(&a.by)
        .bind(a.at.0)
        .bind(&a.action)
        .bind(a.reason.as_deref())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Tells every group's runtimes to fetch again (touchpoint tokens changed).
    pub async fn touch_groups(&self) -> Result<(), StoreError> {
        sqlx::query("UPDATE kc_groups SET generation = generation + 1")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// What a group runs: (channel, version) pairs.
    pub async fn active(&self, group: &str) -> Result<Vec<(String, i64)>, StoreError> {
        let rows =
            sqlx::query("SELECT channel, version FROM kc_active WHERE grp = $1 ORDER BY channel")
                .bind(group)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("channel")?, r.try_get("version")?)))
            .collect()
    }

    /// Every activation of a channel, oldest first (in one group, or all).
    pub async fn activations(
        &self,
        channel: &str,
        group: Option<&str>,
    ) -> Result<Vec<Activation>, StoreError> {
        let rows = match group {
            Some(g) => {
                sqlx::query(
                    "SELECT * FROM kc_activations WHERE channel = $1 AND grp = $2 ORDER BY id",
                )
                .bind(channel)
                .bind(g)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query("SELECT * FROM kc_activations WHERE channel = $1 ORDER BY id")
                    .bind(channel)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(activation).collect()
    }

    // ---- reviews and test results ----

    pub async fn add_review(
        &self,
        channel: &str,
        version: i64,
        review: &Review,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO kc_reviews (channel, version, reviewer, approved, comment, at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(channel)
        .bind(version)
        .bind(&review.reviewer)
        .bind(i64::from(review.approved))
        .bind(&review.comment)
        .bind(review.at.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn reviews(&self, channel: &str, version: i64) -> Result<Vec<Review>, StoreError> {
        let rows = sqlx::query(
            "SELECT reviewer, approved, comment, at FROM kc_reviews WHERE channel = $1 AND version = $2 ORDER BY id",
        )
        .bind(channel)
        .bind(version)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Review {
                    reviewer: r.try_get("reviewer")?,
                    approved: r.try_get::<i64, _>("approved")? != 0,
                    comment: r.try_get("comment")?,
                    at: ts(r, "at")?,
                })
            })
            .collect()
    }

    pub async fn add_result(
        &self,
        channel: &str,
        version: i64,
        result: &TestResult,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO kc_results (channel, version, grp, kind, passed, summary, by_user, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(channel)
        .bind(version)
        .bind(&result.group)
        .bind(&result.kind)
        .bind(i64::from(result.passed))
        .bind(result.summary.to_string())
        .bind(&result.by)
        .bind(result.at.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn results(
        &self,
        channel: &str,
        version: i64,
    ) -> Result<Vec<TestResult>, StoreError> {
        let rows = sqlx::query(
            "SELECT grp, kind, passed, summary, by_user, at FROM kc_results WHERE channel = $1 AND version = $2 ORDER BY id",
        )
        .bind(channel)
        .bind(version)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let summary: String = r.try_get("summary")?;
                Ok(TestResult {
                    group: r.try_get("grp")?,
                    kind: r.try_get("kind")?,
                    passed: r.try_get::<i64, _>("passed")? != 0,
                    summary: serde_json::from_str(&summary).map_err(corrupt("test summary"))?,
                    by: r.try_get("by_user")?,
                    at: ts(r, "at")?,
                })
            })
            .collect()
    }

    // ---- runtime instances and the names they could not serve ----

    pub async fn report_instance(&self, instance: &Instance) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO kc_instances (grp, instance, address, running, stats, seen_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (grp, instance) DO UPDATE SET address = excluded.address, running = excluded.running, \
             stats = excluded.stats, seen_at = excluded.seen_at",
        )
        .bind(&instance.group)
        .bind(&instance.instance)
        .bind(&instance.address)
        .bind(instance.running.to_string())
        .bind(instance.stats.to_string())
        .bind(instance.seen_at.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn instances(&self, group: &str) -> Result<Vec<Instance>, StoreError> {
        let rows = sqlx::query("SELECT * FROM kc_instances WHERE grp = $1 ORDER BY instance")
            .bind(group)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let running: String = r.try_get("running")?;
                let stats: String = r.try_get("stats")?;
                Ok(Instance {
                    group: r.try_get("grp")?,
                    instance: r.try_get("instance")?,
                    address: r.try_get("address")?,
                    running: serde_json::from_str(&running).map_err(corrupt("instance report"))?,
                    stats: serde_json::from_str(&stats).map_err(corrupt("instance stats"))?,
                    seen_at: ts(r, "seen_at")?,
                })
            })
            .collect()
    }

    /// Adds `calls` to the count of a name a touchpoint called that the channel lacks.
    pub async fn report_unknown(&self, name: &UnknownName) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO kc_unknown (channel, kind, name, calls, last_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (channel, kind, name) DO UPDATE SET calls = CASE \
             WHEN kc_unknown.calls > 9223372036854775807 - excluded.calls THEN 9223372036854775807 \
             ELSE kc_unknown.calls + excluded.calls END, last_at = excluded.last_at",
        )
        .bind(&name.channel)
        .bind(&name.kind)
        .bind(&name.name)
        .bind(name.calls)
        .bind(name.last_at.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn unknown_names(&self) -> Result<Vec<UnknownName>, StoreError> {
        let rows = sqlx::query("SELECT * FROM kc_unknown ORDER BY channel, kind, name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(UnknownName {
                    channel: r.try_get("channel")?,
                    kind: r.try_get("kind")?,
                    name: r.try_get("name")?,
                    calls: r.try_get("calls")?,
                    last_at: ts(r, "last_at")?,
                })
            })
            .collect()
    }

    // ---- audit ----

    pub async fn audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO kc_audit (at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(entry.at.0)
        .bind(&entry.actor)
        .bind(&entry.action)
        .bind(&entry.target)
        .bind(&entry.detail)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The newest `limit` entries, newest first.
    pub async fn audit_log(&self, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query("SELECT * FROM kc_audit ORDER BY id DESC LIMIT $1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    at: ts(r, "at")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    target: r.try_get("target")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }
}

fn check_expect(expect: Expect, current: Option<i64>, path: &str) -> Result<(), StoreError> {
    let ok = match expect {
        Expect::Any => true,
        Expect::Absent => current.is_none(),
        Expect::Revision(r) => current == Some(r),
    };
    if ok {
        Ok(())
    } else {
        Err(StoreError::Conflict {
            path: path.to_string(),
            current,
        })
    }
}
