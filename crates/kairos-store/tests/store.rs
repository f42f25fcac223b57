//! One test suite, run against SQLite (a temporary file) and PostgreSQL (the server named by
//! `KAIROS_TEST_POSTGRES_URL`, each test in a schema of its own).

use std::sync::atomic::{AtomicU64, Ordering};

use kairos_engine::world::{
    AudienceState, HistoryRecord, OfferHistory, ResponseKind, Stats, Treatment,
};
use kairos_rules::time::Timestamp;
use std::collections::HashMap;

use kairos_model::table::read_csv;
use kairos_rules::Value;
use kairos_store::{HistoryStore, OfferStats, ProfileStore};
use sqlx::Executor;

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn sqlite() -> Option<String> {
    let dir = std::env::temp_dir().join(unique("kairos_store"));
    // A folder left by an earlier run whose process had the same id holds old rows.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Some(format!("sqlite://{}", dir.join("kairos.db").display()))
}

/// A URL whose connections use a fresh schema of the PostgreSQL server.
async fn postgres() -> Option<String> {
    let Ok(url) = std::env::var("KAIROS_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must set KAIROS_TEST_POSTGRES_URL"
        );
        eprintln!("KAIROS_TEST_POSTGRES_URL is not set: skipping the PostgreSQL run");
        return None;
    };
    let schema = unique("kairos_test");
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    admin
        .execute(format!("CREATE SCHEMA {schema}").as_str())
        .await
        .unwrap();
    let separator = if url.contains('?') { '&' } else { '?' };
    Some(format!(
        "{url}{separator}options=-c%20search_path%3D{schema}"
    ))
}

async fn history(url: String) -> HistoryStore {
    HistoryStore::open(&url).await.unwrap()
}

fn treatment(code: &str, offer: &str, segment: Option<&str>) -> Treatment {
    Treatment {
        code: code.into(),
        offer: offer.into(),
        category: Some("cards".into()),
        rule: "r1".into(),
        segment: segment.map(Into::into),
        ip: "hero".into(),
        zone: "home".into(),
        score: 80.5,
        deployment: 3,
        session_id: "s1".into(),
        audience: "customer:customer_id=1001".into(),
        issued_at: Timestamp(1_000),
    }
}

fn record(
    kind: ResponseKind,
    code: &str,
    offer: &str,
    segment: Option<&str>,
    at: i64,
) -> HistoryRecord {
    HistoryRecord {
        kind,
        treatment: treatment(code, offer, segment),
        at: Timestamp(at),
        cross_session: kind != ResponseKind::Contact,
    }
}

async fn records_are_stored_whole_and_in_order(store: HistoryStore) {
    let records = vec![
        record(ResponseKind::Contact, "t1", "GOLD", Some("vip"), 10),
        record(ResponseKind::Accept, "t1", "GOLD", Some("vip"), 20),
        record(ResponseKind::Contact, "t2", "SILVER", None, 30),
    ];
    store.append(records.clone()).await.unwrap();
    assert_eq!(store.history().await.unwrap(), records);
}

async fn contacts_are_found_by_treatment_code(store: HistoryStore) {
    store
        .append(vec![record(
            ResponseKind::Accept,
            "only-accepted",
            "GOLD",
            None,
            5,
        )])
        .await
        .unwrap();
    store
        .append(vec![record(ResponseKind::Contact, "t9", "GOLD", None, 6)])
        .await
        .unwrap();
    assert_eq!(
        store.find_contact("t9").await.unwrap(),
        Some(treatment("t9", "GOLD", None))
    );
    assert_eq!(
        store.find_contact("only-accepted").await.unwrap(),
        None,
        "an accept is not a contact"
    );
    assert_eq!(store.find_contact("nope").await.unwrap(), None);
}

async fn audience_state_is_kept_and_replaced(store: HistoryStore) {
    assert_eq!(
        store.load_audience("customer:customer_id=1").await.unwrap(),
        AudienceState::default()
    );
    let mut state = AudienceState::default();
    state.offers.insert(
        "GOLD".into(),
        OfferHistory {
            last_reject: Some(Timestamp(7)),
            ..OfferHistory::default()
        },
    );
    store
        .save_audience("customer:customer_id=1", &state)
        .await
        .unwrap();
    assert_eq!(
        store.load_audience("customer:customer_id=1").await.unwrap(),
        state
    );
    state.offers.clear();
    store
        .save_audience("customer:customer_id=1", &state)
        .await
        .unwrap();
    assert_eq!(
        store.load_audience("customer:customer_id=1").await.unwrap(),
        state
    );
}

async fn learning_statistics_are_counted_per_offer_and_segment(store: HistoryStore) {
    store
        .append(vec![
            record(ResponseKind::Contact, "a", "GOLD", Some("vip"), 1),
            record(ResponseKind::Contact, "b", "GOLD", None, 2),
            record(ResponseKind::Accept, "a", "GOLD", Some("vip"), 3),
            record(ResponseKind::Reject, "b", "GOLD", None, 4),
        ])
        .await
        .unwrap();
    let mut stats = store.offer_stats().await.unwrap();
    stats.sort_by(|a, b| a.segment.cmp(&b.segment));
    assert_eq!(
        stats,
        [
            OfferStats {
                offer: "GOLD".into(),
                segment: None,
                stats: Stats {
                    contacts: 2,
                    accepts: 1
                }
            },
            OfferStats {
                offer: "GOLD".into(),
                segment: Some("vip".into()),
                stats: Stats {
                    contacts: 1,
                    accepts: 1
                }
            },
        ]
    );
    let since = store.contacts_since(Timestamp(2)).await.unwrap();
    assert_eq!(since, [("GOLD".to_string(), Timestamp(2))]);
}

async fn concurrent_appends_are_all_acknowledged_after_commit(store: HistoryStore) {
    let mut tasks = Vec::new();
    for t in 0..50 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let records: Vec<HistoryRecord> = (0..10)
                .map(|i| record(ResponseKind::Contact, &format!("c{t}-{i}"), "GOLD", None, i))
                .collect();
            store.append(records).await.unwrap();
            // Acknowledged means committed: this task's records are readable now.
            assert!(
                store
                    .find_contact(&format!("c{t}-9"))
                    .await
                    .unwrap()
                    .is_some()
            );
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(store.history().await.unwrap().len(), 500);
    assert_eq!(store.queue_depth(), 0);
}

async fn profile_tables_are_imported_replaced_and_read_by_key(url: String) {
    let store = ProfileStore::open(&url).await.unwrap();
    let csv =
        "customer_id,name,balance,vip,joined\n1001,Ada,10.5,true,2024-01-01\n1002,Ben,,false,\n";
    let table = read_csv("Customers", csv.as_bytes(), &HashMap::new()).unwrap();
    assert_eq!(store.import(&table, "customer_id").await.unwrap(), 2);
    let schemas = store.schemas().await.unwrap();
    assert_eq!(schemas.len(), 1);
    assert_eq!(schemas[0].columns, table.schema.columns);
    let rows = store
        .rows(&schemas[0], "customer_id", "1002")
        .await
        .unwrap();
    assert_eq!(
        rows,
        [vec![
            ("customer_id".to_string(), Value::Int(1002)),
            ("name".into(), Value::from("Ben")),
            ("vip".into(), Value::Bool(false))
        ]]
    );
    let ada = store
        .rows(&schemas[0], "customer_id", "1001")
        .await
        .unwrap();
    assert!(ada[0].contains(&(
        "joined".to_string(),
        Value::Timestamp(kairos_rules::time::parse_instant("2024-01-01").unwrap().at)
    )));
    assert!(
        store
            .rows(&schemas[0], "customer_id", "not-a-number")
            .await
            .unwrap()
            .is_empty()
    );
    // Importing again replaces the table whole.
    let again = read_csv(
        "customers",
        "customer_id,name\n7,Gus\n".as_bytes(),
        &HashMap::new(),
    )
    .unwrap();
    store.import(&again, "customer_id").await.unwrap();
    let schemas = store.schemas().await.unwrap();
    assert_eq!(schemas[0].columns.len(), 2);
    assert!(
        store
            .rows(&schemas[0], "customer_id", "1001")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .rows(&schemas[0], "customer_id", "7")
            .await
            .unwrap()
            .len(),
        1
    );
}

macro_rules! suite {
    (history: $($name:ident),* ; profiles: $($pname:ident),* $(,)?) => {
        mod on_sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(super::history(super::sqlite().unwrap()).await).await; } )*
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $pname() { super::$pname(super::sqlite().unwrap()).await; } )*
        }
        mod on_postgres {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() {
                if let Some(url) = super::postgres().await { super::$name(super::history(url).await).await; }
            } )*
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $pname() {
                if let Some(url) = super::postgres().await { super::$pname(url).await; }
            } )*
        }
    };
}

suite!(
    history:
    records_are_stored_whole_and_in_order,
    contacts_are_found_by_treatment_code,
    audience_state_is_kept_and_replaced,
    learning_statistics_are_counted_per_offer_and_segment,
    concurrent_appends_are_all_acknowledged_after_commit;
    profiles:
    profile_tables_are_imported_replaced_and_read_by_key,
);
