//! A flowchart test run: segment sizes and flowchart path counts over a population of
//! visitors, so designers see how a channel splits its audience before deploying it.

use kairos_rules::time::Timestamp;

use crate::deployment::Deployment;
use crate::session::{Session, Start};
use crate::world::{AudienceId, AudienceState, Profile};

#[derive(Clone, Debug, PartialEq)]
pub struct SegmentCounts {
    pub visitors: u64,
    /// Every segment of the deployment with the visitors in it, in deployment order.
    pub segments: Vec<(String, u64)>,
    /// Every flowchart path that ends in a populate step, with the visitors who took it.
    pub branches: Vec<(String, u64)>,
    /// Visitors that could not be started (a bad audience ID).
    pub rejected: u64,
}

pub fn segment_counts(
    dep: &Deployment,
    visitors: impl IntoIterator<Item = (AudienceId, Option<Profile>)>,
    now: Timestamp,
) -> SegmentCounts {
    let mut segments = vec![0u64; dep.segments.len()];
    let mut branches = vec![0u64; dep.branches.len()];
    let (mut total, mut rejected) = (0, 0);
    for (audience, profile) in visitors {
        let start = Start {
            session_id: String::new(),
            audience,
            profile,
            state: AudienceState::default(),
            params: Vec::new(),
            debug: false,
        };
        let Ok((mut session, _)) = Session::start(dep, start, now) else {
            rejected += 1;
            continue;
        };
        total += 1;
        let (member_of, paths) = session.trace_segments(dep, now);
        for s in member_of.iter() {
            segments[s] += 1;
        }
        for b in paths {
            branches[b] += 1;
        }
    }
    SegmentCounts {
        visitors: total,
        segments: dep
            .segments
            .iter()
            .map(|s| s.to_string())
            .zip(segments)
            .collect(),
        branches: dep.branches.iter().cloned().zip(branches).collect(),
        rejected,
    }
}
