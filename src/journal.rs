//! The disposal journal file: JSON lines outside the database, one per
//! disposal, held DELETE, tombstone lift or identifier release
//! (`domain::journal`), each with a `seq` one higher than the line before.
//! The first line names the journal (a random id), so a database checked
//! against one journal is checked afresh against a new one.
//!
//! Appends are whole lines under an exclusive `flock` (a server and a CLI
//! command, or replicas sharing the file, interleave lines, never bytes),
//! followed by `fsync`: a committed change is on disk before its answer.
//! The `fsync` is a group's: appends that arrive while one runs share the
//! next, so concurrent DELETEs pay one per group, not one each (one each
//! held SCIM DELETE at 454 req/s; BENCHMARKS.md).
//! A line torn by a crash mid-write is cut off by the next append and
//! ignored by readers.

use crate::domain::journal::{JournalEntry, JournalRecord};
use crate::store::journal_queue::JournalSink;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

const FORMAT: &str = "custodian disposal journal v1";

#[derive(Serialize, Deserialize)]
struct Header {
    journal: String,
    id: String,
    created_at: String,
}

/// An open journal, appended to by `Db` after each commit that queued records.
pub struct Journal {
    path: PathBuf,
    state: Mutex<State>,
    /// The same file, for `fsync` outside `state`'s lock.
    sync_file: File,
    synced: Mutex<Synced>,
    sync_done: Condvar,
}

/// Group `fsync`: appends are numbered as written; one `fsync` covers every
/// append written before it started.
#[derive(Default)]
struct Synced {
    /// Appends written (numbered from 1).
    written: u64,
    /// Appends known on disk.
    durable: u64,
    /// An `fsync` is running.
    running: bool,
    /// A failed `fsync`: permanent. Linux may drop the unwritten pages and
    /// report the error once, so a later `fsync` that succeeds proves
    /// nothing about the lines before it; every append fails from then on
    /// (the server logs it; a restart reopens the file).
    failed: Option<String>,
}

struct State {
    file: File,
    /// The file's length after our last read or write: when it differs,
    /// another process appended since.
    len: u64,
    next_seq: u64,
}

/// What a journal file holds.
#[derive(Debug, Clone)]
pub struct Contents {
    pub id: String,
    pub entries: Vec<JournalEntry>,
}

impl Contents {
    pub fn last_seq(&self) -> u64 {
        self.entries.last().map_or(0, |e| e.seq)
    }
}

fn err(path: &Path, what: &str, e: impl std::fmt::Display) -> String {
    format!("disposal journal {}: {what}: {e}", path.display())
}

/// Parses complete lines; a last line without its newline is a torn write.
/// Returns the contents and the length of the complete lines.
fn parse(path: &Path, bytes: &[u8]) -> Result<(Option<Contents>, u64), String> {
    let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let text = std::str::from_utf8(&bytes[..complete]).map_err(|e| err(path, "not UTF-8", e))?;
    let mut lines = text.lines().enumerate();
    let Some((_, first)) = lines.next() else {
        return Ok((None, 0));
    };
    let header: Header = serde_json::from_str(first)
        .ok()
        .filter(|h: &Header| h.journal == FORMAT)
        .ok_or_else(|| err(path, "line 1", "not a Custodian disposal journal"))?;
    let mut entries: Vec<JournalEntry> = Vec::new();
    for (i, line) in lines {
        let e: JournalEntry =
            serde_json::from_str(line).map_err(|e| err(path, &format!("line {}", i + 1), e))?;
        if let Some(prev) = entries.last()
            && e.seq != prev.seq + 1
        {
            return Err(err(
                path,
                &format!("line {}", i + 1),
                format!("seq {} follows {}", e.seq, prev.seq),
            ));
        }
        entries.push(e);
    }
    let len = u64::try_from(complete).unwrap_or(u64::MAX);
    Ok((
        Some(Contents {
            id: header.id,
            entries,
        }),
        len,
    ))
}

/// Reads a journal; `None` when there is no file (nothing journaled yet).
pub fn read(path: &Path) -> Result<Option<Contents>, String> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(parse(path, &bytes)?.0),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(err(path, "cannot read", e)),
    }
}

/// Makes a rename or a new file in `dir` durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

impl Journal {
    /// Opens (or creates, with its header line) the journal at `path`.
    pub fn open(path: &Path) -> Result<Journal, String> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| err(path, "cannot create its directory", e))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| err(path, "cannot open", e))?;
        file.lock().map_err(|e| err(path, "cannot lock", e))?;
        let opened = Self::load(path, &mut file).and_then(|(contents, len)| {
            if contents.is_some() {
                return Ok((contents, len));
            }
            // New (or only a torn header): write the header.
            file.set_len(0)
                .map_err(|e| err(path, "cannot truncate", e))?;
            let header = Header {
                journal: FORMAT.into(),
                id: uuid::Uuid::new_v4().to_string(),
                created_at: crate::store::time::now(),
            };
            let mut line = serde_json::to_string(&header).map_err(|e| err(path, "header", e))?;
            line.push('\n');
            file.write_all(line.as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| err(path, "cannot write", e))?;
            if let Some(dir) = path.parent() {
                sync_dir(if dir.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    dir
                })
                .map_err(|e| err(path, "cannot sync its directory", e))?;
            }
            let len = u64::try_from(line.len()).unwrap_or(u64::MAX);
            Ok((None, len))
        });
        let unlocked = file.unlock();
        let (contents, len) = opened?;
        unlocked.map_err(|e| err(path, "cannot unlock", e))?;
        let sync_file = file.try_clone().map_err(|e| err(path, "cannot open", e))?;
        Ok(Journal {
            path: path.to_path_buf(),
            sync_file,
            synced: Mutex::new(Synced::default()),
            sync_done: Condvar::new(),
            state: Mutex::new(State {
                file,
                len,
                next_seq: contents.map_or(0, |c| c.last_seq()) + 1,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The whole file, under the caller's lock.
    fn load(path: &Path, file: &mut File) -> Result<(Option<Contents>, u64), String> {
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(0))
            .and_then(|_| file.read_to_end(&mut bytes))
            .map_err(|e| err(path, "cannot read", e))?;
        parse(path, &bytes)
    }

    fn append_locked(&self, st: &mut State, records: &[JournalRecord]) -> Result<(), String> {
        let path = &self.path;
        let on_disk = st
            .file
            .metadata()
            .map_err(|e| err(path, "cannot stat", e))?
            .len();
        if on_disk != st.len {
            // Another process appended (or a write was torn): re-read.
            let (contents, len) = Self::load(path, &mut st.file)?;
            if len != on_disk {
                st.file
                    .set_len(len)
                    .map_err(|e| err(path, "cannot cut a torn line", e))?;
            }
            st.len = len;
            st.next_seq = contents.map_or(0, |c| c.last_seq()) + 1;
        }
        let mut text = String::new();
        let mut seq = st.next_seq;
        for record in records {
            let line = serde_json::to_string(&JournalEntry {
                seq,
                record: record.clone(),
            })
            .map_err(|e| err(path, "cannot encode", e))?;
            text.push_str(&line);
            text.push('\n');
            seq += 1;
        }
        st.file
            .write_all(text.as_bytes())
            .map_err(|e| err(path, "cannot append", e))?;
        st.len += u64::try_from(text.len()).unwrap_or(u64::MAX);
        st.next_seq = seq;
        Ok(())
    }
}

impl Journal {
    fn synced(&self) -> std::sync::MutexGuard<'_, Synced> {
        self.synced.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Returns once append number `ticket` is on disk: runs an `fsync` if
    /// none is running, else waits for the running one and, if it started
    /// before this append was written, for the next.
    fn durable(&self, ticket: u64) -> Result<(), String> {
        let mut s = self.synced();
        loop {
            if let Some(e) = &s.failed {
                return Err(e.clone());
            }
            if s.durable >= ticket {
                return Ok(());
            }
            if s.running {
                s = self.sync_done.wait(s).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            s.running = true;
            let covers = s.written;
            drop(s);
            let r = self.sync_file.sync_data();
            s = self.synced();
            s.running = false;
            match r {
                Ok(()) => s.durable = s.durable.max(covers),
                Err(e) => s.failed = Some(err(&self.path, "cannot sync", e)),
            }
            self.sync_done.notify_all();
        }
    }
}

impl JournalSink for Journal {
    fn append(&self, records: &[JournalRecord]) -> Result<(), String> {
        let ticket = {
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            st.file
                .lock()
                .map_err(|e| err(&self.path, "cannot lock", e))?;
            let out = self.append_locked(&mut st, records);
            let unlocked = st.file.unlock();
            out?;
            unlocked.map_err(|e| err(&self.path, "cannot unlock", e))?;
            // Numbered while `state` is held, so numbers follow file order.
            let mut s = self.synced();
            s.written += 1;
            s.written
        };
        self.durable(ticket)
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    fn lifted(n: usize) -> JournalRecord {
        JournalRecord::Lifted {
            tenant_id: "t".into(),
            tombstone_ids: vec![format!("tomb-{n}")],
            at: "2026-12-05T00:00:00Z".into(),
        }
    }

    /// Appends from many threads at once (concurrent DELETEs sharing group
    /// `fsync`s) each return once written and synced, every line whole and
    /// numbered once, in file order.
    #[test]
    fn concurrent_appends_share_syncs_and_lose_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("j.jsonl");
        let j = std::sync::Arc::new(Journal::open(&path).expect("open"));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let j = std::sync::Arc::clone(&j);
                std::thread::spawn(move || {
                    for i in 0..25 {
                        j.append(&[lifted(t * 100 + i)]).expect("append");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        let s = j.synced();
        assert_eq!((s.written, s.durable, s.running), (200, 200, false));
        drop(s);
        let c = read(&path).expect("read").expect("some");
        assert_eq!(
            c.entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
            (1..=200).collect::<Vec<u64>>()
        );
        let mut ids: Vec<_> = c
            .entries
            .iter()
            .map(|e| format!("{:?}", e.record))
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 200, "every append's record, once");
    }

    /// Two handles on one file (a server and a CLI command) number their
    /// lines as one sequence; a torn last line is cut off by the next append.
    #[test]
    fn appends_share_one_sequence_and_survive_a_torn_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("j.jsonl");
        let a = Journal::open(&path).expect("open a");
        let b = Journal::open(&path).expect("open b");
        a.append(&[lifted(1), lifted(2)]).expect("a");
        b.append(&[lifted(3)]).expect("b");
        a.append(&[lifted(4)]).expect("a again");
        // A crash mid-line.
        let mut f = OpenOptions::new().append(true).open(&path).expect("raw");
        f.write_all(b"{\"seq\":5,\"type\":\"lif").expect("torn");
        let read_torn = read(&path).expect("read").expect("some");
        assert_eq!(read_torn.last_seq(), 4, "a torn line is not an entry");
        b.append(&[lifted(5)]).expect("b after the tear");
        let c = read(&path).expect("read").expect("some");
        assert_eq!(
            c.entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5]
        );
        assert_eq!(c.entries[4].record, lifted(5));
        // Reopening keeps the journal's id and its sequence.
        let again = Journal::open(&path).expect("reopen");
        again.append(&[lifted(6)]).expect("append");
        let d = read(&path).expect("read").expect("some");
        assert_eq!((d.last_seq(), d.id), (6, c.id));
        assert!(read(&dir.path().join("none")).expect("absent").is_none());
    }
}
