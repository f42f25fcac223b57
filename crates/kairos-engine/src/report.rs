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

/// Counts each name for the current version (`.0`) or the candidate (`.1`).
fn tally(
    counts: &mut std::collections::BTreeMap<String, (u64, u64)>,
    names: &[String],
    candidate: bool,
) {
    for name in names {
        let entry = counts.entry(name.clone()).or_default();
        if candidate {
            entry.1 += 1;
        } else {
            entry.0 += 1;
        }
    }
}

/// How a candidate version would change what visitors get, against the version serving now.
#[derive(Clone, Debug, PartialEq)]
pub struct Impact {
    pub visitors: u64,
    /// Per offer: visitors served it now, visitors served it by the candidate. Only offers
    /// whose reach changes.
    pub offers: Vec<(String, u64, u64)>,
    /// Per segment: its size now and under the candidate. Only segments that change.
    pub segments: Vec<(String, u64, u64)>,
}

/// Each visitor asks every interaction point for `count` offers under both versions, with the
/// same random draws, so that identical versions show no difference.
pub fn impact(
    current: &Deployment,
    candidate: &Deployment,
    visitors: impl IntoIterator<Item = (AudienceId, Option<Profile>)>,
    count: usize,
    now: Timestamp,
) -> Impact {
    use std::collections::BTreeMap;

    use crate::arbitrate::{OfferRequest, OffersRequest};
    use crate::random::SplitMix64;
    use crate::world::MemoryWorld;

    let world = MemoryWorld::new();
    let mut offers: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut segments: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut total = 0;
    for (n, (audience, profile)) in visitors.into_iter().enumerate() {
        let served = |dep: &Deployment| -> Option<(Vec<String>, Vec<String>)> {
            let start = Start {
                session_id: String::new(),
                audience: audience.clone(),
                profile: profile.clone(),
                state: AudienceState::default(),
                params: Vec::new(),
                debug: false,
            };
            let (mut session, _) = Session::start(dep, start, now).ok()?;
            let requests = dep
                .interaction_points()
                .map(|ip| OfferRequest::new(ip, count))
                .collect();
            let request = OffersRequest {
                requests,
                ..OffersRequest::default()
            };
            let response =
                session.get_offers(dep, &world, &mut SplitMix64(n as u64), &request, now);
            let codes = response
                .offer_lists
                .iter()
                .flat_map(|l| l.offers.iter().map(|o| o.code().to_string()))
                .collect();
            Some((codes, session.segments(dep, now)))
        };
        let (Some(before), Some(after)) = (served(current), served(candidate)) else {
            continue;
        };
        total += 1;
        tally(&mut offers, &before.0, false);
        tally(&mut offers, &after.0, true);
        tally(&mut segments, &before.1, false);
        tally(&mut segments, &after.1, true);
    }
    let changed = |m: BTreeMap<String, (u64, u64)>| {
        m.into_iter()
            .filter(|(_, (a, b))| a != b)
            .map(|(k, (a, b))| (k, a, b))
            .collect()
    };
    Impact {
        visitors: total,
        offers: changed(offers),
        segments: changed(segments),
    }
}
