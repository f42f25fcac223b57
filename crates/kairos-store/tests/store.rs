//! One test suite, run against SQLite (a temporary file) and PostgreSQL (the server named by
//! `KAIROS_TEST_POSTGRES_URL`, each test in a schema of its own).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kairos_engine::world::{
    AudienceState, HistoryRecord, OfferHistory, Origin, ResponseKind, Stats, Treatment,
};
use kairos_rules::time::Timestamp;
use std::collections::HashMap;

use kairos_model::components::{Component, Kind};
use kairos_model::table::read_csv;
use kairos_rules::Value;
use kairos_store::control::{
    Activation, AuditEntry, ControlStore, Expect, Group, Instance, Review, TestResult, Token,
    UnknownName, User, Version,
};
use kairos_store::{EncodedState, HistoryStore, OfferStats, ProfileStore, StateWrite, StoreError};

#[path = "support/postgres.rs"]
mod postgres;
use postgres::postgres;
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

async fn history(url: String) -> HistoryStore {
    HistoryStore::open(&url).await.unwrap()
}

fn treatment(code: &str, offer: &str, segment: Option<&str>) -> Treatment {
    Treatment {
        code: code.into(),
        origin: Arc::new(Origin {
            offer: offer.into(),
            category: Some("cards".into()),
            rule: "r1".into(),
            segment: segment.map(Into::into),
        }),
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

async fn a_failed_commit_writes_nothing_and_the_next_one_lands(url: String) {
    let store = history(url.clone()).await;
    sqlx::any::install_default_drivers();
    let mut admin = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let good = record(ResponseKind::Contact, "t1", "GOLD", None, 10);
    let state = AudienceState {
        offers: [("GOLD".to_string(), OfferHistory::default())].into(),
        ..Default::default()
    };
    // With the audience table gone, the batch's second statement fails after its first.
    admin
        .execute("ALTER TABLE kairos_audience RENAME TO kairos_audience_away")
        .await
        .unwrap();
    let refused = store
        .write(
            vec![good.clone()],
            Some(StateWrite {
                key: "customer:1".to_string(),
                base: None,
                state: EncodedState::new(&state),
            }),
        )
        .await;
    assert!(refused.is_err(), "the batch fails");
    admin
        .execute("ALTER TABLE kairos_audience_away RENAME TO kairos_audience")
        .await
        .unwrap();
    assert_eq!(
        store.history().await.unwrap(),
        Vec::new(),
        "the records of the failed batch were rolled back with it"
    );
    store
        .write(
            vec![good.clone()],
            Some(StateWrite {
                key: "customer:1".to_string(),
                base: None,
                state: EncodedState::new(&state),
            }),
        )
        .await
        .unwrap();
    assert_eq!(store.history().await.unwrap(), vec![good]);
    assert_eq!(store.load_audience("customer:1").await.unwrap(), state);
    let stats = store.writer_stats();
    assert_eq!(
        (
            stats.commits,
            stats.failed_commits,
            stats.writes,
            stats.records
        ),
        (2, 1, 1, 1),
        "the failed commit is counted as such, and its write and record are not"
    );
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
    let stats = store.writer_stats();
    assert_eq!(
        (
            stats.queue_depth,
            stats.writes,
            stats.records,
            stats.failed_commits
        ),
        (0, 50, 500, 0)
    );
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

fn component(kind: Kind, name: &str, body: serde_json::Value) -> Component {
    Component {
        kind,
        name: name.to_string(),
        body,
    }
}

async fn control(url: &str) -> ControlStore {
    ControlStore::open(url, &serde_json::json!({ "approvals": 1 }))
        .await
        .unwrap()
}

async fn design_edits_conflict_only_on_the_same_component(url: String) {
    let store = control(&url).await;
    let gold = component(Kind::Offers, "GOLD", serde_json::json!({ "name": "Gold" }));
    let silver = component(
        Kind::Offers,
        "SILVER",
        serde_json::json!({ "name": "Silver" }),
    );
    let first = store
        .replace_channel("web", &[gold.clone(), silver.clone()], "ana", Timestamp(1))
        .await
        .unwrap();
    // Two designers start from the same revision and edit different offers: both succeed.
    let gold2 = component(
        Kind::Offers,
        "GOLD",
        serde_json::json!({ "name": "Gold 2" }),
    );
    let silver2 = component(
        Kind::Offers,
        "SILVER",
        serde_json::json!({ "name": "Silver 2" }),
    );
    let a = store
        .put_component("web", &gold2, Expect::Revision(first), "ana", Timestamp(2))
        .await
        .unwrap();
    store
        .put_component(
            "web",
            &silver2,
            Expect::Revision(first),
            "ben",
            Timestamp(3),
        )
        .await
        .unwrap();
    // A third edit of GOLD based on the first revision conflicts and changes nothing.
    let stale = component(Kind::Offers, "GOLD", serde_json::json!({ "name": "lost" }));
    match store
        .put_component("web", &stale, Expect::Revision(first), "cy", Timestamp(4))
        .await
    {
        Err(StoreError::Conflict { path, current }) => {
            assert_eq!(path, "offers/GOLD");
            assert_eq!(current, Some(a));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(matches!(
        store
            .put_component("web", &stale, Expect::Absent, "cy", Timestamp(4))
            .await,
        Err(StoreError::Conflict { .. })
    ));
    let stored = store.components("web").await.unwrap();
    let bodies: Vec<_> = stored.iter().map(|c| c.component.clone()).collect();
    assert_eq!(bodies, vec![gold2, silver2]);
    assert_eq!(stored[1].updated_by, "ben");
    assert!(matches!(
        store
            .delete_component(
                "web",
                Kind::Offers,
                "GOLD",
                Expect::Revision(first),
                "cy",
                Timestamp(5)
            )
            .await,
        Err(StoreError::Conflict { .. })
    ));
    store
        .delete_component(
            "web",
            Kind::Offers,
            "GOLD",
            Expect::Revision(a),
            "cy",
            Timestamp(5),
        )
        .await
        .unwrap();
    assert!(matches!(
        store
            .delete_component("web", Kind::Offers, "GOLD", Expect::Any, "cy", Timestamp(6))
            .await,
        Err(StoreError::NotFound(_))
    ));
    let info = store.channel("web").await.unwrap().unwrap();
    assert_eq!((info.revision, info.updated_by.as_str()), (a + 2, "cy"));
    // Every write that changed a component is a change by its author, failed ones none;
    // applying the same file again changes nothing it kept.
    store
        .replace_channel("web", std::slice::from_ref(&silver), "dee", Timestamp(7))
        .await
        .unwrap();
    let changes: Vec<(String, String, i64)> = store
        .changes("web", Timestamp(2))
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.name, c.by, c.at.0))
        .collect();
    let expected = [
        ("GOLD", "ana", 2),
        ("SILVER", "ben", 3),
        ("GOLD", "cy", 5),
        ("SILVER", "dee", 7),
    ];
    assert_eq!(
        changes,
        expected.map(|(n, b, t)| (n.to_string(), b.to_string(), t))
    );
}

async fn concurrent_creates_of_different_components_all_land(url: String) {
    let store = std::sync::Arc::new(control(&url).await);
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let offer = component(Kind::Offers, &format!("O{i}"), serde_json::json!({}));
                store
                    .put_component("web", &offer, Expect::Absent, "ana", Timestamp(i))
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(store.components("web").await.unwrap().len(), 10);
    assert_eq!(store.channel("web").await.unwrap().unwrap().revision, 10);
}

/// Two runtimes or control planes starting at once on a fresh database both come up: the
/// schema is created once, under a lock, and the second finds it there.
async fn concurrent_starts_on_a_fresh_database_all_come_up(url: String) {
    let starts: Vec<_> = (0..6)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                let control = control(&url).await;
                let history = HistoryStore::open(&url).await.unwrap();
                ProfileStore::open(&url).await.unwrap();
                (control, history)
            })
        })
        .collect();
    let mut opened = Vec::new();
    for start in starts {
        opened.push(start.await.unwrap());
    }
    let (control, history) = &opened[0];
    assert_eq!(control.groups().await.unwrap().len(), 2);
    history
        .append(vec![record(ResponseKind::Contact, "t1", "GOLD", None, 10)])
        .await
        .unwrap();
    sqlx::any::install_default_drivers();
    let mut admin = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let applied: Vec<(String, i64)> =
        sqlx::query_as("SELECT store, version FROM kairos_migrations ORDER BY store, version")
            .fetch_all(&mut admin)
            .await
            .unwrap();
    let applied: Vec<(&str, i64)> = applied.iter().map(|(s, v)| (s.as_str(), *v)).collect();
    assert_eq!(
        applied,
        [
            ("control", 1),
            ("control", 2),
            ("control", 3),
            ("history", 1),
            ("profiles", 1)
        ]
    );
}

/// Snapshots read the last version's number and then write: they are not refused while
/// runtimes report (other connections committing in between), as SQLite would at once for a
/// transaction that read first.
async fn snapshots_land_while_runtimes_report(url: String) {
    let store = std::sync::Arc::new(control(&url).await);
    let reporter = {
        let store = store.clone();
        tokio::spawn(async move {
            for at in 0..200 {
                store
                    .report_instance(&Instance {
                        group: "staging".into(),
                        instance: format!("i-{}", at % 4),
                        address: "127.0.0.1:7701".into(),
                        running: serde_json::json!({}),
                        stats: serde_json::json!({}),
                        seen_at: Timestamp(at),
                    })
                    .await
                    .unwrap();
            }
        })
    };
    for n in 1..=40 {
        let version = Version {
            channel: "web".into(),
            number: 0,
            yaml: "channel: web\n".into(),
            hash: format!("h{n}"),
            author: "ana".into(),
            created_at: Timestamp(n),
            note: String::new(),
            report: serde_json::json!({}),
        };
        assert_eq!(store.create_version(&version).await.unwrap(), n);
    }
    reporter.await.unwrap();
}

/// A database a newer Kairos migrated is refused with a message that says so, not written to.
async fn a_schema_newer_than_this_build_is_refused(url: String) {
    control(&url).await;
    sqlx::any::install_default_drivers();
    let mut admin = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    admin
        .execute(
            "INSERT INTO kairos_migrations (store, version, description, applied_at) \
             VALUES ('control', 99, 'from the future', 0)",
        )
        .await
        .unwrap();
    let refused = ControlStore::open(&url, &serde_json::json!({}))
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(
            refused,
            StoreError::SchemaTooNew {
                applied: 99,
                known: 3,
                ..
            }
        ),
        "{refused}"
    );
    assert!(
        refused.to_string().contains("newer than this kairos knows"),
        "{refused}"
    );
}

async fn versions_deployments_and_reviews_are_recorded(url: String) {
    let store = control(&url).await;
    let groups = store.groups().await.unwrap();
    let names: Vec<_> = groups
        .iter()
        .map(|g| (g.name.as_str(), g.production))
        .collect();
    assert_eq!(names, vec![("staging", false), ("production", true)]);
    assert_eq!(groups[1].gates, serde_json::json!({ "approvals": 1 }));
    assert_eq!(groups[0].data, None, "groups share the default data source");
    let mut staging = groups[0].clone();
    staging.data = Some("sqlite://test-data.db".into());
    store.put_group(&staging).await.unwrap();
    let changed = store.group("staging").await.unwrap().unwrap();
    assert_eq!(changed.data.as_deref(), Some("sqlite://test-data.db"));
    assert_eq!(
        changed.generation,
        staging.generation + 1,
        "its runtimes fetch again"
    );
    let qa = Group {
        name: "qa".into(),
        production: false,
        gates: serde_json::json!({}),
        open: true,
        generation: 0,
        data: None,
        history: None,
        cors_origins: vec!["https://shop.example.com".into(), "*".into()],
    };
    store.put_group(&qa).await.unwrap();
    let read = store.group("qa").await.unwrap().unwrap();
    assert!(read.open);
    assert_eq!(read.cors_origins, qa.cors_origins);
    assert!(
        !store.group("production").await.unwrap().unwrap().open,
        "production starts closed"
    );
    assert_eq!(store.groups().await.unwrap().len(), 3);

    let version = |note: &str| Version {
        channel: "web".into(),
        number: 0,
        yaml: "channel: web\n".into(),
        hash: "abc".into(),
        author: "ana".into(),
        created_at: Timestamp(10),
        note: note.into(),
        report: serde_json::json!({ "warnings": [] }),
    };
    assert_eq!(store.create_version(&version("first")).await.unwrap(), 1);
    assert_eq!(store.create_version(&version("second")).await.unwrap(), 2);
    let v2 = store.version("web", 2).await.unwrap().unwrap();
    assert_eq!((v2.number, v2.note.as_str()), (2, "second"));
    assert_eq!(store.versions("web").await.unwrap().len(), 2);
    assert_eq!(store.version("web", 3).await.unwrap(), None);

    let before = store.group("staging").await.unwrap().unwrap().generation;
    for (n, action) in [(1, "deploy"), (2, "deploy"), (1, "rollback")] {
        store
            .activate(&Activation {
                group: "staging".into(),
                channel: "web".into(),
                version: n,
                by: "admin".into(),
                at: Timestamp(20 + n),
                action: action.into(),
                reason: None,
            })
            .await
            .unwrap();
    }
    assert_eq!(
        store.active("staging").await.unwrap(),
        vec![("web".to_string(), 1)]
    );
    assert_eq!(store.active("production").await.unwrap(), vec![]);
    assert_eq!(
        store.group("staging").await.unwrap().unwrap().generation,
        before + 3
    );
    let history: Vec<_> = store
        .activations("web", Some("staging"))
        .await
        .unwrap()
        .iter()
        .map(|a| (a.version, a.action.clone()))
        .collect();
    assert_eq!(
        history,
        vec![
            (1, "deploy".into()),
            (2, "deploy".into()),
            (1, "rollback".into())
        ]
    );

    let review = Review {
        reviewer: "rita".into(),
        approved: true,
        comment: "looks right".into(),
        at: Timestamp(30),
    };
    store.add_review("web", 2, &review).await.unwrap();
    assert_eq!(store.reviews("web", 2).await.unwrap(), vec![review]);
    assert_eq!(store.reviews("web", 1).await.unwrap(), vec![]);
    let result = TestResult {
        group: "staging".into(),
        kind: "loadtest".into(),
        passed: false,
        summary: serde_json::json!({ "p99_ms": 12.5 }),
        by: "ana".into(),
        at: Timestamp(31),
    };
    store.add_result("web", 2, &result).await.unwrap();
    assert_eq!(store.results("web", 2).await.unwrap(), vec![result]);

    for at in [40, 41] {
        store
            .report_instance(&Instance {
                group: "staging".into(),
                instance: "i-1".into(),
                address: "127.0.0.1:7701".into(),
                running: serde_json::json!({ "web": at }),
                stats: serde_json::json!({ "requests_per_second": at }),
                seen_at: Timestamp(at),
            })
            .await
            .unwrap();
        store
            .report_unknown(&UnknownName {
                channel: "web".into(),
                kind: "event".into(),
                name: "basket_viewed".into(),
                calls: 3,
                last_at: Timestamp(at),
            })
            .await
            .unwrap();
    }
    let instances = store.instances("staging").await.unwrap();
    assert_eq!(instances.len(), 1);
    assert_eq!(instances[0].seen_at, Timestamp(41));
    assert_eq!(instances[0].stats["requests_per_second"], 41);
    let unknown = store.unknown_names().await.unwrap();
    assert_eq!((unknown[0].calls, unknown[0].last_at), (6, Timestamp(41)));
    // A count that would overflow stays at the largest one (SQLite would turn it into a
    // float the next read cannot take; PostgreSQL would refuse the report).
    for _ in 0..2 {
        let huge = UnknownName {
            channel: "web".into(),
            kind: "event".into(),
            name: "basket_viewed".into(),
            calls: i64::MAX - 1,
            last_at: Timestamp(42),
        };
        store.report_unknown(&huge).await.unwrap();
    }
    let unknown = store.unknown_names().await.unwrap();
    assert_eq!(unknown[0].calls, i64::MAX);

    for (i, action) in ["apply", "deploy"].iter().enumerate() {
        store
            .audit(&AuditEntry {
                at: Timestamp(50 + i as i64),
                actor: "ana".into(),
                action: action.to_string(),
                target: "web".into(),
                detail: String::new(),
            })
            .await
            .unwrap();
    }
    let log = store.audit_log(10).await.unwrap();
    assert_eq!(
        log.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["deploy", "apply"]
    );
}

async fn users_and_token_digests_are_kept(url: String) {
    let store = control(&url).await;
    let mut user = User {
        name: "ana".into(),
        password_hash: "$argon2id$...".into(),
        roles: vec!["designer".into(), "reviewer".into()],
        disabled: false,
    };
    store.put_user(&user, Timestamp(1)).await.unwrap();
    user.roles = vec!["administrator".into()];
    store.put_user(&user, Timestamp(2)).await.unwrap();
    assert_eq!(store.user("ana").await.unwrap(), Some(user.clone()));
    assert_eq!(store.users().await.unwrap(), vec![user.clone()]);
    assert_eq!(store.user("nobody").await.unwrap(), None);
    let token = |kind: &str, subject: &str, digest: &str| Token {
        kind: kind.into(),
        subject: subject.into(),
        label: "website".into(),
        digest: digest.into(),
        expires_at: Some(Timestamp(100)),
        created_by: "admin".into(),
        created_at: Timestamp(3),
    };
    let touchpoint = token("touchpoint", "web", "d1aaaaaaaaaaaaaa");
    store.add_token(&touchpoint).await.unwrap();
    assert_eq!(
        store.token("d1aaaaaaaaaaaaaa").await.unwrap(),
        Some(touchpoint.clone())
    );
    assert!(touchpoint.expired(Timestamp(100)) && !touchpoint.expired(Timestamp(99)));
    assert_eq!(
        store.tokens("touchpoint").await.unwrap(),
        vec![touchpoint.clone()]
    );
    assert_eq!(store.tokens("user").await.unwrap(), vec![]);
    assert_eq!(
        store
            .revoke_tokens("touchpoint", "web", "other")
            .await
            .unwrap(),
        0
    );
    assert_eq!(store.revoke_token("d1aaaaaaaaab").await.unwrap(), None);
    assert_eq!(
        store.revoke_token("d1aaa").await.unwrap(),
        None,
        "too short"
    );
    assert_eq!(
        store.revoke_token(touchpoint.id()).await.unwrap(),
        Some(touchpoint.clone())
    );
    assert_eq!(
        store.token("d1aaaaaaaaaaaaaa").await.unwrap(),
        None,
        "a revoked token is gone"
    );

    // A user's tokens die with a new password, on disable and on delete.
    let login = |n: &str| token("user", "ana", &format!("{n}bbbbbbbbbbbbbbb"));
    store.add_token(&login("1")).await.unwrap();
    store.put_user(&user, Timestamp(4)).await.unwrap();
    assert_eq!(
        store.tokens("user").await.unwrap().len(),
        1,
        "same password"
    );
    user.password_hash = "$argon2id$new".into();
    store.put_user(&user, Timestamp(5)).await.unwrap();
    assert_eq!(store.tokens("user").await.unwrap(), vec![]);
    store.add_token(&login("2")).await.unwrap();
    user.disabled = true;
    store.put_user(&user, Timestamp(6)).await.unwrap();
    assert_eq!(store.tokens("user").await.unwrap(), vec![]);
    assert!(store.user("ana").await.unwrap().unwrap().disabled);
    store.add_token(&login("3")).await.unwrap();
    assert!(store.delete_user("ana").await.unwrap());
    assert!(!store.delete_user("ana").await.unwrap());
    assert_eq!(store.tokens("user").await.unwrap(), vec![]);
    assert_eq!(store.user("ana").await.unwrap(), None);
}

async fn performance_is_counted_per_offer_segment_zone_day_and_kind(url: String) {
    let day = 86_400_000_000_000i64;
    let store = history(url.clone()).await;
    store
        .append(vec![
            record(ResponseKind::Contact, "a", "GOLD", Some("vip"), 3 * day + 5),
            record(ResponseKind::Contact, "b", "GOLD", Some("vip"), 3 * day + 9),
            record(ResponseKind::Accept, "a", "GOLD", Some("vip"), 3 * day + 10),
            record(ResponseKind::Contact, "c", "GOLD", None, 4 * day),
            record(ResponseKind::Contact, "d", "SILVER", None, day),
        ])
        .await
        .unwrap();
    let sql = kairos_store::Sql::open(&url).await.unwrap();
    let mut rows: Vec<_> = sql
        .performance(Timestamp(2 * day))
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.offer, r.segment, r.zone, r.day, r.kind, r.count))
        .collect();
    rows.sort();
    let row = |segment: &str, day: i64, kind: &str, n: i64| {
        (
            "GOLD".to_string(),
            segment.to_string(),
            "home".to_string(),
            day,
            kind.to_string(),
            n,
        )
    };
    assert_eq!(
        rows,
        vec![
            row("", 4, "contact", 1),
            row("vip", 3, "accept", 1),
            row("vip", 3, "contact", 2)
        ],
        "SILVER's contact is before the report's start"
    );
}

/// Contacts since a time are found whatever order their times came in, in rows written
/// now and in rows an earlier version wrote (whose ids count rows instead of following time).
async fn time_ranges_find_every_row_in_them_whatever_wrote_it(url: String) {
    let day = 86_400_000_000_000i64;
    let store = history(url.clone()).await;
    store
        .append(vec![
            record(ResponseKind::Contact, "a", "GOLD", None, 5 * day + 10),
            // The clock went back between two commits.
            record(ResponseKind::Contact, "b", "SILVER", None, 3 * day),
        ])
        .await
        .unwrap();
    store
        .append(vec![record(
            ResponseKind::Contact,
            "c",
            "BRONZE",
            None,
            4 * day + 1,
        )])
        .await
        .unwrap();
    let contacts = |since: i64| {
        let store = store.clone();
        async move { store.contacts_since(Timestamp(since)).await.unwrap() }
    };
    let at = |offer: &str, at: i64| (offer.to_string(), Timestamp(at));
    assert_eq!(
        contacts(4 * day).await,
        [at("BRONZE", 4 * day + 1), at("GOLD", 5 * day + 10)]
    );
    assert_eq!(contacts(2 * day).await.len(), 3);

    // As an earlier version wrote it: a counted id (0: below those PostgreSQL has given out),
    // at a time long after it.
    sqlx::any::install_default_drivers();
    let mut admin = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    admin
        .execute(
            format!(
                "INSERT INTO kairos_history (id, kind, treatment_code, offer, category, rule, segment, ip, zone, \
                 score, deployment, session_id, audience, at, issued_at, cross_session) \
                 VALUES (0, 'contact', 'old', 'OLD', NULL, 'r1', NULL, 'hero', 'home', 1.0, 1, 's0', 'customer:1', {}, 0, 0)",
                6 * day
            )
            .as_str(),
        )
        .await
        .unwrap();
    let reopened = history(url.clone()).await;
    assert_eq!(
        reopened.contacts_since(Timestamp(4 * day)).await.unwrap(),
        [
            at("BRONZE", 4 * day + 1),
            at("GOLD", 5 * day + 10),
            at("OLD", 6 * day)
        ]
    );
    let sql = kairos_store::Sql::open(&url).await.unwrap();
    let mut offers: Vec<String> = sql
        .performance(Timestamp(4 * day))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.offer)
        .collect();
    offers.sort();
    assert_eq!(offers, ["BRONZE", "GOLD", "OLD"]);
}

/// Twenty sessions of one customer, on two instances, each from the same stored state and
/// each adding one contact, one of them an accept: every contact and the accept are kept.
async fn sessions_of_one_audience_writing_at_once_all_keep_what_they_did(url: String) {
    let key = "customer:customer_id=7";
    let stores = [
        Arc::new(history(url.clone()).await),
        Arc::new(history(url).await),
    ];
    let mut base = AudienceState::default();
    base.offers
        .get_or_insert("GOLD")
        .record_contact(Timestamp(1));
    stores[0].save_audience(key, &base).await.unwrap();
    let writes = (0..20).map(|i| {
        let mut mine = base.clone();
        let gold = mine.offers.get_or_insert("GOLD");
        gold.record_contact(Timestamp(100 + i));
        if i == 3 {
            gold.last_accept = Some(Timestamp(103));
        }
        let write = StateWrite {
            key: key.to_string(),
            base: Some(EncodedState::new(&base)),
            state: EncodedState::new(&mine),
        };
        let store = stores[i as usize % 2].clone();
        tokio::spawn(async move { store.write(Vec::new(), Some(write)).await })
    });
    let tasks: Vec<_> = writes.collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let stored = stores[0].load_audience(key).await.unwrap();
    let gold = stored.offers.get("GOLD").unwrap();
    assert_eq!(gold.total_contacts, 21, "one before, one from each session");
    assert_eq!(gold.recent_contacts.len(), 21);
    assert_eq!(gold.last_accept, Some(Timestamp(103)), "the accept is kept");
}

macro_rules! suite {
    (history: $($name:ident),* ; by_url: $($pname:ident),* $(,)?) => {
        mod on_sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(super::history(super::sqlite().unwrap()).await).await; } )*
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $pname() { super::$pname(super::sqlite().unwrap()).await; } )*
        }
        mod on_postgres {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() {
                if let Some((url, _schema)) = super::postgres().await { super::$name(super::history(url).await).await; }
            } )*
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $pname() {
                if let Some((url, _schema)) = super::postgres().await { super::$pname(url).await; }
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
    by_url:
    sessions_of_one_audience_writing_at_once_all_keep_what_they_did,
    a_failed_commit_writes_nothing_and_the_next_one_lands,
    time_ranges_find_every_row_in_them_whatever_wrote_it,
    profile_tables_are_imported_replaced_and_read_by_key,
    design_edits_conflict_only_on_the_same_component,
    concurrent_creates_of_different_components_all_land,
    concurrent_starts_on_a_fresh_database_all_come_up,
    a_schema_newer_than_this_build_is_refused,
    snapshots_land_while_runtimes_report,
    versions_deployments_and_reviews_are_recorded,
    users_and_token_digests_are_kept,
    performance_is_counted_per_offer_segment_zone_day_and_kind,
);
