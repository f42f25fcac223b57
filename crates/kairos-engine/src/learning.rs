//! Thompson sampling over Beta posteriors of offers' acceptance rates, and the posterior
//! summaries reports show (mean and a 95% credible interval).

use crate::random::Random;
use crate::world::Stats;

/// Beta(1 + accepts, 1 + contacts - accepts): a uniform prior updated by what was observed.
fn posterior(stats: Stats) -> (f64, f64) {
    let accepts = stats.accepts.min(stats.contacts) as f64;
    (1.0 + accepts, 1.0 + stats.contacts as f64 - accepts)
}

/// A draw of the acceptance rate from the offer's posterior.
pub fn sample_rate(stats: Stats, rng: &mut dyn Random) -> f64 {
    let (a, b) = posterior(stats);
    let (first_a, first_b) = normal_pair(rng);
    let x = sample_gamma(a, first_a, rng);
    let y = sample_gamma(b, first_b, rng);
    if x + y == 0.0 { 0.5 } else { x / (x + y) }
}

/// Marsaglia and Tsang's method; shape >= 1 here (the prior adds 1). `normal` is the
/// standard normal draw of the first try.
fn sample_gamma(shape: f64, mut normal: f64, rng: &mut dyn Random) -> f64 {
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let v = 1.0 + c * normal;
        if v > 0.0 {
            let v = v * v * v;
            let u = rng.unit();
            if u < 1.0 - 0.0331 * normal.powi(4)
                || u.ln() < 0.5 * normal * normal + d * (1.0 - v + v.ln())
            {
                return d * v;
            }
        }
        normal = normal_pair(rng).0;
    }
}

/// Two independent standard normal draws by Marsaglia's polar method: one logarithm and one
/// square root for the pair, where Box-Muller takes a cosine besides for each draw. Learning
/// draws two gammas per candidate offer on every get offers, one from each.
fn normal_pair(rng: &mut dyn Random) -> (f64, f64) {
    loop {
        let u = 2.0 * rng.unit() - 1.0;
        let v = 2.0 * rng.unit() - 1.0;
        let s = u * u + v * v;
        if s > 0.0 && s < 1.0 {
            let scale = (-2.0 * s.ln() / s).sqrt();
            return (u * scale, v * scale);
        }
    }
}

/// What reports show of an offer's learning: posterior mean and 95% credible interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Posterior {
    pub mean: f64,
    pub low: f64,
    pub high: f64,
    pub contacts: u64,
    pub accepts: u64,
}

pub fn summarize(stats: Stats) -> Posterior {
    let (a, b) = posterior(stats);
    Posterior {
        mean: a / (a + b),
        low: beta_quantile(0.025, a, b),
        high: beta_quantile(0.975, a, b),
        contacts: stats.contacts,
        accepts: stats.accepts.min(stats.contacts),
    }
}

/// The p-quantile of Beta(a, b), by bisection on the regularized incomplete beta function.
fn beta_quantile(p: f64, a: f64, b: f64) -> f64 {
    let (mut lo, mut hi) = (0.0, 1.0);
    for _ in 0..60 {
        let mid = (lo + hi) / 2.0;
        if regularized_beta(mid, a, b) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo + hi) / 2.0
}

/// I_x(a, b) with the continued fraction of Numerical Recipes (betacf).
fn regularized_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front.exp() * continued_fraction(x, a, b) / a
    } else {
        1.0 - ln_front.exp() * continued_fraction(1.0 - x, b, a) / b
    }
}

fn continued_fraction(x: f64, a: f64, b: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..300 {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        let delta = d * c;
        h *= delta;
        if (delta - 1.0).abs() < 1e-12 {
            break;
        }
    }
    h
}

/// Lanczos approximation (g = 7, n = 9).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    let x = x - 1.0;
    let mut sum = G[0];
    for (i, g) in G.iter().enumerate().skip(1) {
        sum += g / (x + i as f64);
    }
    let t = x + 7.5;
    0.5 * (std::f64::consts::TAU).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::SplitMix64;

    #[test]
    fn posterior_summary_matches_known_values() {
        // Beta(1, 1): uniform, so the 95% interval is [0.025, 0.975].
        let p = summarize(Stats {
            contacts: 0,
            accepts: 0,
        });
        assert!(
            (p.mean - 0.5).abs() < 1e-9
                && (p.low - 0.025).abs() < 1e-6
                && (p.high - 0.975).abs() < 1e-6,
            "{p:?}"
        );
        // Beta(11, 91): mean 11/102; the interval narrows around it.
        let p = summarize(Stats {
            contacts: 100,
            accepts: 10,
        });
        assert!((p.mean - 11.0 / 102.0).abs() < 1e-9);
        assert!(
            p.low > 0.05 && p.low < 0.07 && p.high > 0.16 && p.high < 0.18,
            "{p:?}"
        );
    }

    #[test]
    fn samples_center_on_the_posterior_mean() {
        let mut rng = SplitMix64(7);
        let stats = Stats {
            contacts: 200,
            accepts: 50,
        };
        let n = 20_000;
        let draws: Vec<f64> = (0..n).map(|_| sample_rate(stats, &mut rng)).collect();
        let mean = draws.iter().sum::<f64>() / f64::from(n);
        assert!((mean - 51.0 / 202.0).abs() < 0.005, "{mean}");
        // And spread as the posterior is: Beta(51, 151) has a standard deviation of 0.0305.
        let sd = (draws.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / f64::from(n)).sqrt();
        assert!((sd - 0.0305).abs() < 0.002, "{sd}");
    }

    #[test]
    fn normal_pairs_are_standard_and_uncorrelated() {
        let mut rng = SplitMix64(11);
        let n = 50_000;
        let pairs: Vec<(f64, f64)> = (0..n).map(|_| normal_pair(&mut rng)).collect();
        let mean = |f: &dyn Fn(&(f64, f64)) -> f64| pairs.iter().map(f).sum::<f64>() / f64::from(n);
        for (name, m, expected) in [
            ("first mean", mean(&|p| p.0), 0.0),
            ("second mean", mean(&|p| p.1), 0.0),
            ("first variance", mean(&|p| p.0 * p.0), 1.0),
            ("second variance", mean(&|p| p.1 * p.1), 1.0),
            ("covariance", mean(&|p| p.0 * p.1), 0.0),
        ] {
            assert!((m - expected).abs() < 0.02, "{name}: {m}");
        }
    }
}
