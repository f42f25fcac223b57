//! The demo bank's profile tables: a seeded generator, so the CSVs in `examples/bank` can be
//! re-made byte for byte and larger sets made for load tests.

use std::fmt::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use kairos_engine::random::{Random, SplitMix64};

pub const DEFAULT_SEED: u64 = 26;
pub const DEFAULT_CUSTOMERS: usize = 3000;
/// The first customer's ID; IDs are consecutive from here.
pub const FIRST_CUSTOMER_ID: u64 = 1001;

/// Helpers over the engine's seeded generator, to make believable test data.
struct Rng(SplitMix64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn unit(&mut self) -> f64 {
        self.0.unit()
    }

    fn range(&mut self, low: i64, high: i64) -> i64 {
        low + (self.next() % (high - low + 1) as u64) as i64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

const FIRST_NAMES: &[&str] = &[
    "Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jack", "Kofi",
    "Lena", "Marco", "Nina", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tara", "Uma", "Victor",
    "Wen", "Yusuf",
];
const COUNTRIES: &[&str] = &["US", "US", "US", "CA", "CA", "GB", "DE", "FR"];

/// The two tables as CSV text: (customers, accounts).
pub fn profiles(seed: u64, customers: usize) -> (String, String) {
    let mut rng = Rng(SplitMix64(seed));
    let mut people = String::from(
        "customer_id,first_name,age,country,balance,income,credit_score,tenure_years,has_credit_card,digital_active,email_opt_in,joined\n",
    );
    let mut accounts = String::from("customer_id,type,balance,opened\n");
    for i in 0..customers as u64 {
        let id = FIRST_CUSTOMER_ID + i;
        let age = rng.range(18, 84);
        // Balances and incomes are skewed, as real ones are: most modest, a few large.
        let balance = (rng.unit().powi(3) * 60_000.0 * 100.0).round() / 100.0;
        let income = (20_000.0 + rng.unit().powi(2) * 180_000.0).round();
        let credit_score = rng.range(480, 850);
        let tenure = rng.range(0, (age - 17).min(40));
        let has_card = rng.chance(0.55);
        let digital = rng.chance(if age < 45 { 0.8 } else { 0.45 });
        let opt_in = rng.chance(0.6);
        let joined_year = 2026 - tenure;
        let joined = format!(
            "{joined_year}-{:02}-{:02}",
            rng.range(1, 12),
            rng.range(1, 28)
        );
        let _ = writeln!(
            people,
            "{id},{},{age},{},{balance:.2},{income},{credit_score},{tenure},{has_card},{digital},{opt_in},{joined}",
            rng.pick(FIRST_NAMES),
            rng.pick(COUNTRIES)
        );
        let mut account = |kind: &str, amount: f64, rng: &mut Rng| {
            let opened = format!(
                "{}-{:02}-{:02}",
                rng.range(joined_year, 2026),
                rng.range(1, 12),
                rng.range(1, 28)
            );
            let _ = writeln!(accounts, "{id},{kind},{amount:.2},{opened}");
        };
        account("checking", (rng.unit() * 8_000.0).round(), &mut rng);
        if rng.chance(0.6) {
            account("savings", balance, &mut rng);
        }
        if age > 28 && rng.chance(0.3) {
            account(
                "mortgage",
                -(100_000.0 + rng.unit() * 400_000.0).round(),
                &mut rng,
            );
        }
        if has_card {
            account("card", -(rng.unit() * 3_000.0).round(), &mut rng);
        }
        if rng.chance(0.15) {
            account("loan", -(2_000.0 + rng.unit() * 20_000.0).round(), &mut rng);
        }
    }
    (people, accounts)
}

pub fn write_profiles(out: &Path, seed: u64, customers: usize) -> Result<ExitCode> {
    let (people, accounts) = profiles(seed, customers);
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    for (name, text) in [("customers.csv", &people), ("accounts.csv", &accounts)] {
        let path = out.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        println!(
            "wrote {} ({} rows)",
            path.display(),
            text.lines().count() - 1
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The engine benchmark's synthetic channel and customers, for load tests over HTTP.
pub fn write_synthetic(out: &Path, customers: u64) -> Result<ExitCode> {
    use kairos_engine::synthetic;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let files = [
        (
            "synthetic.yaml",
            synthetic::channel_yaml(7, synthetic::Size::BENCHMARK),
        ),
        ("customers.csv", synthetic::profiles_csv(customers)),
    ];
    for (name, text) in files {
        let path = out.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_demo_tables_are_the_generators_output() {
        let (people, accounts) = profiles(DEFAULT_SEED, DEFAULT_CUSTOMERS);
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/bank");
        let committed = |name: &str| std::fs::read_to_string(format!("{dir}/{name}")).unwrap();
        assert!(
            people == committed("customers.csv"),
            "run `kairos demo profiles` to refresh customers.csv"
        );
        assert!(
            accounts == committed("accounts.csv"),
            "run `kairos demo profiles` to refresh accounts.csv"
        );
    }

    #[test]
    fn different_seeds_make_different_people() {
        assert_ne!(profiles(1, 50).0, profiles(2, 50).0);
        assert_eq!(profiles(1, 50).0.lines().count(), 51);
    }
}
