//! A visitor's segment membership as a bitset over the deployment's segment indices.

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SegmentSet {
    words: Vec<u64>,
}

impl SegmentSet {
    pub fn with_capacity(segments: usize) -> Self {
        SegmentSet {
            words: vec![0; segments.div_ceil(64)],
        }
    }

    pub fn insert(&mut self, i: usize) {
        let word = i / 64;
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        self.words[word] |= 1 << (i % 64);
    }

    pub fn contains(&self, i: usize) -> bool {
        self.words
            .get(i / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    /// Members in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(wi, &w)| {
            let mut bits = w;
            std::iter::from_fn(move || {
                if bits == 0 {
                    return None;
                }
                let tz = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                Some(wi * 64 + tz)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_come_back_in_order() {
        let mut s = SegmentSet::with_capacity(10);
        for i in [130, 3, 64, 0] {
            s.insert(i);
        }
        assert_eq!(s.iter().collect::<Vec<_>>(), [0, 3, 64, 130]);
        assert!(s.contains(64) && !s.contains(65));
    }
}
