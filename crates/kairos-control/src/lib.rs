//! The control plane: the design repository, versions, gates, reviews, deployments, users
//! and tokens, as a typed service ([`ControlPlane`]); the design and deployment API under
//! `/api/` that the CLI and the runtimes use ([`run`], [`router`]); and the design UI under
//! `/ui/`, which calls the same service. Runtimes of a server group long-poll
//! `/api/groups/{group}/active` for what to serve and report their status back.

pub mod auth;
mod flowchart;
mod html;
mod openapi;
mod routes;
mod service;
mod ui;

pub use routes::{router, run};
pub use service::{Caller, ControlPlane, declared_types};
