//! Reading a labelled history: JSON lines (`{"event": …, "truth": …}`, as
//! the traffic simulator writes them) or CSV through a column mapping,
//! parsed on every core, then put in event-time order.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

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
            Format::JsonLines => parse_json_lines(&bytes, threads),
            Format::Csv(mapping) => mapping.read_rows(&bytes),
        };
        events.extend(parsed.map_err(|error| error.at(path))?);
    }
    // Stable: equal times keep input order.
    events.sort_by_key(|labelled| labelled.event.occurred_at_ms);
    Ok(events)
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

fn parse_json_lines(bytes: &[u8], threads: usize) -> Result<Vec<LabelledEvent>, ParseError> {
    parse_lines(bytes, threads)
}

/// Parse every non-blank line of `bytes` as a `T`, in chunks of lines on
/// up to `threads` threads, keeping line order. The first bad line (in
/// line order) is the error.
fn parse_lines<T: for<'de> Deserialize<'de> + Send>(
    bytes: &[u8],
    threads: usize,
) -> Result<Vec<T>, ParseError> {
    let lines: Vec<(u64, &[u8])> = bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .map(|(n, line)| (n as u64 + 1, line.strip_suffix(b"\r").unwrap_or(line)))
        .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
        .collect();
    let chunk = lines.len().div_ceil(threads.max(1)).max(1);
    let parsed: Vec<Result<Vec<T>, ParseError>> = std::thread::scope(|scope| {
        let workers: Vec<_> = lines
            .chunks(chunk)
            .map(|lines| {
                scope.spawn(move || lines.iter().map(|&(n, l)| parse_line(n, l)).collect())
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("a parser thread panicked"))
            .collect()
    });
    let mut all = Vec::with_capacity(lines.len());
    for part in parsed {
        all.extend(part?);
    }
    Ok(all)
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
