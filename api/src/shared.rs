//! The live state that replicas share, in PostgreSQL (`allot serve --database`):
//! events, the plan index (activations), the audit log and the replicas'
//! progress. Without `--database` the service keeps them in SQLite in the plan
//! store ([`crate::live`]); the code above [`crate::live::LiveDb`] is the same.
//!
//! How replicas stay in step:
//! * **Events** are appended under a transaction-scoped advisory lock, so their
//!   sequence numbers commit in order, and `pg_notify('allot_events')` wakes the
//!   other replicas, which apply every event after the last one they applied, in
//!   sequence order (so all replicas fold the same events in the same order). A
//!   replica also polls every [`POLL_INTERVAL`], so a lost notification (a
//!   dropped connection) delays an event by at most that much.
//! * **Consent** changes are acknowledged only once every live replica (a
//!   heartbeat within [`REPLICA_LIVENESS`]) reports it applied, or after
//!   [`CONSENT_WAIT`], naming the replicas that have not: a withdrawal is then
//!   in force everywhere before the caller hears it was recorded.
//! * **Activation** appends to `allot_plan_activations` (under an advisory
//!   lock, the history read and the row added in one transaction: the rule is
//!   [`crate::live::LiveDb::activate`]'s, the same as the embedded database's)
//!   and notifies `allot_plans`; every replica reloads the newest row's version.
//!   Compaction takes the same lock, so it never deletes stock moves a
//!   version being activated needs ([`crate::events::EventLog::compact`]),
//!   and it never deletes an event that a live replica (a heartbeat within
//!   [`REPLICA_LIVENESS`]) or the compacting one has not applied yet; a
//!   replica catching up folds the consent snapshot's rows past what it
//!   applied with the events ([`crate::events::EventLog::catch_up`]), so one
//!   that was silent longer misses no withdrawal either.
//! * **Acknowledged means committed**: PostgreSQL has made the event durable
//!   before the replica answers 202, so killing a replica loses none.
//!
//! Migrations (`api/migrations/*.sql`, the same as the embedded SQLite
//! database's, see [`crate::live`]) ship in the binary and are applied on
//! start, once, under an advisory lock, recorded in `allot_schema_migrations`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use allot_scenarios::plans::store::Activation;
use allot_scenarios::StoreError;
use chrono::{DateTime, Utc};
use postgres::{Client, GenericClient, NoTls};
use thiserror::Error;

use crate::live::fault::fault;
use crate::live::rows::{Changes, HistoryExists, ImportEvent, ImportRows, Recorded};
use crate::live::schema::{render, Dialect, ACTIVATIONS, ACTIVE_PLAN, COUNT_ACTIVATIONS, INSERT_ACTIVATION, MIGRATIONS};

/// Advisory lock keys (arbitrary, fixed): migrations, and the event sequence.
const MIGRATION_LOCK: i64 = 0x616c_6c6f_7401;
const EVENT_LOCK: i64 = 0x616c_6c6f_7402;
pub(crate) const ACTIVATION_LOCK: i64 = 0x616c_6c6f_7403;
/// Key of the advisory lock maintenance takes (the audit's merge, reads and
/// erasures, the events' compaction), so a merge never moves records between
/// a reader's two queries, and two replicas never compact at once. Whoever
/// takes more than one of the locks takes them in the order events,
/// maintenance, activations.
pub(crate) const MAINTENANCE_LOCK: i64 = 0x616c_6c6f_7404;

/// Notification channels.
pub const EVENTS_CHANNEL: &str = "allot_events";
/// Channel of plan activations.
pub const PLANS_CHANNEL: &str = "allot_plans";

/// How often a replica looks for new events and activations without a notification.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// A replica whose heartbeat is older than this is not waited for.
pub const REPLICA_LIVENESS: Duration = Duration::from_secs(3);
/// Longest a consent change waits for the other replicas to apply it.
pub const CONSENT_WAIT: Duration = Duration::from_secs(2);

/// Longest wait for a new connection to the database.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

fn connect_config(url: &str) -> Result<postgres::Config, SharedError> {
    let mut config: postgres::Config = url.parse()?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    Ok(config)
}

/// Why the shared state could not be read or written.
#[derive(Debug, Error)]
pub enum SharedError {
    /// PostgreSQL refused or failed.
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] postgres::Error),
    /// A stored row does not parse.
    #[error("a malformed row in {table}: {reason}")]
    Corrupt {
        /// Table.
        table: &'static str,
        /// Why.
        reason: String,
    },
    /// An old activation history would be appended after the database's own.
    #[error(transparent)]
    HistoryExists(#[from] HistoryExists),
}

impl From<SharedError> for std::io::Error {
    fn from(e: SharedError) -> Self {
        std::io::Error::other(e.to_string())
    }
}

/// A connection to the shared state, for one replica.
pub struct SharedLive {
    url: String,
    replica: String,
    client: Mutex<Client>,
}

impl std::fmt::Debug for SharedLive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedLive").field("replica", &self.replica).finish_non_exhaustive()
    }
}

impl SharedLive {
    /// Connects as replica `replica` and applies any pending migration.
    pub fn connect(url: &str, replica: &str) -> Result<Self, SharedError> {
        let mut client = connect_config(url)?.connect(NoTls)?;
        migrate(&mut client)?;
        Ok(SharedLive { url: url.to_string(), replica: replica.to_string(), client: Mutex::new(client) })
    }

    /// This replica's name.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// A second connection to the same database (for a thread of its own).
    /// Gives up connecting after [`CONNECT_TIMEOUT`], so that a replica cut
    /// off by the network is not stuck connecting.
    pub fn reconnect(&self) -> Result<Client, SharedError> {
        Ok(connect_config(&self.url)?.connect(NoTls)?)
    }

    /// The replica's connection; a closed one (the database restarted, the
    /// network dropped it) is replaced, so the replica syncs again, and stops
    /// answering the fallback, once the database is back.
    fn client(&self) -> std::sync::MutexGuard<'_, Client> {
        let mut client = self.client.lock().unwrap_or_else(|e| e.into_inner());
        if client.is_closed() {
            match self.reconnect() {
                Ok(fresh) => *client = fresh,
                Err(e) => tracing::debug!(error = %e, "reconnecting to the shared database"),
            }
        }
        client
    }

    /// Records an event unless its (kind, id) was recorded before (by any
    /// replica): the check and the insert run under the event lock, in one
    /// transaction; durable when this returns `New`.
    /// `guard`, when given, runs before the insert under the activation lock
    /// too (taken after the events'), and refuses the event by its error.
    pub fn record_event(
        &self,
        kind: &str,
        event_id: &str,
        body: &str,
        guard: Option<&mut dyn FnMut(&mut postgres::Transaction<'_>) -> Result<Result<(), StoreError>, SharedError>>,
    ) -> Result<Result<Recorded, StoreError>, SharedError> {
        let mut client = self.client();
        let mut tx = client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&EVENT_LOCK])?;
        if let Some(row) = tx.query_opt("SELECT body::text FROM allot_events WHERE kind = $1 AND event_id = $2", &[&kind, &event_id])? {
            return Ok(Ok(Recorded::Existing(row.get(0))));
        }
        if let Some(guard) = guard {
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&ACTIVATION_LOCK])?;
            if let Err(e) = guard(&mut tx)? {
                return Ok(Err(e));
            }
        }
        let seq: i64 = tx
            .query_one(
                "INSERT INTO allot_events (kind, event_id, body, replica) VALUES ($1, $2, CAST($3::text AS jsonb), $4) RETURNING seq",
                &[&kind, &event_id, &body, &self.replica],
            )?
            .get(0);
        tx.execute("SELECT pg_notify($1, $2)", &[&EVENTS_CHANNEL, &seq.to_string()])?;
        fault("before_commit");
        tx.commit()?;
        fault("after_commit");
        Ok(Ok(Recorded::New(seq)))
    }

    /// What a replica that applied every event up to `seq` folds next
    /// ([`crate::live::schema::CHANGES_AFTER`]: one statement).
    pub fn changes_after(&self, seq: i64) -> Result<Changes, SharedError> {
        let rows = self.client().query(crate::live::schema::CHANGES_AFTER, &[&seq])?;
        let mut changes = Changes::default();
        for r in &rows {
            changes.push(r.get::<_, i32>(0).into(), r.get(1), r.get(2), r.get(3));
        }
        Ok(changes)
    }

    /// The newest activation: its sequence number and version.
    pub(crate) fn active_plan(&self) -> Result<Option<(i64, String)>, SharedError> {
        let row = self.client().query_opt(ACTIVE_PLAN, &[])?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    /// The activation history, oldest first.
    pub(crate) fn activations(&self) -> Result<Vec<Activation>, SharedError> {
        read_activations(&mut *self.client())
    }

    /// Reads the history and records what `decide` makes of it (with what
    /// else it reads in the transaction), in one transaction under the
    /// activation lock (so activations from every replica and process
    /// serialize, and compactions with them), and tells every replica.
    pub(crate) fn change_activation(
        &self,
        decide: impl FnOnce(&mut postgres::Transaction<'_>, &[Activation]) -> Result<Result<Activation, StoreError>, SharedError>,
    ) -> Result<Result<Activation, StoreError>, SharedError> {
        let mut client = self.client();
        let mut tx = client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&ACTIVATION_LOCK])?;
        let history = read_activations(&mut tx)?;
        let activation = match decide(&mut tx, &history)? {
            Ok(a) => a,
            Err(e) => return Ok(Err(e)),
        };
        insert_activation(&mut tx, &self.replica, &activation)?;
        tx.execute("SELECT pg_notify($1, $2)", &[&PLANS_CHANNEL, &activation.plan_id])?;
        tx.commit()?;
        Ok(Ok(activation))
    }

    /// Records that this replica has applied every event up to `applied_seq`.
    pub fn heartbeat(&self, applied_seq: i64) -> Result<(), SharedError> {
        self.client().execute(
            "INSERT INTO allot_replicas (name, applied_seq, heartbeat_at) VALUES ($1, $2, now())
             ON CONFLICT (name) DO UPDATE SET applied_seq = EXCLUDED.applied_seq, heartbeat_at = now()",
            &[&self.replica, &applied_seq],
        )?;
        Ok(())
    }

    /// Waits until every other live replica has applied event `seq`, at most
    /// `timeout`; returns the replicas that had not.
    pub fn wait_applied(&self, seq: i64, timeout: Duration) -> Result<Vec<String>, SharedError> {
        let started = Instant::now();
        let liveness = format!("{} milliseconds", REPLICA_LIVENESS.as_millis());
        loop {
            let rows = self.client().query(
                "SELECT name FROM allot_replicas
                 WHERE name <> $1 AND applied_seq < $2 AND heartbeat_at > now() - CAST($3::text AS interval) ORDER BY name",
                &[&self.replica, &seq, &liveness],
            )?;
            let pending: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
            if pending.is_empty() || started.elapsed() >= timeout {
                return Ok(pending);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Inserts or replaces a planning job's record.
    pub fn save_job(&self, job_id: &str, body: &str) -> Result<(), SharedError> {
        self.client().execute(
            "INSERT INTO allot_jobs (job_id, body) VALUES ($1, CAST($2::text AS jsonb))
             ON CONFLICT (job_id) DO UPDATE SET body = EXCLUDED.body, updated_at = now()",
            &[&job_id, &body],
        )?;
        Ok(())
    }

    /// Every planning job's record, oldest first.
    pub fn jobs(&self) -> Result<Vec<String>, SharedError> {
        let rows = self.client().query("SELECT body::text FROM allot_jobs ORDER BY updated_at, job_id", &[])?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Imports an old file-mode log in one transaction (see [`crate::live::import`]).
    /// `rest` stores the audit records in the same transaction (the audit's
    /// format lives with the live state, which calls this), and the old
    /// store's compaction point. Every lock the import may need is taken
    /// first, in the order the other writers take them (events, then
    /// maintenance, then activations): a compaction then never moves the
    /// point between the import's read and write, an erasure never misses
    /// the imported events, and no activation checks the old point.
    pub(crate) fn import<'r>(
        &self,
        file: &str,
        rows: &'r ImportRows,
        events: impl FnOnce(&mut postgres::Transaction<'_>) -> Result<std::borrow::Cow<'r, [ImportEvent]>, SharedError>,
        rest: impl FnOnce(&mut postgres::Transaction<'_>) -> Result<(), SharedError>,
    ) -> Result<(), SharedError> {
        let mut client = self.client();
        let mut tx = client.transaction()?;
        for lock in [EVENT_LOCK, MAINTENANCE_LOCK, ACTIVATION_LOCK] {
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock])?;
        }
        // Another replica starting on the same store may have imported it
        // since this one looked: nothing to do then.
        if tx.query_opt("SELECT 1 FROM allot_imports WHERE file = $1", &[&file])?.is_some() {
            return Ok(());
        }
        let events = events(&mut tx)?;
        for (kind, id, body) in events.iter() {
            tx.execute(
                "INSERT INTO allot_events (kind, event_id, body, replica) VALUES ($1, $2, CAST($3::text AS jsonb), $4) ON CONFLICT (kind, event_id) DO NOTHING",
                &[&kind.as_str(), id, body, &self.replica],
            )?;
        }
        rest(&mut tx)?;
        if !rows.activations.is_empty() {
            let existing: i64 = tx.query_one(COUNT_ACTIVATIONS, &[])?.get(0);
            if existing > 0 {
                return Err(HistoryExists { file: file.to_string(), existing }.into());
            }
            for a in &rows.activations {
                insert_activation(&mut tx, &self.replica, a)?;
            }
            tx.execute("SELECT pg_notify($1, '')", &[&PLANS_CHANNEL])?;
        }
        tx.execute("INSERT INTO allot_imports (file, rows) VALUES ($1, $2)", &[&file, &rows.len_with(events.len())])?;
        tx.execute("SELECT pg_notify($1, '0')", &[&EVENTS_CHANNEL])?;
        tx.commit()?;
        Ok(())
    }
}

/// The activation history, oldest first.
fn read_activations(client: &mut impl GenericClient) -> Result<Vec<Activation>, SharedError> {
    let rows = client.query(ACTIVATIONS, &[])?;
    Ok(rows.iter().map(|r| Activation { plan_id: r.get(1), action: r.get(2), at: r.get::<_, DateTime<Utc>>(3) }).collect())
}

fn insert_activation(client: &mut impl GenericClient, replica: &str, a: &Activation) -> Result<i64, SharedError> {
    Ok(client.query_one(INSERT_ACTIVATION, &[&a.plan_id, &a.action, &replica, &a.at])?.get(0))
}

/// A connection listening for events and activations.
pub struct Listener {
    client: Client,
}

impl Listener {
    /// Listens on both channels.
    pub fn new(shared: &SharedLive) -> Result<Self, SharedError> {
        let mut client = shared.reconnect()?;
        client.batch_execute(&format!("LISTEN {EVENTS_CHANNEL}; LISTEN {PLANS_CHANNEL};"))?;
        Ok(Listener { client })
    }

    /// Waits for a notification, at most `timeout`; drains any others waiting.
    /// `Ok(true)` when one came.
    pub fn wait(&mut self, timeout: Duration) -> Result<bool, SharedError> {
        use postgres::fallible_iterator::FallibleIterator;
        let mut notifications = self.client.notifications();
        if notifications.timeout_iter(timeout).next()?.is_none() {
            return Ok(false);
        }
        // `iter` does not block: it drains what has already arrived.
        while notifications.iter().next()?.is_some() {}
        Ok(true)
    }
}

fn migrate(client: &mut Client) -> Result<(), SharedError> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS allot_schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")?;
    for &(version, sql) in MIGRATIONS {
        let done = tx.query_opt("SELECT 1 FROM allot_schema_migrations WHERE version = $1", &[&version])?.is_some();
        if !done {
            tx.batch_execute(&render(sql, Dialect::Postgres))?;
            tx.execute("INSERT INTO allot_schema_migrations (version) VALUES ($1)", &[&version])?;
        }
    }
    tx.commit()?;
    Ok(())
}
