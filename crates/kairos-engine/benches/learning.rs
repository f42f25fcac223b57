//! Decision quality by simulation (`cargo bench -p kairos-engine --bench learning`): each
//! problem's acceptance per visit in four slices of 20,000 visits, averaged over 5 seeds, for
//! the channel (its arbitration and learning), choosing at random, textbook Thompson sampling
//! and the oracle, and the share of textbook Thompson sampling's uplift over random that the
//! channel captured. Figures go to bench/NOTES.md.

use kairos_engine::simulation::{Problem, Slice, run};

const VISITS: usize = 20_000;
const SLICES: usize = 4;
const SEEDS: u64 = 5;
/// The learning settings the issue measured with, as the demo channel uses them.
const LEARNING: &str = "learning: { mode: thompson, explore_percent: 5, min_contacts: 50 }\n";

/// Ten offers with hidden rates 1%..10%, scored by `score(o)` (o = 0 is the 1% offer).
fn ten_offers(name: &'static str, score: fn(usize) -> f64) -> Problem {
    Problem {
        name,
        offers: (0..10).map(|o| (format!("OFFER_{o}"), score(o))).collect(),
        learning: LEARNING.to_string(),
        rates: Box::new(|_| (0..10).map(|o| 0.01 * (o + 1) as f64).collect()),
    }
}

fn problems() -> Vec<Problem> {
    vec![
        ten_offers("equal scores", |_| 50.0),
        ten_offers("informative scores", |o| 10.0 + 9.0 * o as f64),
        ten_offers("misleading scores (the worst offer highest)", |o| {
            100.0 - 9.0 * o as f64
        }),
        Problem {
            name: "the best offer changes at visit 10,000 (equal scores)",
            offers: (0..10).map(|o| (format!("OFFER_{o}"), 50.0)).collect(),
            learning: LEARNING.to_string(),
            rates: Box::new(|visit| {
                (0..10)
                    .map(|o| {
                        let rank = if visit < VISITS / 2 { o } else { 9 - o };
                        0.01 * (rank + 1) as f64
                    })
                    .collect()
            }),
        },
        Problem {
            name: "100 offers, rare accepts (0.1%..2%, equal scores)",
            offers: (0..100).map(|o| (format!("OFFER_{o}"), 50.0)).collect(),
            learning: LEARNING.to_string(),
            rates: Box::new(|_| (0..100).map(|o| 0.001 + 0.019 * o as f64 / 99.0).collect()),
        },
    ]
}

fn main() {
    println!(
        "decision quality: accepts per visit, {VISITS} visits in {SLICES} slices, mean of {SEEDS} seeds"
    );
    for problem in problems() {
        let mut mean = [Slice::default(); SLICES];
        for seed in 1..=SEEDS {
            let slices =
                run(&problem, VISITS, SLICES, seed).expect("the problem's channel compiles");
            for (m, s) in mean.iter_mut().zip(slices) {
                m.channel += s.channel / SEEDS as f64;
                m.random += s.random / SEEDS as f64;
                m.thompson += s.thompson / SEEDS as f64;
                m.oracle += s.oracle / SEEDS as f64;
            }
        }
        println!("\n{}", problem.name);
        println!("  slice       channel   random  thompson   oracle  captured");
        let captured = |s: &Slice| 100.0 * (s.channel - s.random) / (s.thompson - s.random);
        for (i, s) in mean.iter().enumerate() {
            println!(
                "  {:>5}-{:<5} {:>6.2}% {:>7.2}% {:>8.2}% {:>7.2}% {:>8.0}%",
                i * VISITS / SLICES,
                (i + 1) * VISITS / SLICES,
                100.0 * s.channel,
                100.0 * s.random,
                100.0 * s.thompson,
                100.0 * s.oracle,
                captured(s)
            );
        }
        let all = mean.iter().fold(Slice::default(), |a, s| Slice {
            channel: a.channel + s.channel / SLICES as f64,
            random: a.random + s.random / SLICES as f64,
            thompson: a.thompson + s.thompson / SLICES as f64,
            oracle: a.oracle + s.oracle / SLICES as f64,
        });
        println!(
            "  all         {:>6.2}% {:>7.2}% {:>8.2}% {:>7.2}% {:>8.0}%",
            100.0 * all.channel,
            100.0 * all.random,
            100.0 * all.thompson,
            100.0 * all.oracle,
            captured(&all)
        );
    }
}
