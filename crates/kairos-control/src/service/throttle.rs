//! Failed logins counted per user and per address: past a few within a window, further
//! attempts are refused until it passes, so passwords cannot be guessed at speed.

use std::collections::HashMap;
use std::net::IpAddr;

use kairos_rules::time::Timestamp;

/// Failures a user name may see within [`WINDOW`] before its logins wait.
const PER_USER: u32 = 5;
/// Failures one address may cause within [`WINDOW`], across user names.
const PER_ADDRESS: u32 = 20;
const WINDOW: i64 = 15 * 60 * 1_000_000_000;
/// Counters kept at most; past it the expired ones go, then, if need be, all.
const MOST_COUNTERS: usize = 100_000;

#[derive(Default)]
pub(super) struct Throttle {
    failures: HashMap<Key, (u32, Timestamp)>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
enum Key {
    User(String),
    Address(IpAddr),
}

fn keys(user: &str, from: Option<IpAddr>) -> Vec<(Key, u32)> {
    let mut keys = vec![(Key::User(user.to_string()), PER_USER)];
    if let Some(ip) = from {
        keys.push((Key::Address(ip), PER_ADDRESS));
    }
    keys
}

impl Throttle {
    /// Seconds until a login of `user` from `from` may be tried again, if it must wait.
    pub(super) fn wait(&self, user: &str, from: Option<IpAddr>, now: Timestamp) -> Option<i64> {
        keys(user, from)
            .into_iter()
            .filter_map(|(key, most)| {
                let (count, since) = self.failures.get(&key)?;
                let left = since.0 + WINDOW - now.0;
                (*count >= most && left > 0).then(|| (left + 999_999_999) / 1_000_000_000)
            })
            .max()
    }

    pub(super) fn failed(&mut self, user: &str, from: Option<IpAddr>, now: Timestamp) {
        if self.failures.len() >= MOST_COUNTERS {
            self.failures
                .retain(|_, (_, since)| since.0 + WINDOW > now.0);
            if self.failures.len() >= MOST_COUNTERS {
                self.failures.clear();
            }
        }
        for (key, _) in keys(user, from) {
            let entry = self.failures.entry(key).or_insert((0, now));
            if entry.1.0 + WINDOW <= now.0 {
                *entry = (0, now);
            }
            entry.0 += 1;
        }
    }

    /// A user who logs in starts again from nothing; their address keeps its count.
    pub(super) fn succeeded(&mut self, user: &str) {
        self.failures.remove(&Key::User(user.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_waits_after_five_failures_and_an_address_after_twenty() {
        let mut t = Throttle::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let at = |s: i64| Timestamp(s * 1_000_000_000);
        for _ in 0..4 {
            t.failed("ana", Some(ip), at(0));
        }
        assert_eq!(t.wait("ana", Some(ip), at(1)), None);
        t.failed("ana", Some(ip), at(1));
        assert_eq!(
            t.wait("ana", None, at(1)),
            Some(899),
            "the window began at the first"
        );
        assert_eq!(t.wait("ana", None, at(899)), Some(1));
        assert_eq!(t.wait("ana", None, at(900)), None, "the window passed");
        for i in 0..15 {
            t.failed(&format!("user{i}"), Some(ip), at(2));
        }
        assert!(
            t.wait("ben", Some(ip), at(3)).is_some(),
            "the address guessed too often"
        );
        assert_eq!(t.wait("ben", None, at(3)), None);
        t.succeeded("ana");
        assert_eq!(t.wait("ana", None, at(4)), None);
    }
}
