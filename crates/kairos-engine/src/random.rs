//! Randomness is an argument: the engine draws from whatever the caller passes, so tests and
//! scenario runs are reproducible with a seed.

pub trait Random {
    fn next_u64(&mut self) -> u64;

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// SplitMix64: tiny, fast, statistically fine for sampling (not for secrets).
#[derive(Clone, Debug)]
pub struct SplitMix64(pub u64);

impl Random for SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// A stable 64-bit hash (FNV-1a): sample splits and the control group depend on it, so it must
/// never change between versions or machines.
pub fn stable_hash(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain(std::iter::once(0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    // FNV's low bits mix poorly; finish with a multiply-shift so `% 10_000` is uniform.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

/// A position in [0, 100) for percentage splits, from a stable hash.
pub fn percentile(parts: &[&str]) -> f64 {
    (stable_hash(parts) % 1_000_000) as f64 / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable_and_spreads_evenly() {
        assert_eq!(
            stable_hash(&["spring26", "customer:1001"]),
            stable_hash(&["spring26", "customer:1001"])
        );
        assert_ne!(stable_hash(&["a", "bc"]), stable_hash(&["ab", "c"]));
        let below_half = (0..10_000)
            .filter(|i| percentile(&["seed", &i.to_string()]) < 50.0)
            .count();
        assert!((4_700..5_300).contains(&below_half), "{below_half}");
    }
}
