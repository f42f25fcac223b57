//! Redis keys a test made, removed when it ends; shared by the runtime's tests and, through a
//! `#[path]` module, the command line's.

/// A test's Redis keys (those under its prefix), deleted when it ends, passed or not.
pub struct Keys(pub String);

impl Drop for Keys {
    fn drop(&mut self) {
        let Ok(url) = std::env::var("KAIROS_TEST_REDIS_URL") else {
            return;
        };
        let pattern = format!("{}*", self.0);
        // Dropped inside the test's runtime: a thread of its own talks to Redis.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(delete_keys(&url, &pattern))
        })
        .join();
    }
}

/// Deletes the keys of the Redis server at `url` that match `pattern`.
pub async fn delete_keys(
    url: &str,
    pattern: &str,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let client = redis::Client::open(url)?;
    let mut redis = client.get_multiplexed_async_connection().await?;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(pattern)
        .query_async(&mut redis)
        .await?;
    if !keys.is_empty() {
        redis::cmd("DEL")
            .arg(keys)
            .query_async::<()>(&mut redis)
            .await?;
    }
    Ok(())
}
