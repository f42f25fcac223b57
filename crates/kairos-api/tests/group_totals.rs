//! A group's totals as the control plane shows them: live instances summed, sessions shared
//! in Redis counted once.

use kairos_api::control::{GroupTotals, InstanceStats, InstanceView};

fn instance(
    name: &str,
    seconds_since_seen: i64,
    sessions: Option<u32>,
    shared: bool,
) -> InstanceView {
    InstanceView {
        instance: name.into(),
        address: format!("http://{name}"),
        running: Default::default(),
        stats: InstanceStats {
            requests_per_second: 100.0,
            requests_total: 1000,
            get_offers_p50_ms: None,
            get_offers_p99_ms: None,
            sessions_live: sessions,
            sessions_shared: shared,
        },
        seen_at: String::new(),
        seconds_since_seen,
    }
}

#[test]
fn instances_with_sessions_of_their_own_add_up() {
    let totals = GroupTotals::of(&[
        instance("a", 1, Some(10), false),
        instance("b", 2, Some(5), false),
        instance("gone", 600, Some(99), false),
    ]);
    assert_eq!(
        totals,
        GroupTotals {
            live_instances: 2,
            requests_per_second: 200.0,
            requests_total: 2000,
            sessions_live: Some(15),
        }
    );
}

#[test]
fn sessions_the_group_shares_count_once() {
    let totals = GroupTotals::of(&[
        instance("a", 1, Some(40), true),
        instance("b", 2, Some(41), true),
        instance("c", 3, Some(41), true),
    ]);
    assert_eq!((totals.live_instances, totals.sessions_live), (3, Some(41)));
    let unknown = GroupTotals::of(&[
        instance("a", 1, None, false),
        instance("b", 1, Some(3), false),
    ]);
    assert_eq!(
        unknown.sessions_live, None,
        "an instance that could not count"
    );
}
