//! The control plane's API under `/api/`: every request and answer as a type. The control
//! plane's service returns these, its routes serialize them, the CLI, the UI and the
//! runtimes following a group read them, and the OpenAPI document is generated from them.
//!
//! Free-form parts stay JSON values and say so: a component's body (shaped like its entry in
//! a channel file), gate settings, a version's validation report, a test result's summary.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as J};
use utoipa::{IntoParams, ToSchema};

// ---- users and tokens ----

/// A permission set (one user may hold several).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Edits channel components.
    Designer,
    /// Server groups, touchpoint tokens, users, deployments.
    Administrator,
    /// Profile, dimension and history tables.
    DataAdministrator,
    /// Reviews test results, approves or rejects.
    Reviewer,
    /// Marks approved versions for production (deploys to production groups).
    Manager,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Designer,
        Role::Administrator,
        Role::DataAdministrator,
        Role::Reviewer,
        Role::Manager,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Role::Designer => "designer",
            Role::Administrator => "administrator",
            Role::DataAdministrator => "data_administrator",
            Role::Reviewer => "reviewer",
            Role::Manager => "manager",
        }
    }

    pub fn from_name(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == name)
    }
}

/// What a token is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// For a touchpoint calling its channels' runtimes.
    Touchpoint,
    /// For the runtimes of a server group, following the control plane.
    Runtime,
    /// A user's login (issued by `POST /api/login`, not by `POST /api/tokens`).
    User,
}

/// What `POST /api/tokens` issues: user tokens come from logging in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IssuedKind {
    Touchpoint,
    Runtime,
}

impl From<IssuedKind> for TokenKind {
    fn from(kind: IssuedKind) -> TokenKind {
        match kind {
            IssuedKind::Touchpoint => TokenKind::Touchpoint,
            IssuedKind::Runtime => TokenKind::Runtime,
        }
    }
}

impl TokenKind {
    pub const ALL: [TokenKind; 3] = [TokenKind::Touchpoint, TokenKind::Runtime, TokenKind::User];

    pub fn name(self) -> &'static str {
        match self {
            TokenKind::Touchpoint => "touchpoint",
            TokenKind::Runtime => "runtime",
            TokenKind::User => "user",
        }
    }
}

/// `POST /api/login`; also the fields of the UI's login form.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub user: String,
    pub password: String,
}

/// A user token, shown this once.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct LoggedIn {
    pub token: String,
    pub user: String,
    pub roles: Vec<Role>,
}

/// `GET /api/me`: who the token belongs to.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Me {
    pub user: String,
    pub roles: Vec<Role>,
}

/// A user and their roles.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    pub name: String,
    pub roles: Vec<Role>,
    /// A disabled user cannot log in; their tokens were ended.
    #[serde(default)]
    pub disabled: bool,
}

/// `PUT /api/users/{name}/disabled`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct DisabledRequest {
    pub disabled: bool,
}

/// `POST /api/users`: creates a user, or replaces one's password and roles.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct NewUser {
    #[schema(min_length = 1, pattern = "\\S")]
    pub name: String,
    #[schema(min_length = 8)]
    pub password: String,
    pub roles: Vec<Role>,
}

/// A token, without its secret.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenView {
    /// What `DELETE /api/tokens/{id}` revokes it by.
    pub id: String,
    pub kind: TokenKind,
    /// The channels (touchpoint, comma-separated), server group (runtime) or user it is for.
    #[serde(rename = "for")]
    pub subject: String,
    pub label: String,
    pub created_by: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339; none: it does not expire.
    pub expires_at: Option<String>,
}

/// `POST /api/tokens`; also the fields of the UI's form.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct NewToken {
    pub kind: IssuedKind,
    /// The channels a touchpoint token is for, comma-separated, or a runtime token's group.
    #[serde(rename = "for")]
    #[schema(min_length = 1)]
    pub subject: String,
    #[serde(default)]
    pub label: String,
    /// It stops working this many seconds from now; none: never.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 315_360_000)]
    pub expires_in_seconds: Option<u64>,
}

/// A token just issued: its secret is shown this once.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct IssuedToken {
    pub token: String,
    pub id: String,
    pub kind: TokenKind,
    #[serde(rename = "for")]
    pub subject: String,
    /// RFC 3339; none: it does not expire.
    pub expires_at: Option<String>,
}

// ---- channels and components ----

/// A channel of the design repository.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ChannelSummary {
    pub name: String,
    /// Bumped by every edit of any of its components.
    pub revision: i64,
    pub updated_by: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// `POST /api/channels/apply`: a whole channel file, each of its components a new revision.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ApplyRequest {
    /// The file name errors are reported against.
    #[serde(default = "default_file")]
    pub file: String,
    pub yaml: String,
}

fn default_file() -> String {
    "channel.yaml".into()
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Applied {
    pub channel: String,
    pub revision: i64,
    pub components: usize,
}

/// One component of a channel with its revision.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ComponentView {
    /// settings, audience_levels, zones, offers, segments, flowcharts, rules, events, patterns.
    pub kind: String,
    pub name: String,
    pub revision: i64,
    pub updated_by: String,
    pub updated_at: String,
    /// Shaped like the component's entry in a channel file (a segment's is its expression).
    pub body: J,
}

/// A channel with every component.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ChannelView {
    pub name: String,
    pub revision: i64,
    pub updated_by: String,
    pub updated_at: String,
    pub components: Vec<ComponentView>,
}

/// An error of the design, located in its component.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DesignError {
    /// `kind/name` of the component.
    pub component: String,
    pub line: u32,
    pub column: u32,
    pub message: String,
}

/// `GET /api/channels/{channel}/validate`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Validation {
    pub valid: bool,
    pub errors: Vec<DesignError>,
}

/// A component saved (whatever its errors: a design may be mid-edit); the errors say what
/// blocks a deploy.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ComponentSaved {
    pub revision: i64,
    pub errors: Vec<DesignError>,
}

/// A component deleted: the channel's new revision.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ComponentDeleted {
    pub revision: i64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// A version's file; without it, the current design.
    pub version: Option<i64>,
}

// ---- versions, reviews, test results ----

/// Where a version went, and how.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ActivationView {
    pub group: String,
    pub by: String,
    pub at: String,
    /// `deploy` or `rollback`.
    pub action: String,
    /// An administrator's reason for overriding failed gates.
    pub reason: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ReviewView {
    pub reviewer: String,
    /// `approved` or `rejected`.
    pub decision: String,
    pub comment: String,
    pub at: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ResultView {
    pub group: String,
    /// `scenarios` or `loadtest`.
    pub kind: String,
    pub passed: bool,
    pub summary: Map<String, J>,
    pub by: String,
    pub at: String,
}

/// A numbered, immutable version of a channel, with where it ran, its reviews and results.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct VersionView {
    pub channel: String,
    pub number: i64,
    pub hash: String,
    pub author: String,
    pub created_at: String,
    pub note: String,
    /// The validation report: errors and the count of each kind of component.
    #[schema(value_type = Object)]
    pub report: J,
    /// The groups running it now.
    pub active_in: Vec<String>,
    pub deployments: Vec<ActivationView>,
    pub reviews: Vec<ReviewView>,
    pub results: Vec<ResultView>,
    /// The channel file, when one version is asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yaml: Option<String>,
}

/// `POST /api/channels/{channel}/versions`: snapshots the design.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct NoteRequest {
    #[serde(default)]
    pub note: String,
}

/// A reviewer's decision on a version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approve,
    Reject,
}

impl Decision {
    pub fn name(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Reject => "reject",
        }
    }
}

/// `POST .../versions/{number}/reviews`; also the fields of the UI's form.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ReviewRequest {
    pub decision: Decision,
    #[serde(default)]
    pub comment: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Reviewed {
    pub channel: String,
    pub version: i64,
    pub decision: Decision,
}

#[derive(Clone, Debug, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DiffQuery {
    /// A version number, or `design`.
    #[param(pattern = "^(design|[0-9]{1,18})$")]
    pub from: String,
    /// A version number, or `design` (the default).
    #[serde(default = "design")]
    #[param(pattern = "^(design|[0-9]{1,18})$")]
    pub to: String,
}

fn design() -> String {
    "design".into()
}

/// How one component differs.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ChangeView {
    /// `kind/name`.
    pub path: String,
    /// `added`, `removed` or `changed`.
    pub change: String,
    /// The body's lines, each prefixed `+ `, `- ` or two spaces.
    pub lines: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Diff {
    pub from: String,
    pub to: String,
    pub changes: Vec<ChangeView>,
}

// ---- reports over a version ----

#[derive(Clone, Debug, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImpactQuery {
    /// The group whose active version is compared (default `production`), or a version
    /// number.
    pub against: Option<String>,
    /// Offers asked for at every interaction point (default 3).
    #[param(minimum = 1, maximum = 100)]
    pub count: Option<i64>,
    /// The audience level whose profile table is the population (default: the channel's).
    pub level: Option<String>,
    /// At most this many rows of each table (default 100,000).
    #[param(minimum = 1, maximum = 1_000_000)]
    pub limit: Option<i64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SegmentsQuery {
    /// The audience level whose profile table is the population (default: the channel's).
    pub level: Option<String>,
    /// At most this many rows of each table (default 100,000).
    #[param(minimum = 1, maximum = 1_000_000)]
    pub limit: Option<i64>,
}

/// A name counted in the current and the candidate version.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ImpactRow {
    pub name: String,
    pub current: u64,
    pub candidate: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Against {
    pub name: String,
    pub version: i64,
}

/// Which offers gain or lose how many visitors, and which segments change size, if this
/// version replaced the one compared with.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ImpactReport {
    pub channel: String,
    pub version: i64,
    pub against: Against,
    pub level: String,
    pub table: String,
    pub visitors: u64,
    pub offers: Vec<ImpactRow>,
    pub segments: Vec<ImpactRow>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SegmentCount {
    pub name: String,
    pub visitors: u64,
}

/// A flowchart test run: segment sizes and path counts over the population.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SegmentsReport {
    pub channel: String,
    pub version: i64,
    pub level: String,
    pub table: String,
    pub visitors: u64,
    pub rejected: u64,
    pub segments: Vec<SegmentCount>,
    pub branches: Vec<SegmentCount>,
}

// ---- server groups and deployments ----

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ActiveVersion {
    pub channel: String,
    pub version: i64,
}

/// A version a runtime serves.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunningVersion {
    #[schema(maximum = 4_294_967_295_f64)]
    pub version: u32,
    /// The channel's content hash (absent from reports of a runtime that did not know it).
    #[serde(default)]
    pub hash: String,
}

/// A runtime's throughput and latency, as it last reported them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InstanceStats {
    /// Since its report before.
    #[serde(default)]
    pub requests_per_second: f64,
    #[serde(default)]
    #[schema(format = Int64, minimum = 0)]
    pub requests_total: u64,
    /// Since it started; none before its first get offers.
    #[serde(default)]
    pub get_offers_p50_ms: Option<f64>,
    #[serde(default)]
    pub get_offers_p99_ms: Option<f64>,
    /// Unknown when its shared session store cannot be reached.
    #[serde(default)]
    #[schema(maximum = 4_294_967_295_f64)]
    pub sessions_live: Option<u32>,
    /// Its sessions are the group's, shared in Redis: `sessions_live` counts the group's.
    #[serde(default)]
    pub sessions_shared: bool,
}

/// A group's instances taken together: those heard from in the last
/// [`InstanceView::LIVE_SECONDS`], summed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GroupTotals {
    pub live_instances: u32,
    pub requests_per_second: f64,
    #[schema(format = Int64, minimum = 0)]
    pub requests_total: u64,
    /// Unknown when an instance could not count its own; counted once for sessions shared
    /// by the group.
    #[schema(maximum = 4_294_967_295_f64)]
    pub sessions_live: Option<u32>,
}

impl GroupTotals {
    pub fn of(instances: &[InstanceView]) -> GroupTotals {
        let live: Vec<&InstanceStats> = instances
            .iter()
            .filter(|i| i.is_live())
            .map(|i| &i.stats)
            .collect();
        let own: Option<u32> = live
            .iter()
            .filter(|s| !s.sessions_shared)
            .try_fold(0u32, |sum, s| Some(sum.saturating_add(s.sessions_live?)));
        // Every instance sharing sessions reports the group's count: the freshest is one.
        let shared = live
            .iter()
            .filter(|s| s.sessions_shared)
            .filter_map(|s| s.sessions_live)
            .max();
        GroupTotals {
            live_instances: live.len() as u32,
            requests_per_second: live.iter().map(|s| s.requests_per_second).sum(),
            requests_total: live.iter().map(|s| s.requests_total).sum(),
            sessions_live: own.map(|n| n.saturating_add(shared.unwrap_or(0))),
        }
    }
}

/// A runtime of a group, as it last reported.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct InstanceView {
    pub instance: String,
    pub address: String,
    /// What it serves, by channel.
    pub running: BTreeMap<String, RunningVersion>,
    pub stats: InstanceStats,
    pub seen_at: String,
    pub seconds_since_seen: i64,
}

/// What a version must have before it may go to a group. Absent fields take the value
/// shown; a production group starts with [`Gates::production`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Gates {
    /// It has been active on a staging group.
    #[serde(default)]
    pub staged: bool,
    /// Scenario tests the control plane ran against a staging group passed.
    #[serde(default)]
    pub scenarios: bool,
    /// A load test the control plane ran against a staging group met its thresholds.
    #[serde(default)]
    pub loadtest: bool,
    /// Approvals needed, each from a different user who holds `review_role` and authored
    /// none of the version's changes.
    #[serde(default)]
    #[schema(maximum = 100)]
    pub approvals: u32,
    /// Who may approve for this group: `reviewer` or `manager`.
    #[serde(default = "Gates::default_review_role")]
    pub review_role: Role,
    /// The shortest load test that counts for `loadtest`, in seconds.
    #[serde(default = "Gates::default_loadtest_seconds")]
    #[schema(maximum = 3600)]
    pub min_loadtest_seconds: u32,
}

impl Gates {
    fn default_review_role() -> Role {
        Role::Reviewer
    }

    fn default_loadtest_seconds() -> u32 {
        10
    }

    /// No gate: what a staging group checks.
    pub fn none() -> Gates {
        Gates {
            staged: false,
            scenarios: false,
            loadtest: false,
            approvals: 0,
            review_role: Gates::default_review_role(),
            min_loadtest_seconds: Gates::default_loadtest_seconds(),
        }
    }

    /// Every gate and one approval: what a production group starts with.
    pub fn production() -> Gates {
        Gates {
            staged: true,
            scenarios: true,
            loadtest: true,
            approvals: 1,
            ..Gates::none()
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct GroupView {
    pub name: String,
    pub production: bool,
    pub gates: Gates,
    /// Touchpoints may call without a token.
    pub open: bool,
    /// The group's own data source, or null for the default one.
    pub data: Option<String>,
    /// Where its runtimes keep history, for reports.
    pub history: Option<String>,
    /// The origins whose pages may call its runtimes from a browser (CORS); `*` is any.
    pub cors_origins: Vec<String>,
    pub active: Vec<ActiveVersion>,
    pub instances: Vec<InstanceView>,
    /// Its live instances summed.
    pub totals: GroupTotals,
}

impl InstanceView {
    /// Runtimes report at least every 5 s while they can reach their control plane; one not
    /// heard from for longer than this is taken for down.
    pub const LIVE_SECONDS: i64 = 30;

    pub fn is_live(&self) -> bool {
        self.seconds_since_seen <= InstanceView::LIVE_SECONDS
    }

    /// Where to call it: its address, which names its scheme (older runtimes reported
    /// `host:port` only, meaning http).
    pub fn url(&self) -> String {
        if self.address.contains("://") {
            self.address.clone()
        } else {
            format!("http://{}", self.address)
        }
    }
}

impl GroupView {
    /// The URL of the instance that reported last.
    pub fn freshest_url(&self) -> Option<String> {
        self.instances
            .iter()
            .min_by_key(|i| i.seconds_since_seen)
            .map(InstanceView::url)
    }
}

/// `PUT /api/groups/{group}`: creates a group or changes one; what is absent is kept.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct GroupRequest {
    #[serde(default)]
    pub production: Option<bool>,
    /// Absent keeps them (a new production group gets [`Gates::production`]).
    #[serde(default)]
    pub gates: Option<Gates>,
    /// Whether touchpoints may call without a token; absent keeps it (a new group is open
    /// unless it is a production group).
    #[serde(default)]
    pub open: Option<bool>,
    /// The group's own data source (`sqlite://...`, `postgres://...`), or null to share the
    /// default one.
    #[serde(default)]
    pub data: Option<String>,
    /// Where its runtimes keep history (for reports); absent keeps it, "" forgets it.
    #[serde(default)]
    pub history: Option<String>,
    /// The origins whose pages may call its runtimes from a browser (CORS):
    /// `https://shop.example.com`, or `*` for any; absent keeps them, `[]` allows none.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub cors_origins: Option<Vec<String>>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct GroupSaved {
    pub name: String,
    pub production: bool,
    pub gates: Gates,
    pub open: bool,
    pub data: Option<String>,
    pub history: Option<String>,
    pub cors_origins: Vec<String>,
}

/// `POST /api/groups/{group}/deployments`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct DeployRequest {
    pub channel: String,
    /// Without it, the current design is snapshotted as a new version.
    #[serde(default)]
    pub version: Option<i64>,
    #[serde(default)]
    pub note: String,
    /// An administrator deploying past failed gates must say why.
    #[serde(default)]
    pub override_reason: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Deployed {
    pub group: String,
    pub channel: String,
    pub version: i64,
    pub hash: String,
}

/// `POST /api/groups/{group}/rollback`: to `to`, or to the version the group ran before.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct RollbackRequest {
    pub channel: String,
    #[serde(default)]
    pub to: Option<i64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct RolledBack {
    pub group: String,
    pub channel: String,
    pub version: i64,
    pub previous: Option<i64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActiveQuery {
    /// Answer once the group's generation passes this (a long poll).
    #[serde(default)]
    pub after: i64,
    /// Seconds to wait for a change past `after`.
    #[serde(default)]
    #[param(minimum = 0, maximum = 20)]
    pub wait: i64,
}

/// A version a group's runtimes are to serve.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ActiveDeployment {
    pub channel: String,
    pub version: i64,
    pub hash: String,
    /// The channel file.
    pub yaml: String,
}

/// `GET /api/groups/{group}/active`: what a group's runtimes serve.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ActiveAnswer {
    pub group: String,
    /// Bumped by every change of what the group serves.
    pub generation: i64,
    /// The group's own data source, or null for the default one.
    pub data: Option<String>,
    pub deployments: Vec<ActiveDeployment>,
    /// Touchpoints may call without a token.
    pub open: bool,
    /// The touchpoint tokens for the channels served, as digests with what they may call.
    pub touchpoint_tokens: Vec<TouchpointGrant>,
    /// The origins whose pages may call the runtimes from a browser (CORS).
    #[serde(default)]
    pub cors_origins: Vec<String>,
}

/// A touchpoint token as runtimes check it: its digest, its channels, its expiry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TouchpointGrant {
    pub digest: String,
    pub channels: Vec<String>,
    /// Unix time in seconds after which it fails; none: never.
    pub expires_at: Option<i64>,
}

/// Names touchpoints called that a channel lacks, since the last report.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct UnknownReport {
    pub channel: String,
    /// `interaction_point`, `event`, ...
    pub kind: String,
    pub name: String,
    #[schema(format = Int64, minimum = 0)]
    pub calls: u64,
}

/// `POST /api/groups/{group}/instances/{instance}`: a runtime's status report.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Heartbeat {
    /// Where touchpoints reach it.
    pub address: String,
    /// What it serves, by channel.
    #[serde(default)]
    pub running: BTreeMap<String, RunningVersion>,
    #[serde(default)]
    pub unknown: Vec<UnknownReport>,
    #[serde(default)]
    pub stats: InstanceStats,
}

// ---- tables, reports, unknown names, audit ----

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ColumnView {
    pub name: String,
    /// int, double, bool, timestamp or string.
    #[serde(rename = "type")]
    pub ty: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct TableView {
    pub name: String,
    pub columns: Vec<ColumnView>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TablesQuery {
    /// A group with its own data source; the default one otherwise.
    pub group: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// The column rows are found by.
    #[param(min_length = 1)]
    pub key: String,
    /// Into this group's own data source.
    pub group: Option<String>,
    /// Column types instead of inferring them: COLUMN:TYPE,...
    pub schema: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Imported {
    pub table: String,
    pub rows: u64,
    pub key: String,
    pub columns: Vec<ColumnView>,
    pub group: Option<String>,
}

/// What performance rows are per.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PerformanceBy {
    #[default]
    Offer,
    Segment,
    Zone,
    Day,
}

impl PerformanceBy {
    pub fn name(self) -> &'static str {
        match self {
            PerformanceBy::Offer => "offer",
            PerformanceBy::Segment => "segment",
            PerformanceBy::Zone => "zone",
            PerformanceBy::Day => "day",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PerformanceQuery {
    pub group: String,
    /// Per offer (the default), segment, zone or day.
    #[serde(default)]
    pub by: PerformanceBy,
    /// The last this many days (default 30).
    #[serde(default = "thirty")]
    #[param(minimum = 1, maximum = 3660)]
    pub days: i64,
}

fn thirty() -> i64 {
    30
}

/// Contacts, accepts and rejects of one key, and the acceptance rate with its 95% interval
/// (the Beta posterior learning draws from).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct PerformanceRow {
    pub key: String,
    pub contacts: u64,
    pub accepts: u64,
    pub rejects: u64,
    pub rate: f64,
    pub low: f64,
    pub high: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct PerformanceReport {
    pub group: String,
    pub by: PerformanceBy,
    pub days: i64,
    pub rows: Vec<PerformanceRow>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct UnknownNameView {
    pub channel: String,
    pub kind: String,
    pub name: String,
    pub calls: i64,
    pub last_at: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// The newest this many entries (default 100).
    #[serde(default = "hundred")]
    #[param(minimum = 1, maximum = 10_000)]
    pub limit: i64,
}

fn hundred() -> i64 {
    100
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditView {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
}
