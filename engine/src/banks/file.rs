//! Bank files: one entry per line, as hex or as JSON.
//!
//! A line is either `HASH[,ID[,SOURCE[,ADDED_AT]]]` (fields split by commas
//! or tabs; a plain list of 64-hex-digit hashes is the simplest bank file)
//! or a JSON object `{"hash": .., "id": .., "source": .., "added_at": ..}`.
//! `ADDED_AT` is RFC 3339 or milliseconds since the epoch. Blank lines and
//! lines starting with `#` are skipped, and so is a first line whose first
//! field is a column name (`hash`, `pdq`, `pdq_hex`). An entry without an
//! id is named by its hash; without a source, by the file it came from.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use super::HashBanks;
use super::bank::{Bank, BankKind};
use super::entry::{BankEntry, parse_hex};

/// How near a hash must be to a known false positive to be allowed, unless
/// a bank says otherwise: re-encoded, resized and lightly edited copies of
/// one photo stay within about 16 bits of it (ThreatExchange's edited
/// bridge photos are 2 to 16 bits from the original).
pub const DEFAULT_ALLOW_DISTANCE: u32 = 16;

/// What a bank file holds.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    /// Hashes of known material.
    #[default]
    Match,
    /// Known false positives.
    Allow,
}

/// One `[[banks]]` entry of the configuration: a bank loaded from a file
/// at start.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BankSpec {
    /// The bank's name, as rules ask for it.
    pub name: String,
    /// The bank file.
    pub file: PathBuf,
    /// `match` (the default) or `allow`.
    #[serde(default)]
    pub kind: FileKind,
    /// For a match bank: the allow-lists consulted when it matches.
    #[serde(default)]
    pub allow_lists: Vec<String>,
    /// For an allow-list: how near a hash must be to an entry to be
    /// allowed ([`DEFAULT_ALLOW_DISTANCE`] unless set).
    #[serde(default)]
    pub max_distance: Option<u32>,
}

impl BankSpec {
    fn kind(&self) -> Result<BankKind, String> {
        match self.kind {
            FileKind::Match if self.max_distance.is_some() => {
                Err("max_distance applies to an allow-list (kind = \"allow\") only".into())
            }
            FileKind::Match => Ok(BankKind::Match {
                allow_lists: self.allow_lists.clone(),
            }),
            FileKind::Allow if !self.allow_lists.is_empty() => {
                Err("an allow-list has no allow_lists of its own".into())
            }
            FileKind::Allow => Ok(BankKind::Allow {
                max_distance: self.max_distance.unwrap_or(DEFAULT_ALLOW_DISTANCE),
            }),
        }
    }
}

/// Every bank `specs` name, read from its file: allow-lists first, so the
/// banks that name them find them.
pub fn load_banks(specs: &[BankSpec], now_ms: i64) -> Result<HashBanks, String> {
    let mut ordered: Vec<&BankSpec> = specs.iter().collect();
    ordered.sort_by_key(|spec| spec.kind != FileKind::Allow);
    let mut banks = HashBanks::new();
    for spec in ordered {
        let context = |e: String| format!("bank `{}`: {e}", spec.name);
        if banks.get(&spec.name).is_some() {
            return Err(context("is configured twice".into()));
        }
        let kind = spec.kind().map_err(context)?;
        let entries = read_bank_file(&spec.file, now_ms).map_err(|e| e.to_string())?;
        let bank = Bank::build(&spec.name, kind, entries).map_err(|e| e.to_string())?;
        banks = banks.with_bank(bank).map_err(|e| e.to_string())?;
    }
    Ok(banks)
}

/// Why a bank file could not be read: where, and what was wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{origin}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct BankFileError {
    /// The file (or other origin) read.
    pub origin: String,
    /// The 1-based line, when one line is at fault.
    pub line: Option<usize>,
    /// What was wrong.
    pub message: String,
}

/// The entries of the bank file at `path`, added at `now_ms` unless a line
/// says otherwise.
pub fn read_bank_file(path: &Path, now_ms: i64) -> Result<Vec<BankEntry>, BankFileError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| BankFileError {
        origin: origin.clone(),
        line: None,
        message: e.to_string(),
    })?;
    let source = path
        .file_name()
        .map_or_else(|| origin.clone(), |n| n.to_string_lossy().into_owned());
    parse_bank(&text, &origin, &source, now_ms)
}

/// The entries of a bank file's `text`. `origin` names it in errors;
/// `source` is the source of entries that name none.
pub fn parse_bank(
    text: &str,
    origin: &str,
    source: &str,
    now_ms: i64,
) -> Result<Vec<BankEntry>, BankFileError> {
    let default_source: Arc<str> = Arc::from(source);
    let mut entries = Vec::new();
    let mut first_line_of: std::collections::HashMap<Arc<str>, usize> =
        std::collections::HashMap::new();
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || (number == 1 && is_header(line)) {
            continue;
        }
        let at = |message: String| BankFileError {
            origin: origin.to_string(),
            line: Some(number),
            message,
        };
        let entry = if line.starts_with('{') {
            json_line(line, &default_source, now_ms)
        } else {
            text_line(line, &default_source, now_ms)
        }
        .map_err(at)?;
        if let Some(earlier) = first_line_of.insert(entry.id.clone(), number) {
            return Err(at(format!(
                "entry id `{}` is also on line {earlier}",
                entry.id
            )));
        }
        entries.push(entry);
    }
    Ok(entries)
}

fn is_header(line: &str) -> bool {
    let first = line.split([',', '\t']).next().unwrap_or("").trim();
    ["hash", "pdq", "pdq_hex"]
        .iter()
        .any(|name| first.eq_ignore_ascii_case(name))
}

fn text_line(line: &str, default_source: &Arc<str>, now_ms: i64) -> Result<BankEntry, String> {
    let mut fields = line.split([',', '\t']).map(str::trim);
    let hash_text = fields.next().unwrap_or("");
    let hash = parse_hex(hash_text)?;
    let id = non_empty(fields.next()).map_or_else(|| hex::encode(hash), str::to_string);
    let source = non_empty(fields.next()).map_or_else(|| default_source.clone(), Arc::from);
    let added_at_ms = match non_empty(fields.next()) {
        Some(text) => parse_time(text)?,
        None => now_ms,
    };
    if let Some(extra) = fields.next() {
        return Err(format!(
            "has a fifth field `{extra}`; a line is HASH[,ID[,SOURCE[,ADDED_AT]]]"
        ));
    }
    Ok(BankEntry {
        id: Arc::from(id),
        hash,
        source,
        added_at_ms,
    })
}

fn json_line(line: &str, default_source: &Arc<str>, now_ms: i64) -> Result<BankEntry, String> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Line {
        hash: String,
        #[serde(default)]
        id: Option<String>,
        #[serde(default)]
        source: Option<String>,
        #[serde(default)]
        added_at: Option<serde_json::Value>,
    }
    let parsed: Line =
        serde_json::from_str(line).map_err(|e| format!("is not a bank entry: {e}"))?;
    let hash = parse_hex(&parsed.hash)?;
    let added_at_ms = match parsed.added_at {
        None => now_ms,
        Some(serde_json::Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| format!("added_at {n} is not a whole number of milliseconds"))?,
        Some(serde_json::Value::String(text)) => parse_time(&text)?,
        Some(other) => return Err(format!("added_at {other} is not a time")),
    };
    Ok(BankEntry {
        id: Arc::from(parsed.id.unwrap_or_else(|| hex::encode(hash))),
        hash,
        source: parsed
            .source
            .map_or_else(|| default_source.clone(), Arc::from),
        added_at_ms,
    })
}

fn non_empty(field: Option<&str>) -> Option<&str> {
    field.filter(|f| !f.is_empty())
}

/// RFC 3339 or milliseconds since the epoch.
fn parse_time(text: &str) -> Result<i64, String> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("added at `{text}` is neither RFC 3339 nor milliseconds: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
    const B: &str = "d8f8f0cec0f4a84f0637022a278f67f0b36e2ed596621e1d33e6339c4e9c9b22";

    fn parse(text: &str) -> Result<Vec<BankEntry>, BankFileError> {
        parse_bank(text, "list.txt", "list.txt", 42)
    }

    #[test]
    fn plain_hashes_are_named_by_their_hash() {
        let entries = parse(&format!("# known\n\n{A}\n{}\n", B.to_uppercase())).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(&*entries[0].id, A);
        assert_eq!(&*entries[1].id, B, "ids are lower-case hex");
        assert_eq!(&*entries[0].source, "list.txt");
        assert_eq!(entries[0].added_at_ms, 42);
        assert_eq!(hex::encode(entries[1].hash), B);
    }

    #[test]
    fn fields_and_json_lines_carry_metadata() {
        let text = format!(
            "hash,id,source,added_at\n{A},te-1,threatexchange,2024-05-01T00:00:00Z\n\
             {B}\tte-2\t\t1700000000000\n\
             {{\"hash\": \"{A}\", \"id\": \"te-3\", \"source\": \"review\", \"added_at\": 5}}\n"
        );
        let entries = parse(&text).unwrap();
        let got: Vec<(&str, &str, i64)> = entries
            .iter()
            .map(|e| (&*e.id, &*e.source, e.added_at_ms))
            .collect();
        assert_eq!(
            got,
            [
                ("te-1", "threatexchange", 1_714_521_600_000),
                ("te-2", "list.txt", 1_700_000_000_000),
                ("te-3", "review", 5),
            ]
        );
    }

    #[test]
    fn errors_name_the_line_and_what_is_wrong() {
        let short = parse(&format!("{A}\n{}\n", &B[..60])).unwrap_err();
        assert_eq!(short.line, Some(2));
        assert!(short.to_string().starts_with("list.txt:2: "), "{short}");
        assert!(short.message.contains("60 characters"), "{short}");

        let twice = parse(&format!("{A},x\n{B},x\n")).unwrap_err();
        assert_eq!(
            twice.to_string(),
            "list.txt:2: entry id `x` is also on line 1"
        );
        let same_hash = parse(&format!("{A}\n{A}\n")).unwrap_err();
        assert_eq!(same_hash.line, Some(2));

        let time = parse(&format!("{A},x,s,yesterday\n")).unwrap_err();
        assert!(time.message.contains("`yesterday`"), "{time}");
        let extra = parse(&format!("{A},x,s,1,more\n")).unwrap_err();
        assert!(extra.message.contains("fifth field"), "{extra}");
        let json = parse("{\"hash\": 3}\n").unwrap_err();
        assert!(json.message.contains("not a bank entry"), "{json}");
        let header_later = parse(&format!("{A}\nhash,id\n")).unwrap_err();
        assert_eq!(header_later.line, Some(2));
    }

    #[test]
    fn configured_banks_load_allow_lists_first() {
        let dir = std::env::temp_dir().join(format!("enforcer-banks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("known.txt"), format!("{A},k1\n")).unwrap();
        std::fs::write(dir.join("fp.txt"), format!("{B},fp1\n")).unwrap();
        let specs: Vec<BankSpec> = toml::from_str::<toml::Table>(&format!(
            "[[banks]]\nname = \"known\"\nfile = {:?}\nallow_lists = [\"fp\"]\n\
             [[banks]]\nname = \"fp\"\nfile = {:?}\nkind = \"allow\"\nmax_distance = 4\n",
            dir.join("known.txt"),
            dir.join("fp.txt"),
        ))
        .unwrap()["banks"]
            .clone()
            .try_into()
            .unwrap();
        let banks = load_banks(&specs, 7).unwrap();
        let hash = parse_hex(A).unwrap();
        let lookup = banks.lookup("known", &hash, 31).unwrap();
        assert_eq!(lookup.matches[0].entry_id, "k1");
        assert_eq!(lookup.matches[0].added_at_ms, 7);
        assert_eq!(
            banks.get("fp").unwrap().kind(),
            &BankKind::Allow { max_distance: 4 }
        );

        let mut twice = specs.clone();
        twice.push(specs[0].clone());
        assert!(
            load_banks(&twice, 0)
                .unwrap_err()
                .contains("configured twice")
        );
        let mut bad = specs.clone();
        bad[0].max_distance = Some(3);
        assert!(
            load_banks(&bad, 0)
                .unwrap_err()
                .contains("allow-list (kind")
        );
        let mut missing = specs;
        missing[1].file = dir.join("none.txt");
        assert!(load_banks(&missing, 0).unwrap_err().contains("none.txt"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_file_is_named() {
        let error = read_bank_file(Path::new("/nonexistent/bank.txt"), 0).unwrap_err();
        assert_eq!(error.line, None);
        assert!(
            error.to_string().starts_with("/nonexistent/bank.txt: "),
            "{error}"
        );
    }
}
