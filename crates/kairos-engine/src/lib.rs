//! The Kairos decision engine: a pure, synchronous library. Given a compiled [`Deployment`],
//! a [`Session`], a clock reading and a source of randomness, it decides which offers to show,
//! runs events and patterns, and hands back contact and response records. Profiles, history
//! state and learning statistics come in as plain data; nothing here does I/O.

mod arbitrate;
mod deployment;
mod events;
pub mod inprocess;
pub mod learning;
mod messages;
pub mod random;
pub mod report;
pub mod scenario;
mod segmentation;
mod segments;
mod session;
pub mod simulation;
pub mod synthetic;
pub mod world;

pub use arbitrate::{
    CandidateExplain, Filter, IpExplain, OfferList, OfferRequest, OffersRequest, OffersResponse,
    ServedOffer,
};
pub use deployment::{
    CompileError, DEFAULT_MIN_CONTACTS, DEFAULT_SCORE, Deployment, DimensionTable, Placement,
    ProfileTables,
};
pub use events::{EventResponse, RESPONSE_TYPE_PARAM, TREATMENT_CODE_PARAMS};
pub use messages::{Level, Message, MessageCode};
pub use session::{Ended, ProfileView, Session, SessionSnapshot, Start};

/// A content hash of a channel: its canonical export, hashed. The control plane records it
/// with each version; a runtime compares it to know whether it runs that version already.
pub fn channel_hash(channel: &kairos_model::Channel) -> String {
    format!(
        "{:016x}",
        random::stable_hash(&[&kairos_model::to_yaml(channel)])
    )
}
