//! A PostgreSQL schema of its own for a test, on the server `KAIROS_TEST_POSTGRES_URL` names;
//! shared by the test suites that need one (included with `#[path]`).

use sqlx::Executor;

/// A test's PostgreSQL schema, dropped when the test ends, passed or not.
pub struct Schema {
    server: String,
    name: String,
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Dropped inside the test's runtime: a thread of its own talks to the server.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&server).await?;
                admin
                    .execute(format!("DROP SCHEMA IF EXISTS {name} CASCADE").as_str())
                    .await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        })
        .join();
    }
}

static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A URL whose connections use a fresh schema of the PostgreSQL server, and that schema; or
/// none, the skip reported, when no server is set (never in CI).
pub async fn postgres() -> Option<(String, Schema)> {
    let Ok(url) = std::env::var("KAIROS_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must set KAIROS_TEST_POSTGRES_URL"
        );
        // Written past the test harness's capture: a skip shows in every run, passed or not.
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"SKIPPED KAIROS_TEST_POSTGRES_URL is not set: the PostgreSQL run\n",
        );
        return None;
    };
    let schema = format!(
        "kairos_test_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    admin
        .execute(format!("CREATE SCHEMA {schema}").as_str())
        .await
        .unwrap();
    let separator = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{separator}options=-c%20search_path%3D{schema}");
    Some((
        scoped,
        Schema {
            server: url,
            name: schema,
        },
    ))
}
