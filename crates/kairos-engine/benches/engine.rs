//! The engine on the synthetic benchmark channel (1,000 offers, 2,000 rules, 200 segments,
//! 100 IPs, 30% of rules with eligibility): `cargo bench -p kairos-engine --bench engine`.
//! Criterion measures the medians; a plain timed loop after it reports p50/p99 of get offers.

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group};
use kairos_engine::random::SplitMix64;
use kairos_engine::synthetic::{self, Size};
use kairos_engine::world::{AudienceId, AudienceState, MemoryWorld, Stats};
use kairos_engine::{Deployment, OfferRequest, OffersRequest, Session, Start};
use kairos_rules::Value;
use kairos_rules::time::Timestamp;

const NOW: Timestamp = Timestamp(1_781_524_800_000_000_000);
const VISITORS: u64 = 1000;

fn start(dep: &Deployment, id: u64) -> Session {
    let start = Start {
        session_id: format!("s{id}"),
        audience: AudienceId {
            level: "customer".into(),
            fields: vec![("customer_id".into(), Value::Int(id as i64))],
        },
        profile: Some(synthetic::profile(id)),
        state: AudienceState::default(),
        params: vec![("page".into(), Value::from("home"))],
        debug: false,
    };
    Session::start(dep, start, NOW).expect("starts").0
}

fn request(ip: usize) -> OffersRequest {
    OffersRequest {
        requests: vec![OfferRequest::new(format!("ip{ip}"), 3)],
        ..OffersRequest::default()
    }
}

fn engine(c: &mut Criterion) {
    let dep = synthetic::deployment(7, Size::BENCHMARK);
    // Every offer has learning evidence, so each request pays for its Thompson draws.
    let mut world = MemoryWorld::new();
    for o in 0..Size::BENCHMARK.offers as u64 {
        let contacts = 1_000 + o * 7 % 500;
        world.set_stats(
            &format!("OFFER{o}"),
            None,
            Stats {
                contacts,
                accepts: contacts * (o % 13) / 100,
            },
        );
    }
    let mut rng = SplitMix64(1);
    let mut sessions: Vec<Session> = (0..VISITORS).map(|id| start(&dep, id)).collect();
    let served: usize = sessions
        .iter_mut()
        .enumerate()
        .map(|(i, s)| {
            s.get_offers(&dep, &world, &mut rng, &request(i % 100), NOW)
                .offer_lists[0]
                .offers
                .len()
        })
        .sum();
    println!(
        "offers served per request on average: {:.2}",
        served as f64 / VISITORS as f64
    );

    let mut group = c.benchmark_group("engine");
    let mut i = 0usize;
    group.bench_function("get_offers_1ip_3offers", |b| {
        b.iter(|| {
            i = (i + 1) % sessions.len();
            let response =
                sessions[i].get_offers(&dep, &world, &mut rng, black_box(&request(i % 100)), NOW);
            black_box(response)
        })
    });
    let mut id = 0u64;
    group.bench_function("start_session_with_segmentation", |b| {
        b.iter(|| {
            id = (id + 1) % VISITORS;
            black_box(start(&dep, id))
        })
    });
    group.bench_function("compile_deployment", |b| {
        b.iter(|| black_box(synthetic::deployment(7, Size::BENCHMARK)))
    });
    group.finish();

    // Latency percentiles of get offers, from a plain loop over the same sessions.
    let mut latencies: Vec<u128> = Vec::with_capacity(200_000);
    for n in 0..200_000usize {
        let s = n % sessions.len();
        let req = request(n % 100);
        let t = Instant::now();
        black_box(sessions[s].get_offers(&dep, &world, &mut rng, &req, NOW));
        latencies.push(t.elapsed().as_nanos());
    }
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)] as f64 / 1000.0
    };
    println!(
        "get_offers latency over {} calls: p50 {:.2} us, p99 {:.2} us, p99.9 {:.2} us",
        latencies.len(),
        pct(0.5),
        pct(0.99),
        pct(0.999)
    );
}

criterion_group!(benches, engine);

fn main() {
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
