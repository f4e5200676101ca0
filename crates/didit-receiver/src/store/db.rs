//! The SQLite file every durable path ends in: the schema, its version check, and the writes the
//! receiver's store and the brokers' consumers share.
//!
//! `events.dedup_key` is UNIQUE: a retry, even one arriving after a restart or through a broker
//! twice, is stored once and answered `duplicate`. `events` is the durable log; `sessions`
//! (latest status per session) is a view of it, brought up to date in the same transactions but
//! only every [`SESSION_FLUSH_EVENTS`] session events or [`SESSION_FLUSH_INTERVAL`], with
//! `meta.sessions_applied_seq` recording how far. Writing it per commit dirtied one random B-tree
//! page per event and cost a third of the store's throughput; coalesced, most updates share
//! pages. A crash loses nothing: opening the file replays the events after
//! `sessions_applied_seq`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::durable::Record;
use crate::process::SessionState;

/// The SQLite file used when `--store sqlite` names none: in the working directory.
pub(crate) const DEFAULT_SQLITE_PATH: &str = "didit-webhooks.db";

/// The schema this build writes; a file with another `user_version` is refused at start-up.
pub const SCHEMA_VERSION: i64 = 1;

/// Session updates held before they are written to `sessions`.
pub const SESSION_FLUSH_EVENTS: usize = 8192;
/// Longest a session update waits before it is written to `sessions`.
pub const SESSION_FLUSH_INTERVAL: Duration = Duration::from_millis(500);

/// WAL pages between automatic checkpoints (64 MiB at 4 KiB pages). SQLite's default, 1000,
/// copied the random index pages back into the database almost once per event; measured on the
/// typical mix, 1000 → 10000 pages raised after-commit throughput by about 40 %.
const WAL_AUTOCHECKPOINT_PAGES: u32 = 16384;

const SCHEMA: &str = "
CREATE TABLE events (
    seq             INTEGER PRIMARY KEY,
    dedup_key       TEXT NOT NULL UNIQUE,
    event_id        TEXT,
    webhook_type    TEXT,
    session_id      TEXT,
    status          TEXT,
    event_timestamp INTEGER,
    received_at     INTEGER NOT NULL,
    body            BLOB NOT NULL
);
CREATE TABLE sessions (
    session_id      TEXT PRIMARY KEY,
    status          TEXT NOT NULL,
    webhook_type    TEXT NOT NULL,
    event_timestamp INTEGER NOT NULL,
    event_seq       INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE meta (
    key             TEXT PRIMARY KEY,
    value           INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO meta (key, value) VALUES ('sessions_applied_seq', 0);
";

/// Why a store could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the directory {0} for the SQLite store: {1}")]
    CreateDir(PathBuf, std::io::Error),
    #[error("cannot open the SQLite store {0}: {1}")]
    Open(PathBuf, rusqlite::Error),
    #[error(
        "{0} is not a didit-receiver store (it has tables but no schema version); pass another --store path"
    )]
    Foreign(PathBuf),
    #[error(
        "{path} has schema version {found}, this receiver writes version {SCHEMA_VERSION}; use a matching receiver or another --store path"
    )]
    SchemaVersion { path: PathBuf, found: i64 },
    #[error(
        "{0} did not switch to WAL journaling (got `{1}`); is it on a filesystem without shared memory?"
    )]
    Journal(PathBuf, String),
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// One connection to a store file.
#[derive(Debug)]
pub struct Db {
    conn: Connection,
    /// Session updates not yet in `sessions`, coalesced by session id.
    pending: std::collections::HashMap<String, SessionRow>,
    last_flush: std::time::Instant,
}

#[derive(Clone, Debug)]
struct SessionRow {
    status: String,
    webhook_type: String,
    event_timestamp: i64,
    seq: i64,
}

impl SessionRow {
    /// Latest by the body's timestamp; on a tie the later-stored event wins.
    fn newer_than(&self, other: &SessionRow) -> bool {
        (self.event_timestamp, self.seq) >= (other.event_timestamp, other.seq)
    }
}

impl Db {
    /// Opens `path` for writing, creating the file, its directory and the schema on first use.
    pub fn open(path: &Path) -> Result<Db, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::CreateDir(dir.into(), e))?;
        }
        let conn = Connection::open(path).map_err(|e| StoreError::Open(path.into(), e))?;
        let mut db = Db::new(conn);
        db.prepare(path, true)?;
        db.catch_up_sessions()?;
        Ok(db)
    }

    fn new(conn: Connection) -> Db {
        Db {
            conn,
            pending: std::collections::HashMap::new(),
            last_flush: std::time::Instant::now(),
        }
    }

    /// Opens an existing store without writing to it (checks, tools, tests).
    pub fn open_read_only(path: &Path) -> Result<Db, StoreError> {
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| StoreError::Open(path.into(), e))?;
        let db = Db::new(conn);
        db.prepare(path, false)?;
        Ok(db)
    }

    fn prepare(&self, path: &Path, write: bool) -> Result<(), StoreError> {
        let c = &self.conn;
        // Reading the schema version is the first thing that touches the file: a file that is not
        // a database fails here, and says so.
        let version: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| StoreError::Open(path.into(), e))?;
        let tables: i64 = c.query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
            [],
            |r| r.get(0),
        )?;
        match (version, tables) {
            (0, 0) if write => {
                c.execute_batch(&format!(
                    "BEGIN; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
                ))?;
            }
            (0, 0) => return Err(StoreError::Foreign(path.into())),
            (0, _) => return Err(StoreError::Foreign(path.into())),
            (SCHEMA_VERSION, _) => {}
            (found, _) => {
                return Err(StoreError::SchemaVersion {
                    path: path.into(),
                    found,
                });
            }
        }
        if write {
            let mode: String = c.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError::Journal(path.into(), mode));
            }
            // FULL: a commit is on disk when it returns (WAL's NORMAL may lose the last commits
            // at a power cut, and we acknowledge on commit).
            c.execute_batch(&format!(
                "PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES};"
            ))?;
        }
        c.busy_timeout(Duration::from_secs(5))?;
        Ok(())
    }

    /// Stores `records` in one transaction; for each, `true` if it was new, `false` if its
    /// `dedup_key` was already stored. Nothing is kept unless this returns `Ok`.
    pub fn apply<'r>(
        &mut self,
        records: impl IntoIterator<Item = &'r Record>,
    ) -> Result<Vec<bool>, StoreError> {
        let mut fresh = Vec::new();
        let mut updates = Vec::new();
        let tx = self.conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO events (dedup_key, event_id, webhook_type, session_id, status,
                                     event_timestamp, received_at, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (dedup_key) DO NOTHING",
            )?;
            for r in records {
                let n = insert.execute(params![
                    r.dedup_key,
                    r.event_id,
                    r.webhook_type,
                    r.session_id,
                    r.status,
                    r.event_timestamp,
                    r.received_at,
                    r.body,
                ])?;
                let new = n == 1;
                if new
                    && let (Some(sid), Some(st), Some(ts)) =
                        (&r.session_id, &r.status, r.event_timestamp)
                {
                    let row = SessionRow {
                        status: st.clone(),
                        webhook_type: r.webhook_type.clone().unwrap_or_default(),
                        event_timestamp: ts,
                        seq: tx.last_insert_rowid(),
                    };
                    updates.push((sid.clone(), row));
                }
                fresh.push(new);
            }
        }
        // Held updates go in only once this commit has succeeded: a failed one leaves them as
        // they were (its events will come again).
        let due = self.pending.len() + updates.len() >= SESSION_FLUSH_EVENTS
            || self.last_flush.elapsed() >= SESSION_FLUSH_INTERVAL;
        if due {
            let mut all = self.pending.clone();
            merge(&mut all, updates.iter().cloned());
            write_sessions(&tx, &all)?;
            tx.commit()?;
            self.pending.clear();
            self.last_flush = std::time::Instant::now();
        } else {
            tx.commit()?;
            merge(&mut self.pending, updates);
        }
        Ok(fresh)
    }

    /// Writes every held session update now (shutdown, and before reading `sessions`).
    pub fn flush_sessions(&mut self) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        write_sessions(&tx, &self.pending)?;
        tx.commit()?;
        self.pending.clear();
        self.last_flush = std::time::Instant::now();
        Ok(())
    }

    /// Applies the events stored after `meta.sessions_applied_seq` (updates held in memory when
    /// the previous process died).
    fn catch_up_sessions(&mut self) -> Result<(), StoreError> {
        let applied: i64 = self.conn.query_row(
            "SELECT value FROM meta WHERE key = 'sessions_applied_seq'",
            [],
            |r| r.get(0),
        )?;
        let mut rows = std::collections::HashMap::new();
        {
            let mut st = self.conn.prepare(
                "SELECT seq, session_id, status, webhook_type, event_timestamp FROM events
                 WHERE seq > ?1 AND session_id IS NOT NULL AND status IS NOT NULL
                       AND event_timestamp IS NOT NULL
                 ORDER BY seq",
            )?;
            let found = st.query_map([applied], |r| {
                Ok((
                    r.get::<_, String>(1)?,
                    SessionRow {
                        seq: r.get(0)?,
                        status: r.get(2)?,
                        webhook_type: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                        event_timestamp: r.get(4)?,
                    },
                ))
            })?;
            for row in found {
                let (sid, row) = row?;
                merge(&mut rows, [(sid, row)]);
            }
        }
        if !rows.is_empty() {
            tracing::info!(
                sessions = rows.len(),
                "applying session updates that were not written before the last stop"
            );
            self.pending = rows;
            self.flush_sessions()?;
        }
        Ok(())
    }

    /// Every stored `event_id` (events without one are left out), in storage order.
    pub fn event_ids(&self) -> Result<Vec<String>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT event_id FROM events WHERE event_id IS NOT NULL ORDER BY seq")?;
        let ids = st
            .query_map([], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(ids)
    }

    /// Number of stored events.
    pub fn event_count(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The raw body stored for an `event_id`.
    pub fn body(&self, event_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT body FROM events WHERE event_id = ?1",
                [event_id],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The latest state of a session.
    pub fn session(&self, session_id: &str) -> Result<Option<SessionState>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT event_timestamp, status, webhook_type FROM sessions WHERE session_id = ?1",
                [session_id],
                |r| {
                    Ok(SessionState {
                        timestamp: r.get(0)?,
                        status: r.get(1)?,
                        webhook_type: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }
}

fn merge(
    into: &mut std::collections::HashMap<String, SessionRow>,
    updates: impl IntoIterator<Item = (String, SessionRow)>,
) {
    for (sid, row) in updates {
        match into.get(&sid) {
            Some(cur) if !row.newer_than(cur) => {}
            _ => {
                into.insert(sid, row);
            }
        }
    }
}

/// Upserts `rows` into `sessions` and advances `sessions_applied_seq` past them.
fn write_sessions(
    tx: &rusqlite::Transaction<'_>,
    rows: &std::collections::HashMap<String, SessionRow>,
) -> Result<(), StoreError> {
    // An older delivery arriving late does not roll a session back.
    let mut upsert = tx.prepare_cached(
        "INSERT INTO sessions (session_id, status, webhook_type, event_timestamp, event_seq)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (session_id) DO UPDATE SET
             status = excluded.status,
             webhook_type = excluded.webhook_type,
             event_timestamp = excluded.event_timestamp,
             event_seq = excluded.event_seq
         WHERE (excluded.event_timestamp, excluded.event_seq)
               >= (sessions.event_timestamp, sessions.event_seq)",
    )?;
    for (sid, r) in rows {
        upsert.execute(params![
            sid,
            r.status,
            r.webhook_type,
            r.event_timestamp,
            r.seq
        ])?;
    }
    // Every event up to the last stored one is now reflected.
    tx.execute(
        "UPDATE meta SET value = (SELECT coalesce(max(seq), 0) FROM events)
         WHERE key = 'sessions_applied_seq'",
        [],
    )?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::process::tests::NOW;

    /// A store path in a fresh folder of its own (its parent not yet created).
    pub(crate) fn temp_db(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("didit-sqlite-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join("sub").join("store.db")
    }

    fn record(key: &str, session: Option<&str>, status: &str, ts: i64) -> Record {
        Record {
            dedup_key: format!("e:{key}"),
            event_id: Some(key.into()),
            webhook_type: Some("status.updated".into()),
            session_id: session.map(str::to_owned),
            status: Some(status.into()),
            event_timestamp: Some(ts),
            received_at: NOW,
            body: key.as_bytes().to_vec(),
        }
    }

    #[test]
    fn creates_applies_and_deduplicates() {
        let path = temp_db("apply");
        let mut db = Db::open(&path).expect("creates file and directory");
        let a = record("a", Some("s1"), "In Progress", NOW - 10);
        let b = record("b", Some("s1"), "Approved", NOW);
        let late = record("c", Some("s1"), "Not Started", NOW - 20);
        assert_eq!(db.apply([&a, &b]).expect("commits"), vec![true, true]);
        assert_eq!(
            db.apply([&a, &late]).expect("commits"),
            vec![false, true],
            "a retry is stored once"
        );
        assert_eq!(db.event_count().expect("count"), 3);
        db.flush_sessions().expect("flush");
        let s = db.session("s1").expect("query").expect("session row");
        assert_eq!(
            (s.status.as_str(), s.timestamp),
            ("Approved", NOW),
            "a late, older delivery does not roll the session back"
        );
        assert_eq!(db.body("b").expect("query"), Some(b"b".to_vec()));
        // Updates held in memory when the process dies are replayed from the events at open.
        let d = record("d", Some("s2"), "Declined", NOW);
        assert_eq!(db.apply([&d]).expect("commits"), vec![true]);
        drop(db);
        let ro = Db::open_read_only(&path).expect("reopens");
        assert_eq!(
            ro.session("s2").expect("query"),
            None,
            "held, not yet written"
        );
        drop(ro);
        let db = Db::open(&path).expect("reopens for writing");
        let s2 = db.session("s2").expect("query").expect("replayed at open");
        assert_eq!(s2.status, "Declined");
        drop(db);
        // Reopening keeps everything; read-only sees the same.
        let ro = Db::open_read_only(&path).expect("reopens");
        assert_eq!(ro.event_ids().expect("ids"), vec!["a", "b", "c", "d"]);
    }

    #[test]
    fn refuses_foreign_files_and_other_schema_versions() {
        let path = temp_db("foreign");
        std::fs::create_dir_all(path.parent().expect("dir")).expect("dir");
        std::fs::write(
            &path,
            b"this is not a database, just some text long enough......",
        )
        .expect("write");
        let e = Db::open(&path).expect_err("not a database");
        assert!(matches!(e, StoreError::Open(..)), "{e}");
        assert!(e.to_string().contains("store.db"), "{e}");

        std::fs::remove_file(&path).expect("rm");
        let c = Connection::open(&path).expect("sqlite");
        c.execute_batch("CREATE TABLE other (x); ").expect("table");
        drop(c);
        let e = Db::open(&path).expect_err("foreign tables");
        assert!(matches!(e, StoreError::Foreign(_)), "{e}");

        std::fs::remove_file(&path).expect("rm");
        drop(Db::open(&path).expect("creates"));
        let c = Connection::open(&path).expect("sqlite");
        c.execute_batch("PRAGMA user_version = 99;")
            .expect("version");
        drop(c);
        let e = Db::open(&path).expect_err("newer schema");
        assert!(
            matches!(e, StoreError::SchemaVersion { found: 99, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("version 99"), "{e}");

        // A path whose directory cannot be created.
        let blocked = path.with_file_name("file-not-dir");
        std::fs::write(&blocked, b"x").expect("write");
        let e = Db::open(&blocked.join("x.db")).expect_err("parent is a file");
        assert!(matches!(e, StoreError::CreateDir(..)), "{e}");
    }
}
