//! A write-ahead log with group commit: append-only segment files in a directory, one writer
//! thread that gathers every append waiting at that moment into one `write` and one `fdatasync`,
//! then completes all of their waiters.
//!
//! Frame: `u32 length | u32 crc32(payload) | payload`, little-endian. A torn frame at the tail of
//! the last segment (a crash during a write) is cut off when the log is opened; nothing acknowledged
//! can be in it, since waiters complete only after the sync.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use tokio::sync::oneshot;

use crate::{Error, ErrorKind, Result};

const HEADER: usize = 8;
/// The largest payload a frame may hold (1 GiB): anything longer is a corrupt length.
const MAX_PAYLOAD: u32 = 1 << 30;
/// The most bytes gathered into one batch before it is written.
const MAX_BATCH_BYTES: usize = 32 << 20;

/// Where a frame is: its segment, the offset of its header, the length of its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Position {
    pub(super) segment: u64,
    pub(super) offset: u64,
    pub(super) len: u32,
}

#[derive(Debug)]
struct Append {
    payload: Vec<u8>,
    done: Option<oneshot::Sender<Result<Position>>>,
}

/// The log. Dropping it waits for the writer thread to write the appends already sent.
#[derive(Debug)]
pub(super) struct Wal {
    dir: PathBuf,
    tx: Mutex<Option<mpsc::Sender<Append>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    current: Arc<AtomicU64>,
    failed: Arc<AtomicBool>,
    /// `<dir>/lock`, held with an exclusive `flock` for as long as the log is open: a second
    /// process opening the same directory would interleave its frames with ours.
    _lock: File,
}

/// Takes the exclusive lock of the log directory `dir` (`<dir>/lock`), or says who to stop.
fn lock_dir(dir: &Path) -> Result<File> {
    let path = dir.join("lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| io_error(format!("cannot open {}", path.display()), e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(Error::new(
            ErrorKind::Unavailable,
            format!(
                "the queue directory {} is in use by another process: stop it or give this one another directory",
                dir.display()
            ),
        )),
        Err(fs::TryLockError::Error(e)) => {
            Err(io_error(format!("cannot lock {}", path.display()), e))
        }
    }
}

fn io_error(message: impl Into<String>, err: io::Error) -> Error {
    Error::new(ErrorKind::Backend, message).with_source(err)
}

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.log"))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The ids of the segments in `dir`, ascending.
fn list_segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut ids = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(id) = name
            .strip_suffix(".log")
            .and_then(|n| n.parse::<u64>().ok())
        {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// Replays one segment; returns the length of its valid prefix.
fn replay_segment(
    path: &Path,
    segment: u64,
    replay: &mut dyn FnMut(Position, Vec<u8>),
) -> io::Result<(u64, u64)> {
    let file = File::open(path)?;
    let total = file.metadata()?.len();
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut offset = 0u64;
    loop {
        let mut header = [0u8; HEADER];
        if total - offset < HEADER as u64 {
            break;
        }
        reader.read_exact(&mut header)?;
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
        let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        if len > MAX_PAYLOAD || total - offset - (HEADER as u64) < u64::from(len) {
            break;
        }
        let mut payload = vec![0u8; len as usize];
        reader.read_exact(&mut payload)?;
        if crc32fast::hash(&payload) != crc {
            break;
        }
        replay(
            Position {
                segment,
                offset,
                len,
            },
            payload,
        );
        offset += HEADER as u64 + u64::from(len);
    }
    Ok((offset, total))
}

impl Wal {
    /// Opens (creating) the log in `dir`, replays every valid frame in order through `replay`,
    /// and starts a new segment for appends.
    pub(super) fn open(
        dir: &Path,
        segment_bytes: u64,
        replay: &mut dyn FnMut(Position, Vec<u8>),
    ) -> Result<Self> {
        fs::create_dir_all(dir)
            .map_err(|e| io_error(format!("cannot create {}", dir.display()), e))?;
        let lock = lock_dir(dir)?;
        let segments = list_segments(dir)
            .map_err(|e| io_error(format!("cannot list {}", dir.display()), e))?;
        for (i, &id) in segments.iter().enumerate() {
            let path = segment_path(dir, id);
            let (valid, total) = replay_segment(&path, id, replay)
                .map_err(|e| io_error(format!("cannot read {}", path.display()), e))?;
            if valid < total {
                if i + 1 == segments.len() {
                    tracing::warn!(path = %path.display(), valid, total, "cutting a torn write off the log");
                    let file = OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .map_err(|e| io_error(format!("cannot open {}", path.display()), e))?;
                    file.set_len(valid)
                        .and_then(|()| file.sync_all())
                        .map_err(|e| io_error(format!("cannot truncate {}", path.display()), e))?;
                } else {
                    tracing::error!(path = %path.display(), valid, total, "corrupt frame inside the log, the rest of this segment is skipped");
                }
            }
        }
        let first = segments.last().map_or(1, |id| id + 1);
        let file = create_segment(dir, first)?;
        let current = Arc::new(AtomicU64::new(first));
        let failed = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let writer = Writer {
            dir: dir.to_owned(),
            segment_bytes,
            file,
            segment: first,
            len: 0,
            current: current.clone(),
            failed: failed.clone(),
        };
        let writer = std::thread::Builder::new()
            .name("faas-wal".to_owned())
            .spawn(move || writer.run(rx))
            .map_err(|e| io_error("cannot start the log writer", e))?;
        Ok(Wal {
            dir: dir.to_owned(),
            tx: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            current,
            failed,
            _lock: lock,
        })
    }

    fn send(&self, append: Append) -> Result<()> {
        if self.failed.load(Ordering::Acquire) {
            return Err(Error::new(
                ErrorKind::Backend,
                "the queue log failed to sync and is read-only",
            ));
        }
        let tx = self
            .tx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        tx.as_ref()
            .ok_or_else(|| Error::new(ErrorKind::Backend, "the queue log is closed"))?
            .send(append)
            .map_err(|_| Error::new(ErrorKind::Backend, "the queue log writer stopped"))
    }

    /// Appends `payload`; resolves once it is on disk.
    pub(super) async fn append(&self, payload: Vec<u8>) -> Result<Position> {
        let (done, wait) = oneshot::channel();
        self.send(Append {
            payload,
            done: Some(done),
        })?;
        wait.await
            .map_err(|_| Error::new(ErrorKind::Backend, "the queue log writer stopped"))?
    }

    /// Appends `payload` without waiting: it reaches the disk with the next synced batch (a batch
    /// of such appends alone is written without a sync).
    pub(super) fn append_nowait(&self, payload: Vec<u8>) -> Result<()> {
        self.send(Append {
            payload,
            done: None,
        })
    }

    /// Reads the payload at `pos` (blocking).
    pub(super) fn read(&self, pos: Position) -> Result<Vec<u8>> {
        let path = segment_path(&self.dir, pos.segment);
        let read = || -> io::Result<Vec<u8>> {
            let file = File::open(&path)?;
            let mut frame = vec![0u8; HEADER + pos.len as usize];
            file.read_exact_at(&mut frame, pos.offset)?;
            let crc = u32::from_le_bytes(frame[4..8].try_into().expect("4 bytes"));
            let payload = frame.split_off(HEADER);
            if crc32fast::hash(&payload) != crc {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "checksum mismatch",
                ));
            }
            Ok(payload)
        };
        read().map_err(|e| io_error(format!("cannot read {}", path.display()), e))
    }

    /// The segment appends currently go to.
    pub(super) fn current_segment(&self) -> u64 {
        self.current.load(Ordering::Acquire)
    }

    /// Deletes a segment that is no longer current.
    pub(super) fn remove_segment(&self, id: u64) -> Result<()> {
        if id >= self.current_segment() {
            return Err(Error::internal(format!("segment {id} is still written to")));
        }
        let path = segment_path(&self.dir, id);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(format!("cannot delete {}", path.display()), e)),
        }
    }

    /// The segments on disk, ascending.
    pub(super) fn segments(&self) -> Result<Vec<u64>> {
        list_segments(&self.dir)
            .map_err(|e| io_error(format!("cannot list {}", self.dir.display()), e))
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        fn take<T>(m: &mut Mutex<Option<T>>) -> Option<T> {
            m.get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take()
        }
        drop(take(&mut self.tx));
        if let Some(writer) = take(&mut self.writer)
            && writer.join().is_err()
        {
            tracing::error!("the queue log writer panicked");
        }
    }
}

fn create_segment(dir: &Path, id: u64) -> Result<File> {
    let path = segment_path(dir, id);
    let file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)
        .map_err(|e| io_error(format!("cannot create {}", path.display()), e))?;
    sync_dir(dir).map_err(|e| io_error(format!("cannot sync {}", dir.display()), e))?;
    Ok(file)
}

struct Writer {
    dir: PathBuf,
    segment_bytes: u64,
    file: File,
    segment: u64,
    len: u64,
    current: Arc<AtomicU64>,
    failed: Arc<AtomicBool>,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Append>) {
        let mut batch = Vec::new();
        while let Ok(first) = rx.recv() {
            let mut bytes = first.payload.len();
            batch.push(first);
            while bytes < MAX_BATCH_BYTES {
                match rx.try_recv() {
                    Ok(next) => {
                        bytes += next.payload.len();
                        batch.push(next);
                    }
                    Err(_) => break,
                }
            }
            let result = self.write_batch(&batch);
            for (append, result) in batch.drain(..).zip(result) {
                if let Some(done) = append.done {
                    let _ = done.send(result);
                }
            }
        }
    }

    /// Writes and syncs a batch; one result per append.
    fn write_batch(&mut self, batch: &[Append]) -> Vec<Result<Position>> {
        let start_len = self.len;
        match self.try_write_batch(batch) {
            Ok(positions) => positions.into_iter().map(Ok).collect(),
            Err((err, synced)) => {
                tracing::error!(error = %err, "queue log write failed");
                if synced {
                    // The data may or may not be on disk after a failed fsync: stop accepting.
                    self.failed.store(true, Ordering::Release);
                } else if self.file.set_len(start_len.min(self.len)).is_ok() {
                    self.len = start_len.min(self.len);
                }
                let message = err.to_string();
                batch
                    .iter()
                    .map(|_| {
                        Err(Error::new(ErrorKind::Backend, "cannot write the queue log")
                            .with_source(io::Error::new(err.kind(), message.clone())))
                    })
                    .collect()
            }
        }
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.sync_data()?;
        let next = self.segment + 1;
        let file = create_segment(&self.dir, next).map_err(|e| io::Error::other(e.to_string()))?;
        self.file = file;
        self.segment = next;
        self.len = 0;
        self.current.store(next, Ordering::Release);
        Ok(())
    }

    /// The error says whether it came from the sync (true) or from the write (false).
    fn try_write_batch(&mut self, batch: &[Append]) -> Result<Vec<Position>, (io::Error, bool)> {
        let mut positions = Vec::with_capacity(batch.len());
        let mut out = BufWriter::with_capacity(1 << 20, &self.file);
        let mut len = self.len;
        for append in batch {
            if len >= self.segment_bytes && len > 0 {
                out.flush().map_err(|e| (e, false))?;
                drop(out);
                self.len = len;
                self.rotate().map_err(|e| (e, true))?;
                len = 0;
                out = BufWriter::with_capacity(1 << 20, &self.file);
            }
            let payload_len = u32::try_from(append.payload.len())
                .ok()
                .filter(|l| *l <= MAX_PAYLOAD)
                .ok_or_else(|| {
                    (
                        io::Error::other("payload too large for the queue log"),
                        false,
                    )
                })?;
            let mut header = [0u8; HEADER];
            header[..4].copy_from_slice(&payload_len.to_le_bytes());
            header[4..].copy_from_slice(&crc32fast::hash(&append.payload).to_le_bytes());
            out.write_all(&header).map_err(|e| (e, false))?;
            out.write_all(&append.payload).map_err(|e| (e, false))?;
            positions.push(Position {
                segment: self.segment,
                offset: len,
                len: payload_len,
            });
            len += (HEADER + append.payload.len()) as u64;
        }
        out.flush().map_err(|e| (e, false))?;
        drop(out);
        self.len = len;
        // A batch of lazy appends only (nobody waits) is written, not synced: it reaches the disk
        // with the next synced batch, or with the kernel's writeback.
        if batch.iter().any(|a| a.done.is_some()) {
            self.file.sync_data().map_err(|e| (e, true))?;
        }
        Ok(positions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reopen(dir: &Path) -> (Wal, Vec<(Position, Vec<u8>)>) {
        let mut seen = Vec::new();
        let wal = Wal::open(dir, 1 << 20, &mut |pos, payload| seen.push((pos, payload))).unwrap();
        (wal, seen)
    }

    #[test]
    fn a_directory_is_opened_by_one_log_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = reopen(dir.path());
        let Err(err) = Wal::open(dir.path(), 1 << 20, &mut |_, _| {}) else {
            panic!("a second log on the same directory is refused");
        };
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert!(
            err.to_string().contains("in use by another process"),
            "{err}"
        );
        drop(wal);
        let (_again, _) = reopen(dir.path());
    }

    #[tokio::test]
    async fn appends_survive_reopen_and_torn_tails_are_cut() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, seen) = reopen(dir.path());
        assert!(seen.is_empty());
        let a = wal.append(b"first".to_vec()).await.unwrap();
        let b = wal.append(b"second".to_vec()).await.unwrap();
        assert_eq!(wal.read(b).unwrap(), b"second");
        assert_eq!((a.segment, a.offset), (b.segment, 0));
        drop(wal);
        // A crash in the middle of a write leaves half a frame behind.
        let path = segment_path(dir.path(), a.segment);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&[200, 0, 0, 0, 1, 2]).unwrap();
        drop(file);
        let (wal, seen) = reopen(dir.path());
        let payloads: Vec<_> = seen.iter().map(|(_, p)| p.as_slice()).collect();
        assert_eq!(payloads, [b"first".as_slice(), b"second"]);
        assert!(wal.current_segment() > a.segment);
        wal.append(b"third".to_vec()).await.unwrap();
        drop(wal);
        let (_wal, seen) = reopen(dir.path());
        assert_eq!(seen.len(), 3);
    }

    #[tokio::test]
    async fn concurrent_appends_are_all_durable_and_segments_rotate() {
        let dir = tempfile::tempdir().unwrap();
        let mut seen = 0;
        let wal = Arc::new(Wal::open(dir.path(), 4096, &mut |_, _| seen += 1).unwrap());
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let wal = wal.clone();
                tokio::spawn(async move { wal.append(vec![i as u8; 100]).await.unwrap() })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let segments = wal.segments().unwrap();
        assert!(segments.len() > 2, "{segments:?}");
        wal.remove_segment(segments[0]).unwrap();
        assert!(wal.remove_segment(wal.current_segment()).is_err());
        drop(wal);
        let mut payloads = Vec::new();
        let _wal = Wal::open(dir.path(), 4096, &mut |_, p| payloads.push(p)).unwrap();
        assert!(
            payloads.len() < 200 && payloads.len() > 150,
            "{}",
            payloads.len()
        );
        assert!(payloads.iter().all(|p| p.len() == 100));
    }
}
