//! Kairos storage: durable contact and response history, per-audience state, learning
//! statistics. One trait ([`Backend`]) with two real implementations, SQLite (the embedded
//! default) and PostgreSQL, and one [`HistoryStore`] in front of them that batches writes
//! (group commit): a record is acknowledged only once its batch is committed.

mod codec;
pub mod control;
mod log_vfs;
mod migrate;
mod profiles;
mod sql;
mod sqlite_writer;
mod statements;

pub use profiles::ProfileStore;
pub use sql::{PerformanceRow, Sql};

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use kairos_engine::world::{AudienceState, HistoryRecord, ResponseKind, Stats, Treatment};
use kairos_rules::time::Timestamp;
use tokio::sync::{mpsc, oneshot};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("unsupported database url '{0}': use sqlite://PATH or postgres://...")]
    Url(String),
    #[error("the history writer has stopped")]
    WriterStopped,
    #[error("writing history failed: {0}")]
    WriteFailed(String),
    /// Someone else changed the component since the revision the edit was based on.
    #[error("{path} was changed by someone else (now at revision {})", current.map_or("deleted".to_string(), |r| r.to_string()))]
    Conflict { path: String, current: Option<i64> },
    #[error("{0} does not exist")]
    NotFound(String),
    /// The database was migrated by a newer Kairos; this one would not know its tables.
    #[error(
        "the database's {store} schema is at version {applied}, newer than this kairos knows ({known}): run a newer kairos"
    )]
    SchemaTooNew {
        store: String,
        applied: i64,
        known: i64,
    },
}

/// Learning statistics of one offer, overall (`segment: None`) or within a segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfferStats {
    pub offer: String,
    pub segment: Option<String>,
    pub stats: Stats,
}

/// Everything written together in one transaction.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch {
    pub records: Vec<HistoryRecord>,
    /// Audience states written, in the order they were queued: each merged into what the
    /// ones before it left ([`resolve_states`]).
    pub states: Vec<StateWrite>,
}

/// One write of an audience's state: the state a session changed (`base`) and what it
/// changed it to. Without a base, the state replaces what is stored.
#[derive(Clone, Debug, PartialEq)]
pub struct StateWrite {
    pub key: String,
    pub base: Option<EncodedState>,
    pub state: EncodedState,
}

/// What to store for each audience `writes` name, given what is stored now: each write's
/// change applied, in order, to what the writes before it left. Sessions of one audience ID
/// writing at once (on one instance or several) so each keep what they did instead of the
/// last one's state replacing the others'. When nothing changed under a write since its
/// session read it, its state is stored as it is, unread; a state that cannot be read is
/// replaced rather than the write lost.
pub fn resolve_states(
    writes: &[StateWrite],
    stored: &HashMap<String, String>,
) -> Vec<(String, String)> {
    let mut order: Vec<&str> = Vec::new();
    let mut now: HashMap<&str, String> = HashMap::new();
    for w in writes {
        let current = match now.get(w.key.as_str()) {
            Some(text) => Some(text.as_str()),
            None => {
                order.push(&w.key);
                stored.get(&w.key).map(String::as_str)
            }
        };
        let next = match (current, &w.base) {
            (Some(current), Some(base)) if current != base.as_str() => {
                merge_encoded(current, base.as_str(), w.state.as_str())
                    .unwrap_or_else(|| w.state.as_str().to_string())
            }
            _ => w.state.as_str().to_string(),
        };
        now.insert(&w.key, next);
    }
    order
        .into_iter()
        .map(|key| (key.to_string(), now.remove(key).expect("each key written")))
        .collect()
}

fn merge_encoded(current: &str, base: &str, mine: &str) -> Option<String> {
    let (current, base, mine) = (
        codec::decode(current).ok()?,
        codec::decode(base).ok()?,
        codec::decode(mine).ok()?,
    );
    Some(codec::encode(&AudienceState::merged(
        &current, &base, &mine,
    )))
}

/// An audience's state as stored, encoded when it is queued: the encoding is the copy the
/// writer needs, where a clone of the state would be one allocation per offer it remembers.
#[derive(Clone, Debug, PartialEq)]
pub struct EncodedState(String);

impl EncodedState {
    pub fn new(state: &AudienceState) -> EncodedState {
        EncodedState(codec::encode(state))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a database must do for Kairos. Batching is [`WriteQueue`]'s; committing is the
/// backend's.
pub trait Backend: Send + Sync + 'static {
    /// Starts the history writer: it takes group after group from the queue, writes each in
    /// one transaction (all of it or, on an error, none) and acknowledges the group once its
    /// commit is on disk. It stops when the queue closes.
    fn start_writer(self: Arc<Self>, queue: WriteQueue) -> Result<(), StoreError>;
    /// The logged contact with this treatment code, if any.
    fn find_contact<'a>(
        &'a self,
        code: &'a str,
    ) -> BoxFuture<'a, Result<Option<Treatment>, StoreError>>;
    fn load_audience<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<AudienceState>, StoreError>>;
    /// Contacts and accepts per offer and per (offer, segment), for learning.
    fn offer_stats(&self) -> BoxFuture<'_, Result<Vec<OfferStats>, StoreError>>;
    /// Contact times since `since`, per offer (for global constraints after a restart).
    fn contacts_since(
        &self,
        since: Timestamp,
    ) -> BoxFuture<'_, Result<Vec<(String, Timestamp)>, StoreError>>;
    /// All records, oldest first (tests, exports).
    fn history(&self) -> BoxFuture<'_, Result<Vec<HistoryRecord>, StoreError>>;
}

type Ack = oneshot::Sender<Result<(), String>>;

/// Writes waiting for the history writer, each with its acknowledgment.
pub struct WriteQueue {
    queued: mpsc::Receiver<(Batch, Ack)>,
    counters: Arc<WriterCounters>,
}

/// Queued writes merged into one batch, acknowledged together.
pub struct Group {
    pub batch: Batch,
    acks: Vec<Ack>,
    gathered: Instant,
    counters: Arc<WriterCounters>,
}

/// What the history writer has done since the store opened, kept by the queue's two ends.
#[derive(Default)]
struct WriterCounters {
    queued_records: AtomicUsize,
    commits: AtomicU64,
    failed_commits: AtomicU64,
    writes: AtomicU64,
    records: AtomicU64,
    commit_micros: AtomicU64,
}

/// A reading of the history writer's counters, for operators: how far behind it is, and
/// how many writes each commit serves and how long one takes (the group commit at work).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WriterStats {
    /// Records queued and not yet committed.
    pub queue_depth: usize,
    /// Commits attempted, failed ones included.
    pub commits: u64,
    pub failed_commits: u64,
    /// Writes (one per event or session flush) and records in the commits that succeeded.
    pub writes: u64,
    pub records: u64,
    /// Time from gathering a group to its acknowledgment, summed over all commits.
    pub commit_time: Duration,
}

impl WriteQueue {
    /// Waits for a write, then takes whatever else is queued (up to `MAX_BATCH` records and
    /// states): what queued while the last group was committed goes into one commit.
    pub async fn next(&mut self) -> Option<Group> {
        let first = self.queued.recv().await?;
        Some(self.gather(first))
    }

    /// [`WriteQueue::next`] for a writer on a thread of its own (it must not be called from
    /// async code). Before it gathers, the thread gives way a few times to threads ready to
    /// run: under load, those are request handlers about to queue writes, which then join
    /// this group instead of waiting for the next commit; when no thread is waiting for the
    /// core, a yield returns at once. Contact load at 32 connections: 7 to 9 pairs per
    /// commit, log frames per pair 1.77 to 1.55.
    pub fn next_blocking(&mut self) -> Option<Group> {
        let first = self.queued.blocking_recv()?;
        for _ in 0..YIELDS_BEFORE_GATHERING {
            std::thread::yield_now();
        }
        Some(self.gather(first))
    }

    fn gather(&mut self, first: (Batch, Ack)) -> Group {
        let mut waiting = vec![first];
        let mut size = waiting[0].0.records.len() + waiting[0].0.states.len();
        while size < MAX_BATCH {
            match self.queued.try_recv() {
                Ok(item) => {
                    size += item.0.records.len() + item.0.states.len();
                    waiting.push(item);
                }
                Err(_) => break,
            }
        }
        let mut batch = Batch::default();
        for (part, _) in &mut waiting {
            batch.records.append(&mut part.records);
            batch.states.append(&mut part.states);
        }
        Group {
            batch,
            acks: waiting.into_iter().map(|(_, ack)| ack).collect(),
            gathered: Instant::now(),
            counters: self.counters.clone(),
        }
    }
}

impl Group {
    /// Answers every write of the group: once its commit is on disk, or with why it failed.
    pub fn acknowledge(self, result: Result<(), String>) {
        let counters = &self.counters;
        let records = self.batch.records.len();
        counters
            .queued_records
            .fetch_sub(records, Ordering::Relaxed);
        counters.commits.fetch_add(1, Ordering::Relaxed);
        counters.commit_micros.fetch_add(
            self.gathered.elapsed().as_micros() as u64,
            Ordering::Relaxed,
        );
        if result.is_ok() {
            counters
                .writes
                .fetch_add(self.acks.len() as u64, Ordering::Relaxed);
            counters
                .records
                .fetch_add(records as u64, Ordering::Relaxed);
        } else {
            counters.failed_commits.fetch_add(1, Ordering::Relaxed);
        }
        for ack in self.acks {
            let _ = ack.send(result.clone());
        }
    }
}

/// A queued write, resolved once it is on disk (or with why it failed). It is a future in its
/// own right and `Unpin`, so a caller may await it by reference and, if it stops waiting
/// before the end, hand what is left of the wait to someone else.
#[must_use = "a queued write is durable only once it has resolved"]
pub struct Commit(Option<oneshot::Receiver<Result<(), String>>>);

impl Future for Commit {
    type Output = Result<(), StoreError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(done) = self.0.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let answer = std::task::ready!(Pin::new(done).poll(cx));
        self.0 = None;
        Poll::Ready(
            answer
                .map_err(|_| StoreError::WriterStopped)?
                .map_err(StoreError::WriteFailed),
        )
    }
}

/// Room for one write in the history queue ([`HistoryStore::reserve`]).
pub struct Room<'a> {
    permit: mpsc::Permit<'a, (Batch, Ack)>,
    queued_records: &'a AtomicUsize,
}

impl Room<'_> {
    /// Queues records and an audience's state; an empty write gives the room back and
    /// resolves at once.
    pub fn enqueue(self, records: Vec<HistoryRecord>, state: Option<StateWrite>) -> Commit {
        if records.is_empty() && state.is_none() {
            return Commit(None);
        }
        let (ack, done) = oneshot::channel();
        self.queued_records
            .fetch_add(records.len(), Ordering::Relaxed);
        self.permit.send((
            Batch {
                records,
                states: state.into_iter().collect(),
            },
            ack,
        ));
        Commit(Some(done))
    }
}

/// The history and audience store the runtime uses: group-committed writes over a backend.
#[derive(Clone)]
pub struct HistoryStore {
    backend: Arc<dyn Backend>,
    queue: mpsc::Sender<(Batch, Ack)>,
    counters: Arc<WriterCounters>,
}

/// The most records and states one commit takes; more wait for the next.
const MAX_BATCH: usize = 4096;

/// How many times a blocking writer gives way before gathering a group (one did about as
/// well as three, ten no better).
const YIELDS_BEFORE_GATHERING: usize = 3;

impl HistoryStore {
    /// Opens (creating tables as needed) `sqlite://PATH` or `postgres://...`.
    pub async fn open(url: &str) -> Result<HistoryStore, StoreError> {
        HistoryStore::over(Arc::new(sql::Sql::open(url).await?))
    }

    /// Starts the backend's history writer (group commit: whatever is queued while one
    /// commit runs goes into the next, so one commit serves many requests).
    pub fn over(backend: Arc<dyn Backend>) -> Result<HistoryStore, StoreError> {
        let (queue, queued) = mpsc::channel::<(Batch, Ack)>(65_536);
        let counters = Arc::new(WriterCounters::default());
        backend.clone().start_writer(WriteQueue {
            queued,
            counters: counters.clone(),
        })?;
        Ok(HistoryStore {
            backend,
            queue,
            counters,
        })
    }

    /// Room for one write in the queue. Writes queued by one caller are committed in the
    /// order it queued them. Waiting for room is the only wait of queueing (when the writer
    /// is far behind): a caller takes room first and only then takes what it will write out
    /// of where it was kept, so that a caller dropped while it waits has lost nothing.
    pub async fn reserve(&self) -> Result<Room<'_>, StoreError> {
        let permit = self
            .queue
            .reserve()
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        Ok(Room {
            permit,
            queued_records: &self.counters.queued_records,
        })
    }

    /// Stores records and an audience's state durably; returns once they are committed.
    pub async fn write(
        &self,
        records: Vec<HistoryRecord>,
        state: Option<StateWrite>,
    ) -> Result<(), StoreError> {
        self.reserve().await?.enqueue(records, state).await
    }

    /// Stores records durably; returns once they are committed.
    pub async fn append(&self, records: Vec<HistoryRecord>) -> Result<(), StoreError> {
        self.write(records, None).await
    }

    /// Stores an audience's state in place of what is stored.
    pub async fn save_audience(&self, key: &str, state: &AudienceState) -> Result<(), StoreError> {
        let write = StateWrite {
            key: key.to_string(),
            base: None,
            state: EncodedState::new(state),
        };
        self.write(Vec::new(), Some(write)).await
    }

    /// What the history writer has done so far, for the runtime's metrics.
    pub fn writer_stats(&self) -> WriterStats {
        let c = &self.counters;
        WriterStats {
            queue_depth: c.queued_records.load(Ordering::Relaxed),
            commits: c.commits.load(Ordering::Relaxed),
            failed_commits: c.failed_commits.load(Ordering::Relaxed),
            writes: c.writes.load(Ordering::Relaxed),
            records: c.records.load(Ordering::Relaxed),
            commit_time: Duration::from_micros(c.commit_micros.load(Ordering::Relaxed)),
        }
    }

    pub async fn find_contact(&self, code: &str) -> Result<Option<Treatment>, StoreError> {
        self.backend.find_contact(code).await
    }

    pub async fn load_audience(&self, key: &str) -> Result<AudienceState, StoreError> {
        Ok(self.backend.load_audience(key).await?.unwrap_or_default())
    }

    pub async fn offer_stats(&self) -> Result<Vec<OfferStats>, StoreError> {
        self.backend.offer_stats().await
    }

    pub async fn contacts_since(
        &self,
        since: Timestamp,
    ) -> Result<Vec<(String, Timestamp)>, StoreError> {
        self.backend.contacts_since(since).await
    }

    /// Whether the history database answers: one indexed read.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.backend.find_contact("").await.map(|_| ())
    }

    pub async fn history(&self) -> Result<Vec<HistoryRecord>, StoreError> {
        self.backend.history().await
    }
}

pub(crate) fn kind_from_name(name: &str) -> Result<ResponseKind, StoreError> {
    match name {
        "contact" => Ok(ResponseKind::Contact),
        "accept" => Ok(ResponseKind::Accept),
        "reject" => Ok(ResponseKind::Reject),
        other => Err(StoreError::Corrupt(format!(
            "unknown record kind '{other}'"
        ))),
    }
}

pub use codec::{decode as decode_state, encode as encode_state};

/// Folds (offer, segment, kind, count) rows into learning statistics.
pub(crate) fn fold_stats(
    rows: Vec<(String, Option<String>, String, i64)>,
) -> Result<Vec<OfferStats>, StoreError> {
    let mut out: Vec<OfferStats> = Vec::new();
    for (offer, segment, kind, count) in rows {
        let kind = kind_from_name(&kind)?;
        let mut add = |segment: Option<String>| {
            let index = match out
                .iter()
                .position(|s| s.offer == offer && s.segment == segment)
            {
                Some(i) => i,
                None => {
                    out.push(OfferStats {
                        offer: offer.clone(),
                        segment,
                        stats: Stats::default(),
                    });
                    out.len() - 1
                }
            };
            match kind {
                ResponseKind::Contact => out[index].stats.contacts += count as u64,
                ResponseKind::Accept => out[index].stats.accepts += count as u64,
                ResponseKind::Reject => {}
            }
        };
        add(None);
        if segment.is_some() {
            add(segment);
        }
    }
    Ok(out)
}
