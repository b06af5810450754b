//! JSON lines in and out: one labelled event per line
//! (`{"event": …, "truth": …}`), and separately one entity truth or one bank
//! entry per line, so that a replay tool can stream events and look the
//! truth up only when scoring.

use std::io::{self, BufRead, Write};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::truth::{BankEntry, EntityTruth, LabelledEvent, Traffic};

/// Why a JSON lines file could not be read.
#[derive(Debug)]
pub struct ReadError {
    /// The 1-based line it failed on.
    pub line: usize,
    /// What went wrong there.
    pub source: ReadErrorSource,
}

/// The underlying failure of a [`ReadError`].
#[derive(Debug)]
pub enum ReadErrorSource {
    /// Reading failed.
    Io(io::Error),
    /// The line is not the expected JSON.
    Json(serde_json::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.source {
            ReadErrorSource::Io(error) => write!(f, "line {}: {error}", self.line),
            ReadErrorSource::Json(error) => write!(f, "line {}: {error}", self.line),
        }
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.source {
            ReadErrorSource::Io(error) => Some(error),
            ReadErrorSource::Json(error) => Some(error),
        }
    }
}

/// Write the events, one JSON object a line.
pub fn write_events(traffic: &Traffic, out: impl Write) -> io::Result<()> {
    write_lines(&traffic.events, out)
}

/// Write the entity truth, one JSON object a line.
pub fn write_truth(traffic: &Traffic, out: impl Write) -> io::Result<()> {
    write_lines(&traffic.truth, out)
}

/// Write the hash bank, one `{"id": …, "hash": "<64 hex>"}` a line.
pub fn write_bank(traffic: &Traffic, out: impl Write) -> io::Result<()> {
    write_lines(&traffic.bank, out)
}

/// Write the events, and the entity truth and bank where asked for.
pub fn write_jsonl(
    traffic: &Traffic,
    events: impl Write,
    truth: Option<&mut dyn Write>,
    bank: Option<&mut dyn Write>,
) -> io::Result<()> {
    write_events(traffic, events)?;
    if let Some(out) = truth {
        write_truth(traffic, out)?;
    }
    if let Some(out) = bank {
        write_bank(traffic, out)?;
    }
    Ok(())
}

/// Read events written by [`write_events`]. Blank lines are skipped.
pub fn read_jsonl(input: impl BufRead) -> Result<Vec<LabelledEvent>, ReadError> {
    read_lines(input)
}

/// Read entity truth written by [`write_truth`].
pub fn read_truth(input: impl BufRead) -> Result<Vec<EntityTruth>, ReadError> {
    read_lines(input)
}

/// Read a bank written by [`write_bank`].
pub fn read_bank(input: impl BufRead) -> Result<Vec<BankEntry>, ReadError> {
    read_lines(input)
}

fn write_lines<T: Serialize>(items: &[T], out: impl Write) -> io::Result<()> {
    // Buffer here so that callers may pass a bare file or stdout.
    let mut out = io::BufWriter::with_capacity(1 << 16, out);
    for item in items {
        serde_json::to_writer(&mut out, item)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

fn read_lines<T: DeserializeOwned>(input: impl BufRead) -> Result<Vec<T>, ReadError> {
    let mut items = Vec::new();
    for (index, line) in input.lines().enumerate() {
        let error = |source| ReadError {
            line: index + 1,
            source,
        };
        let line = line.map_err(|e| error(ReadErrorSource::Io(e)))?;
        if line.trim().is_empty() {
            continue;
        }
        let item = serde_json::from_str(&line).map_err(|e| error(ReadErrorSource::Json(e)))?;
        items.push(item);
    }
    Ok(items)
}
