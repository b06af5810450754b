//! Reading a labelled history: JSON lines (`{"event": …, "truth": …}`, as
//! the traffic simulator writes them) or CSV through a column mapping,
//! parsed on every core, then put in event-time order.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::chunks::{CHUNK_EVENTS, Chunks};
use super::mapping::{CsvMapping, MappingError};
use crate::event::{Entity, Event};

/// What is known about one event: whether it is part of abuse, and the
/// class of its actor when the history names one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Truth {
    /// Whether the event is part of abusive behaviour.
    pub abusive: bool,
    /// The actor's class (`spammer`, `ordinary`, …), if known.
    #[serde(default)]
    pub class: Option<String>,
}

impl Truth {
    /// The class name reports group by: the named class, or `abusive` /
    /// `benign`.
    pub fn class_name(&self) -> &str {
        match &self.class {
            Some(class) => class,
            None if self.abusive => "abusive",
            None => "benign",
        }
    }
}

/// One line of a labelled history.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct LabelledEvent {
    /// The event as the engine receives it.
    pub event: Event,
    /// What is known about it.
    pub truth: Truth,
}

/// The truth about one entity, from an entity truth file: one
/// `{"entity": …, "abusive": …, "class": …}` a line, as the simulator's
/// `--truth` writes it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct EntityTruth {
    /// The account or group.
    pub entity: Entity,
    /// Whether it is abusive.
    pub abusive: bool,
    /// Its class, if known.
    #[serde(default)]
    pub class: Option<String>,
}

/// How a history file is laid out.
#[derive(Clone, Debug)]
pub enum Format {
    /// One labelled event per line.
    JsonLines,
    /// One event per row, columns mapped to fields by a mapping file.
    Csv(Box<CsvMapping>),
}

/// Why a history could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line is not a labelled event.
    #[error("{path} line {line}: {message}")]
    Line {
        /// The file.
        path: PathBuf,
        /// The 1-based line (for CSV, the record's line).
        line: u64,
        /// What was wrong.
        message: String,
    },
    /// The mapping does not fit the file.
    #[error("{path}: {source}")]
    Mapping {
        /// The file.
        path: PathBuf,
        /// Why.
        source: MappingError,
    },
}

/// Read every file in `paths` (each in `format`), on up to `threads`
/// threads, and return the events in event-time order: ties keep the order
/// of the files and of the lines within them, so the order is a function of
/// the input alone.
pub fn read_history(
    paths: &[PathBuf],
    format: &Format,
    threads: usize,
    digest: &mut Sha256,
) -> Result<Vec<LabelledEvent>, InputError> {
    let mut events = Vec::new();
    for path in paths {
        let bytes = read(path, digest)?;
        let parsed = match format {
            Format::JsonLines => parse_lines(&bytes, threads),
            Format::Csv(mapping) => mapping.read_rows(&bytes),
        };
        events.extend(parsed.map_err(|error| error.at(path))?);
    }
    // Stable: equal times keep input order.
    events.sort_by_key(|labelled| labelled.event.occurred_at_ms);
    Ok(events)
}

/// JSON-lines files parsed straight into replay order: each line's event
/// time is read first (a light pass that skips everything else), the lines
/// are ordered by it (ties in input order; this pass runs on `threads`
/// threads), and then `workers` threads
/// parse the lines in that order a chunk at a time into [`Chunks`] while
/// `consume` (the replays) reads them. Returns the events and their labels
/// in replay order with what `consume` returned; a bad line is the error,
/// the first in input order.
pub fn stream_json_lines<R>(
    paths: &[PathBuf],
    threads: usize,
    workers: usize,
    digest: &mut Sha256,
    consume: impl FnOnce(&Chunks) -> R,
) -> Result<Streamed<R>, InputError> {
    let files: Vec<Vec<u8>> = paths
        .iter()
        .map(|path| read(path, digest))
        .collect::<Result<_, _>>()?;
    // Every line of every file, in input order.
    let lines: Vec<(usize, u64, &[u8])> = files
        .iter()
        .enumerate()
        .flat_map(|(file, bytes)| split_lines(bytes).map(move |(n, text)| (file, n, text)))
        .collect();
    let fail = |at: usize, error: ParseError| error.at(&paths[lines[at].0]);

    let mut times = Vec::with_capacity(lines.len());
    for (at, time) in in_parallel(&lines, threads, |&(_, n, text)| event_time(n, text))
        .into_iter()
        .enumerate()
    {
        match time {
            Ok(time) => times.push(time),
            Err(error) => {
                // A line before this one may be wrong in a part the light
                // pass skips: the first bad line in the input is the error.
                let earlier = in_parallel(&lines[..at], threads, |&(_, n, text)| {
                    parse_line::<LabelledEvent>(n, text).err()
                })
                .into_iter()
                .enumerate()
                .find_map(|(at, error)| Some((at, error?)));
                let (at, error) = earlier.unwrap_or((at, error));
                return Err(fail(at, error));
            }
        }
    }
    let mut order: Vec<usize> = (0..lines.len()).collect();
    // Stable: equal times keep input order.
    order.sort_by_key(|&at| times[at]);

    let pieces: Vec<&[usize]> = order.chunks(CHUNK_EVENTS).collect();
    let chunks = Chunks::pending(pieces.len(), lines.len());
    let parsed: Mutex<Vec<Option<Vec<Truth>>>> = Mutex::new(vec![None; pieces.len()]);
    let failures: Mutex<Vec<(usize, ParseError)>> = Mutex::new(Vec::new());
    let next = AtomicUsize::new(0);
    let consumed = std::thread::scope(|scope| {
        for _ in 0..workers.max(1) {
            scope.spawn(|| {
                loop {
                    let piece = next.fetch_add(1, Ordering::Relaxed);
                    let Some(indices) = pieces.get(piece) else {
                        return;
                    };
                    let mut events = Vec::with_capacity(indices.len());
                    let mut truths = Vec::with_capacity(indices.len());
                    for &at in *indices {
                        let (_, n, text) = lines[at];
                        match parse_line::<LabelledEvent>(n, text) {
                            Ok(labelled) => {
                                events.push(Arc::new(labelled.event));
                                truths.push(labelled.truth);
                            }
                            Err(error) => {
                                lock(&failures).push((at, error));
                                chunks.fill(piece, None);
                                break;
                            }
                        }
                    }
                    if truths.len() == indices.len() {
                        lock(&parsed)[piece] = Some(truths);
                        chunks.fill(piece, Some(Arc::new(events)));
                    }
                }
            });
        }
        consume(&chunks)
    });
    if let Some((at, error)) = lock(&failures).drain(..).min_by_key(|(at, _)| *at) {
        return Err(fail(at, error));
    }
    let mut events = Vec::with_capacity(lines.len());
    let mut truths = Vec::with_capacity(lines.len());
    let parsed = parsed.into_inner().unwrap_or_else(|p| p.into_inner());
    for (piece, labels) in parsed.into_iter().enumerate() {
        let chunk = chunks.get(piece).expect("every chunk parsed");
        events.extend(chunk.iter().cloned());
        truths.extend(labels.expect("every chunk parsed"));
    }
    Ok(Streamed {
        events,
        truths,
        consumed,
    })
}

/// What [`stream_json_lines`] read, and what its reader returned.
pub struct Streamed<R> {
    /// The events, in replay order.
    pub events: Vec<Arc<Event>>,
    /// Their labels, in the same order.
    pub truths: Vec<Truth>,
    /// What the reader returned.
    pub consumed: R,
}

/// Only the event time of a labelled event line, for ordering lines before
/// they are parsed whole.
#[derive(Deserialize)]
struct Stamp {
    event: StampedEvent,
}

#[derive(Deserialize)]
struct StampedEvent {
    occurred_at_ms: i64,
}

fn event_time(line: u64, text: &[u8]) -> Result<i64, ParseError> {
    match serde_json::from_slice::<Stamp>(text) {
        Ok(stamp) => Ok(stamp.event.occurred_at_ms),
        // The whole parse names what is wrong more precisely.
        Err(error) => Err(match parse_line::<LabelledEvent>(line, text) {
            Err(whole) => whole,
            Ok(_) => ParseError::Line {
                line,
                message: error.to_string(),
            },
        }),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The non-blank lines of `bytes`, numbered from 1.
fn split_lines(bytes: &[u8]) -> impl Iterator<Item = (u64, &[u8])> {
    bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .map(|(n, line)| (n as u64 + 1, line.strip_suffix(b"\r").unwrap_or(line)))
        .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
}

/// `f` of every item, on up to `threads` threads, in item order.
fn in_parallel<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let chunk = items.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = items
            .chunks(chunk)
            .map(|items| scope.spawn(|| items.iter().map(&f).collect::<Vec<R>>()))
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().expect("a parser thread panicked"))
            .collect()
    })
}

/// Read an entity truth file.
pub fn read_entity_truth(path: &Path, digest: &mut Sha256) -> Result<Vec<EntityTruth>, InputError> {
    let bytes = read(path, digest)?;
    parse_lines(&bytes, 1).map_err(|error| error.at(path))
}

/// A file's bytes, fed to `digest` with their length first, so that the
/// digest of several files tells where one ends.
fn read(path: &Path, digest: &mut Sha256) -> Result<Vec<u8>, InputError> {
    let bytes = std::fs::read(path).map_err(|source| InputError::Io {
        path: path.to_owned(),
        source,
    })?;
    digest.update((bytes.len() as u64).to_le_bytes());
    digest.update(&bytes);
    Ok(bytes)
}

/// A failure inside one file, before the file's name is attached.
#[derive(Debug)]
pub enum ParseError {
    /// A line or record is wrong.
    Line {
        /// The 1-based line.
        line: u64,
        /// What was wrong.
        message: String,
    },
    /// The mapping does not fit the file.
    Mapping(MappingError),
}

impl ParseError {
    fn at(self, path: &Path) -> InputError {
        match self {
            ParseError::Line { line, message } => InputError::Line {
                path: path.to_owned(),
                line,
                message,
            },
            ParseError::Mapping(source) => InputError::Mapping {
                path: path.to_owned(),
                source,
            },
        }
    }
}

/// Parse every non-blank line of `bytes` as a `T`, in chunks of lines on
/// up to `threads` threads, keeping line order. The first bad line (in
/// line order) is the error.
fn parse_lines<T: for<'de> Deserialize<'de> + Send>(
    bytes: &[u8],
    threads: usize,
) -> Result<Vec<T>, ParseError> {
    let lines: Vec<(u64, &[u8])> = split_lines(bytes).collect();
    in_parallel(&lines, threads, |&(n, text)| parse_line(n, text))
        .into_iter()
        .collect()
}

fn parse_line<T: for<'de> Deserialize<'de>>(line: u64, text: &[u8]) -> Result<T, ParseError> {
    serde_json::from_slice(text).map_err(|error| ParseError::Line {
        line,
        message: error.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: &str, at: i64, abusive: bool) -> String {
        format!(
            r#"{{"event":{{"id":"{id}","kind":"message.sent","actor":{{"kind":"account","id":"a"}},"target":null,"occurred_at_ms":{at},"attributes":[]}},"truth":{{"abusive":{abusive},"class":"x"}}}}"#
        )
    }

    #[test]
    fn lines_parse_in_order_on_several_threads() {
        let text: String = (0..50)
            .map(|n| line(&format!("e{n}"), n, n % 3 == 0) + "\n")
            .collect();
        let events: Vec<LabelledEvent> = parse_lines(text.as_bytes(), 4).unwrap();
        let ids: Vec<&str> = events.iter().map(|e| e.event.id.as_str()).collect();
        let expected: Vec<String> = (0..50).map(|n| format!("e{n}")).collect();
        assert_eq!(ids, expected);
        assert!(events[3].truth.abusive && !events[4].truth.abusive);
    }

    #[test]
    fn the_first_bad_line_is_named() {
        let text = format!(
            "{}\n\n{{\"event\": 1}}\n{}\nnot json\n",
            line("a", 1, false),
            line("b", 2, true)
        );
        match parse_lines::<LabelledEvent>(text.as_bytes(), 3) {
            Err(ParseError::Line { line, .. }) => assert_eq!(line, 3),
            other => panic!("expected a line error, got {other:?}"),
        }
    }

    #[test]
    fn streamed_lines_reach_the_reader_in_event_time_order_and_errors_in_line_order() {
        let dir = std::env::temp_dir().join(format!("enforcer-stream-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("h.jsonl");
        // Far more lines than a chunk, in falling time with ties.
        let text: String = (0..3 * CHUNK_EVENTS)
            .map(|n| {
                line(
                    &format!("e{n}"),
                    (3 * CHUNK_EVENTS - n) as i64 / 2,
                    n % 2 == 0,
                ) + "\n"
            })
            .collect();
        std::fs::write(&path, &text).unwrap();
        let Streamed {
            events,
            truths,
            consumed: seen,
        } = stream_json_lines(
            std::slice::from_ref(&path),
            2,
            2,
            &mut Sha256::new(),
            |chunks: &Chunks| {
                (0..chunks.len())
                    .map_while(|at| chunks.get(at))
                    .flat_map(|chunk| chunk.iter().map(|e| e.id.clone()).collect::<Vec<_>>())
                    .collect::<Vec<_>>()
            },
        )
        .unwrap();
        let read = read_history(
            std::slice::from_ref(&path),
            &Format::JsonLines,
            2,
            &mut Sha256::new(),
        )
        .unwrap();
        let expected: Vec<String> = read.iter().map(|l| l.event.id.clone()).collect();
        assert_eq!(seen, expected);
        assert_eq!(
            events.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
            expected
        );
        assert_eq!(
            truths,
            read.iter().map(|l| l.truth.clone()).collect::<Vec<_>>()
        );

        // Bad lines early in the file but late in event time, and the
        // reverse: the error names the first in the file.
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        lines[5] = lines[5].replace("\"truth\"", "\"truths\"");
        lines[3 * CHUNK_EVENTS - 2] = "{".into();
        std::fs::write(&path, lines.join("\n")).unwrap();
        match stream_json_lines(
            std::slice::from_ref(&path),
            2,
            2,
            &mut Sha256::new(),
            |_| (),
        ) {
            Err(InputError::Line { line, .. }) => assert_eq!(line, 6),
            other => panic!("expected a line error, got {:?}", other.map(|_| ())),
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn history_is_sorted_by_event_time_keeping_ties_in_input_order() {
        let dir = std::env::temp_dir().join(format!("enforcer-history-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("h.jsonl");
        let text = [
            line("late", 30, false),
            line("first", 10, false),
            line("tie-1", 20, false),
            line("tie-2", 20, true),
        ]
        .join("\n");
        std::fs::write(&path, text).unwrap();
        let events = read_history(&[path], &Format::JsonLines, 2, &mut Sha256::new()).unwrap();
        let ids: Vec<&str> = events.iter().map(|e| e.event.id.as_str()).collect();
        assert_eq!(ids, ["first", "tie-1", "tie-2", "late"]);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
