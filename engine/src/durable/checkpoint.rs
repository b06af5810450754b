//! Checkpoints: an image of the state stores saved beside the decision
//! store, with the last sequence whose event the image is sure to hold, so
//! that a restart replays only the decisions after it (see
//! [`crate::state::image`] for why the replay is exact).
//!
//! The image is written to a temporary file, flushed to disk, then renamed
//! over the last one: a crash leaves the old checkpoint or the new one,
//! never half of one. The file starts with a magic string, a format
//! version and the sequence; the rest is the image in postcard.

use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::DurableError;
use super::store::{DecisionStore, Retention};
use crate::decision_log::DecisionLog;
use crate::overturn::OverturnLog;
use crate::pipeline::{Pipeline, StateImages};

/// The checkpoint's file name in the data directory.
const FILE_NAME: &str = "state.image";
const MAGIC: &[u8; 8] = b"ENFSTATE";
const FORMAT: u32 = 1;

/// A checkpoint read back.
pub struct Checkpoint {
    /// Every decision up to this sequence is in the images.
    pub covers: u64,
    /// And every overturn up to this one.
    pub covers_overturns: u64,
    /// The state stores' images.
    pub images: StateImages,
}

/// Save `images`, holding every decision up to `covers` and every
/// overturn up to `covers_overturns`, in `dir`.
pub fn save(
    dir: &Path,
    covers: u64,
    covers_overturns: u64,
    images: &StateImages,
) -> Result<(), DurableError> {
    let path = dir.join(FILE_NAME);
    let temporary = dir.join(format!("{FILE_NAME}.tmp"));
    let io = |e: std::io::Error| DurableError::io(&temporary, e);
    let file = File::create(&temporary).map_err(io)?;
    let mut out = BufWriter::new(file);
    out.write_all(MAGIC).map_err(io)?;
    out.write_all(&FORMAT.to_le_bytes()).map_err(io)?;
    out.write_all(&covers.to_le_bytes()).map_err(io)?;
    out.write_all(&covers_overturns.to_le_bytes()).map_err(io)?;
    postcard::to_io(images, &mut out)
        .map_err(|e| DurableError::Corrupt(format!("encoding the state image: {e}")))?;
    let file = out.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    fs::rename(&temporary, &path).map_err(io)?;
    // The rename is durable once the directory is.
    File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    Ok(())
}

/// The checkpoint in `dir`, if one was saved.
pub fn load(dir: &Path) -> Result<Option<Checkpoint>, DurableError> {
    let path = dir.join(FILE_NAME);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(DurableError::io(&path, e)),
    };
    let mut bytes = Vec::new();
    BufReader::new(file)
        .read_to_end(&mut bytes)
        .map_err(|e| DurableError::io(&path, e))?;
    let corrupt = |what: &str| DurableError::Corrupt(format!("{}: {what}", path.display()));
    if bytes.len() < 28 || &bytes[..8] != MAGIC {
        return Err(corrupt("not a state image"));
    }
    let format = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if format != FORMAT {
        return Err(corrupt(&format!(
            "format {format}; this engine reads {FORMAT}"
        )));
    }
    let covers = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
    let covers_overturns = u64::from_le_bytes(bytes[20..28].try_into().expect("8 bytes"));
    let images = postcard::from_bytes(&bytes[28..]).map_err(|e| corrupt(&e.to_string()))?;
    Ok(Some(Checkpoint {
        covers,
        covers_overturns,
        images,
    }))
}

/// What a checkpoint took.
#[derive(Clone, Copy, Debug)]
pub struct CheckpointStats {
    /// The last sequence it holds.
    pub covers: u64,
    /// Entities in the live image.
    pub entities: usize,
    /// Decisions pruned from the store after it.
    pub pruned: u64,
    /// How long it took.
    pub elapsed: Duration,
}

/// What a checkpointer needs: the store, the state, the log.
#[derive(Clone)]
pub struct Checkpointing {
    /// The data directory.
    pub dir: PathBuf,
    /// The decision store, pruned after each checkpoint.
    pub store: Arc<DecisionStore>,
    /// Whose state is saved.
    pub pipeline: Arc<Pipeline>,
    /// The log whose last sequence a checkpoint covers.
    pub log: Arc<DecisionLog>,
    /// The overturns, likewise.
    pub overturns: Arc<OverturnLog>,
    /// What the store keeps.
    pub retention: Retention,
}

impl Checkpointing {
    /// Save a checkpoint now, then prune the store down to its retention
    /// (keeping every decision the checkpoint does not hold).
    pub fn take(&self) -> Result<CheckpointStats, DurableError> {
        let started = Instant::now();
        // Read before the copy begins: every decision logged by now was
        // counted before it was logged, so the images hold it.
        let covers = self.log.last_sequence();
        let covers_overturns = self.overturns.last_sequence();
        let images = self.pipeline.state_images();
        save(&self.dir, covers, covers_overturns, &images)?;
        let pruned = self.store.prune(self.retention, covers)?;
        Ok(CheckpointStats {
            covers,
            entities: images.live.records.len(),
            pruned,
            elapsed: started.elapsed(),
        })
    }
}

/// Takes a checkpoint every interval on a thread of its own, and a last
/// one when stopped.
pub struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Start checkpointing every `every`.
    pub fn start(checkpointing: Checkpointing, every: Duration) -> Self {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("checkpoint".into())
            .spawn(move || {
                loop {
                    let last = matches!(
                        stopped.recv_timeout(every),
                        Ok(()) | Err(RecvTimeoutError::Disconnected)
                    );
                    match checkpointing.take() {
                        Ok(stats) => tracing::info!(
                            covers = stats.covers,
                            entities = stats.entities,
                            pruned = stats.pruned,
                            elapsed_ms = stats.elapsed.as_millis() as u64,
                            "state checkpoint saved"
                        ),
                        Err(error) => tracing::error!(%error, "state checkpoint failed"),
                    }
                    if last {
                        return;
                    }
                }
            })
            .expect("spawn the checkpoint thread");
        Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Take a last checkpoint and stop.
    pub fn stop(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.finish();
    }
}
