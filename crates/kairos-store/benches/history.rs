//! Group commits of the SQLite history writer, the cost behind every logged contact event:
//! `cargo bench -p kairos-store --bench history`. Each iteration queues a group of contact
//! events as the runtime logs them (three contact rows and the visitor's audience state per
//! event, the visitor one of 50,000 with stored states) and waits until all are on disk.
//! Criterion reports events per second for groups of 1, 9 (what 32 connections give under
//! contact load) and 32 events. Its times include each commit's sync; for a figure that does
//! not move with the disk or the neighbours, count the writer's instructions per commit:
//! `valgrind --tool=callgrind --toggle-collect='kairos_store::sqlite_writer::commit'` on the
//! bench binary with `--bench --profile-time 3 'group_commit/events/9$'`; once it prints
//! `Benchmarking`, zero the counts of the states stored first (`callgrind_control -z PID`);
//! at the end divide the total by the calls of `pagerWalFrames` (one per commit) that
//! `callgrind_annotate --inclusive=yes` lists.

use std::sync::Arc;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kairos_engine::random::{Random, SplitMix64};
use kairos_engine::world::{
    AudienceState, HistoryRecord, OfferHistory, Origin, ResponseKind, Treatment,
};
use kairos_rules::time::Timestamp;
use kairos_store::{Commit, EncodedState, HistoryStore, StateWrite};

const AUDIENCES: u64 = 50_000;
const CONTACTS_PER_EVENT: usize = 3;
/// 2026-06-15, in nanoseconds: history ids follow record times.
const START: i64 = 1_781_524_800_000_000_000;

/// Makes the contact events of a busy runtime: times that advance, treatment codes that sort
/// by issue time, visitors at random.
struct Events {
    random: SplitMix64,
    now: i64,
}

impl Events {
    /// The contact event of `visitor`'s next visit.
    fn event(&mut self, visitor: u64) -> Event {
        self.now += 50_000;
        let audience: Arc<str> = format!("customer:customer_id={visitor}").into();
        let mut state = AudienceState::default();
        let records = (0..CONTACTS_PER_EVENT)
            .map(|i| {
                let offer = format!("OFFER{}", self.random.next_u64() % 1000);
                let mut history = OfferHistory::default();
                history.record_contact(Timestamp(self.now));
                *state.offers.get_or_insert(&offer) = history;
                HistoryRecord {
                    kind: ResponseKind::Contact,
                    treatment: Treatment {
                        code: format!(
                            "{:012x}{:012x}",
                            self.now / 1_000_000,
                            self.random.next_u64() >> 16
                        )
                        .as_str()
                        .into(),
                        origin: Arc::new(Origin {
                            offer: offer.as_str().into(),
                            category: Some("cards".into()),
                            rule: format!("RULE{}", i * 7).into(),
                            segment: Some(format!("SEG{}", visitor % 200).into()),
                        }),
                        ip: format!("ip{}", visitor % 100).into(),
                        zone: "home".into(),
                        score: 42.5,
                        deployment: 1,
                        session_id: format!("v{visitor}").into(),
                        audience: audience.clone(),
                        issued_at: Timestamp(self.now),
                    },
                    at: Timestamp(self.now),
                    cross_session: false,
                }
            })
            .collect();
        // Replacing what is stored: the merge of concurrent sessions' writes is not measured here.
        let write = StateWrite {
            key: audience.to_string(),
            base: None,
            state: EncodedState::new(&state),
        };
        (records, write)
    }

    /// The events of `size` visitors drawn at random.
    fn group(&mut self, size: usize) -> Vec<Event> {
        (0..size)
            .map(|_| {
                let visitor = self.random.next_u64() % AUDIENCES;
                self.event(visitor)
            })
            .collect()
    }
}

type Event = (Vec<HistoryRecord>, StateWrite);

/// Queues the events and waits for them: one group, as the writer gathers what is queued
/// when it wakes.
async fn commit_group(store: &HistoryStore, group: Vec<Event>) {
    let mut commits: Vec<Commit> = Vec::with_capacity(group.len());
    for (records, state) in group {
        commits.push(store.reserve().await.unwrap().enqueue(records, Some(state)));
    }
    for commit in commits {
        commit.await.unwrap();
    }
}

fn group_commit(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("kairos_history_bench_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("kairos.db").display());
    let store = runtime.block_on(HistoryStore::open(&url)).unwrap();
    let mut events = Events {
        random: SplitMix64(7),
        now: START,
    };
    // Every visitor with a stored state, as after a day of traffic: each event rewrites one
    // row of a table of this size.
    runtime.block_on(async {
        for first in (0..AUDIENCES).step_by(500) {
            let group = (first..first + 500).map(|v| events.event(v)).collect();
            commit_group(&store, group).await;
        }
    });
    let mut group = c.benchmark_group("group_commit");
    for size in [1, 9, 32] {
        group.throughput(Throughput::Elements(size as u64));
        group.bench_with_input(BenchmarkId::new("events", size), &size, |b, &size| {
            b.iter_batched(
                || events.group(size),
                |group| runtime.block_on(commit_group(&store, group)),
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, group_commit);
criterion_main!(benches);
