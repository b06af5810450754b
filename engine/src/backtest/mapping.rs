//! A column mapping: how each row of a CSV file becomes a labelled event,
//! so that any table of accounts or actions (an export, a public dataset)
//! can be backtested without code. The mapping is a TOML file:
//!
//! ```toml
//! [event]
//! kind = "account.snapshot"          # every row's event kind
//! id = "id_str"                      # the column holding the event id
//! id_prefix = "tw-"                  # optional, put before it
//! actor = "screen_name"              # the column holding the actor's id
//! actor_kind = "account"             # or "group"
//! time_ms = 1489449600000            # a fixed event time, or:
//! # time = "observed_at"             # a column, read with `time_formats`
//!
//! [truth]
//! column = "bot"
//! abusive = ["1", "TRUE"]            # values that mean abusive
//! benign = ["0", "FALSE"]            # values that mean benign; others are refused
//! abusive_class = "bot"              # optional class names
//! benign_class = "human"
//!
//! [attributes]
//! followers_count = { column = "followers_count", type = "int" }
//! default_profile_image = { column = "default_profile_image", type = "bool" }
//! description = { column = "description", type = "text" }
//! has_url = { column = "url", type = "present" }
//! account_age_seconds = { column = "created_at", type = "age_seconds",
//!                         formats = ["%a %b %d %H:%M:%S %z %Y"] }
//!
//! [cells]                            # optional: how cells are cleaned
//! unquote = true                     # `"x"` (quotes in the cell) reads as x
//! missing = ["None", "null"]         # cells that mean "no value"
//! ```
//!
//! Types: `int`, `float`, `bool`, `text`, `age_seconds` (the seconds from a
//! date in the column to the event's time), and `present` (true when the
//! cell has a value, false when it is empty). An empty cell leaves any
//! other attribute out, so a rule sees it missing rather than zero. Time
//! formats are chrono's `strftime` patterns, plus `rfc3339`, `unix_s` and
//! `unix_ms`; a pattern without a zone reads UTC.
//!
//! Every cell is trimmed of surrounding white space. `[cells]` cleans them
//! further, for exports that write text cells quoted twice over or write
//! "no value" as a word: with `unquote`, a cell wrapped in a pair of double
//! quotes loses them; a cell equal to one of `missing` (after both) is
//! empty, everywhere it is used.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime};
use serde::Deserialize;

use super::input::{LabelledEvent, ParseError, Truth};
use crate::event::{Entity, EntityKind, Event, Value};

/// A parsed mapping file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvMapping {
    event: EventMapping,
    truth: TruthMapping,
    #[serde(default)]
    attributes: BTreeMap<String, AttributeMapping>,
    #[serde(default)]
    cells: CellCleaning,
}

/// How cells are cleaned before they are read.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CellCleaning {
    #[serde(default)]
    unquote: bool,
    #[serde(default)]
    missing: Vec<String>,
}

impl CellCleaning {
    /// The cell's value: trimmed, unquoted if asked, and empty if it is
    /// one of the values that mean none.
    fn clean<'a>(&self, cell: &'a str) -> &'a str {
        let mut cell = cell.trim();
        if self.unquote
            && let Some(inner) = cell
                .strip_prefix('"')
                .and_then(|rest| rest.strip_suffix('"'))
        {
            cell = inner.trim();
        }
        if self.missing.iter().any(|m| m == cell) {
            ""
        } else {
            cell
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventMapping {
    kind: String,
    id: String,
    #[serde(default)]
    id_prefix: String,
    actor: String,
    #[serde(default = "account")]
    actor_kind: EntityKind,
    #[serde(default)]
    time: Option<String>,
    #[serde(default)]
    time_ms: Option<i64>,
    #[serde(default)]
    time_formats: Vec<String>,
}

fn account() -> EntityKind {
    EntityKind::Account
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TruthMapping {
    column: String,
    abusive: Vec<String>,
    benign: Vec<String>,
    #[serde(default)]
    abusive_class: Option<String>,
    #[serde(default)]
    benign_class: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AttributeMapping {
    column: String,
    #[serde(rename = "type")]
    kind: AttributeType,
    #[serde(default)]
    formats: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum AttributeType {
    Int,
    Float,
    Bool,
    Text,
    AgeSeconds,
    Present,
}

/// Why a mapping cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    /// The mapping file is not valid.
    #[error("mapping: {0}")]
    Invalid(String),
    /// The CSV file has no column the mapping names.
    #[error("the mapping names column `{column}` ({used_for}), which the header does not have")]
    MissingColumn {
        /// The column.
        column: String,
        /// What the mapping uses it for.
        used_for: String,
    },
    /// The CSV file cannot be read as CSV.
    #[error("not readable as CSV: {0}")]
    Csv(String),
}

impl CsvMapping {
    /// Parse a mapping file's text.
    pub fn from_toml(text: &str) -> Result<Self, MappingError> {
        let mapping: CsvMapping =
            toml::from_str(text).map_err(|e| MappingError::Invalid(e.to_string()))?;
        match (&mapping.event.time, mapping.event.time_ms) {
            (Some(_), Some(_)) => {
                return Err(MappingError::Invalid(
                    "event: give either `time` (a column) or `time_ms` (a fixed time), not both"
                        .into(),
                ));
            }
            (None, None) => {
                return Err(MappingError::Invalid(
                    "event: give `time` (a column) or `time_ms` (a fixed time)".into(),
                ));
            }
            (Some(_), None) if mapping.event.time_formats.is_empty() => {
                return Err(MappingError::Invalid(
                    "event.time_formats: name at least one format for the time column".into(),
                ));
            }
            _ => {}
        }
        for (name, attribute) in &mapping.attributes {
            if attribute.kind == AttributeType::AgeSeconds && attribute.formats.is_empty() {
                return Err(MappingError::Invalid(format!(
                    "attributes.{name}.formats: an age_seconds attribute needs at least one date format"
                )));
            }
        }
        if mapping
            .truth
            .abusive
            .iter()
            .any(|v| mapping.truth.benign.contains(v))
        {
            return Err(MappingError::Invalid(
                "truth: a value cannot mean both abusive and benign".into(),
            ));
        }
        Ok(mapping)
    }

    /// Every row of a CSV file (with a header row) as a labelled event, in
    /// row order.
    pub fn read_rows(&self, bytes: &[u8]) -> Result<Vec<LabelledEvent>, ParseError> {
        // Spreadsheets often start a UTF-8 file with a byte-order mark,
        // which would otherwise become part of the first column's name.
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(bytes);
        let header = reader
            .headers()
            .map_err(|e| ParseError::Mapping(MappingError::Csv(e.to_string())))?
            .clone();
        let columns = Columns::resolve(self, &header).map_err(ParseError::Mapping)?;
        let mut events = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| ParseError::Line {
                line: e.position().map_or(0, |p| p.line()),
                message: e.to_string(),
            })?;
            let line = record.position().map_or(0, |p| p.line());
            let event = self
                .row(&columns, &record)
                .map_err(|message| ParseError::Line { line, message })?;
            events.push(event);
        }
        Ok(events)
    }
}

/// The header positions of the columns a mapping uses.
struct Columns {
    id: usize,
    actor: usize,
    time: Option<usize>,
    truth: usize,
    attributes: Vec<(String, usize)>,
}

impl Columns {
    fn resolve(mapping: &CsvMapping, header: &csv::StringRecord) -> Result<Self, MappingError> {
        let find = |column: &str, used_for: &str| {
            header
                .iter()
                .position(|name| name.trim() == column)
                .ok_or_else(|| MappingError::MissingColumn {
                    column: column.to_owned(),
                    used_for: used_for.to_owned(),
                })
        };
        Ok(Columns {
            id: find(&mapping.event.id, "event.id")?,
            actor: find(&mapping.event.actor, "event.actor")?,
            time: match &mapping.event.time {
                Some(column) => Some(find(column, "event.time")?),
                None => None,
            },
            truth: find(&mapping.truth.column, "truth.column")?,
            attributes: mapping
                .attributes
                .iter()
                .map(|(name, attribute)| {
                    Ok((
                        name.clone(),
                        find(&attribute.column, &format!("attributes.{name}"))?,
                    ))
                })
                .collect::<Result<_, MappingError>>()?,
        })
    }
}

impl CsvMapping {
    fn row(&self, columns: &Columns, record: &csv::StringRecord) -> Result<LabelledEvent, String> {
        let cell = |index: usize| self.cells.clean(record.get(index).unwrap_or(""));
        let id = cell(columns.id);
        if id.is_empty() {
            return Err(format!("column `{}` (event.id) is empty", self.event.id));
        }
        let actor = cell(columns.actor);
        if actor.is_empty() {
            return Err(format!(
                "column `{}` (event.actor) is empty",
                self.event.actor
            ));
        }
        let occurred_at_ms = match (columns.time, self.event.time_ms) {
            (Some(index), _) => parse_time(cell(index), &self.event.time_formats).map_err(|e| {
                format!(
                    "column `{}` (event.time): {e}",
                    record_name(&self.event.time)
                )
            })?,
            (None, Some(fixed)) => fixed,
            (None, None) => unreachable!("checked when the mapping was parsed"),
        };
        let mut attributes = Vec::with_capacity(columns.attributes.len());
        for (name, index) in &columns.attributes {
            let mapping = &self.attributes[name];
            let text = cell(*index);
            if mapping.kind == AttributeType::Present {
                attributes.push((name.clone(), Value::Bool(!text.is_empty())));
                continue;
            }
            if text.is_empty() {
                continue;
            }
            let value = mapping
                .value(text, occurred_at_ms)
                .map_err(|e| format!("column `{}` (attributes.{name}): {e}", mapping.column))?;
            attributes.push((name.clone(), value));
        }
        let label = cell(columns.truth);
        let abusive = if self.truth.abusive.iter().any(|v| v == label) {
            true
        } else if self.truth.benign.iter().any(|v| v == label) {
            false
        } else {
            return Err(format!(
                "column `{}` (truth): `{label}` is neither an abusive value {:?} nor a benign one {:?}",
                self.truth.column, self.truth.abusive, self.truth.benign
            ));
        };
        let class = if abusive {
            self.truth.abusive_class.clone()
        } else {
            self.truth.benign_class.clone()
        };
        Ok(LabelledEvent {
            event: Event {
                id: format!("{}{id}", self.event.id_prefix),
                kind: self.event.kind.clone(),
                occurred_at_ms,
                actor: Entity {
                    kind: self.event.actor_kind,
                    id: actor.to_owned(),
                },
                target: None,
                attributes,
            },
            truth: Truth { abusive, class },
        })
    }
}

fn record_name(column: &Option<String>) -> &str {
    column.as_deref().unwrap_or("")
}

impl AttributeMapping {
    fn value(&self, text: &str, event_ms: i64) -> Result<Value, String> {
        match self.kind {
            AttributeType::Int => parse_int(text).map(Value::Int),
            AttributeType::Float => text
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(Value::Float)
                .ok_or_else(|| format!("`{text}` is not a number")),
            AttributeType::Bool => parse_bool(text).map(Value::Bool),
            AttributeType::Text => Ok(Value::Text(text.to_owned())),
            AttributeType::AgeSeconds => {
                let at = parse_time(text, &self.formats)?;
                Ok(Value::Int((event_ms - at).div_euclid(1000)))
            }
            // Read before an empty cell is skipped; a cell that gets here
            // has a value.
            AttributeType::Present => Ok(Value::Bool(true)),
        }
    }
}

/// An integer, also written the way spreadsheets write large ones
/// (`8.41E+17`) as long as it is whole.
fn parse_int(text: &str) -> Result<i64, String> {
    if let Ok(n) = text.parse::<i64>() {
        return Ok(n);
    }
    match text.parse::<f64>() {
        Ok(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e18 => Ok(f as i64),
        _ => Err(format!("`{text}` is not a whole number")),
    }
}

fn parse_bool(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "y" | "t" => Ok(true),
        "false" | "0" | "no" | "n" | "f" => Ok(false),
        _ => Err(format!("`{text}` is not true or false")),
    }
}

/// Milliseconds since the epoch of `text`, read with the first of
/// `formats` that fits.
fn parse_time(text: &str, formats: &[String]) -> Result<i64, String> {
    for format in formats {
        let parsed = match format.as_str() {
            "unix_ms" => text.parse::<i64>().ok(),
            "unix_s" => text.parse::<i64>().ok().and_then(|s| s.checked_mul(1000)),
            "rfc3339" => DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|t| t.timestamp_millis()),
            pattern => DateTime::parse_from_str(text, pattern)
                .map(|t| t.timestamp_millis())
                .or_else(|_| {
                    NaiveDateTime::parse_from_str(text, pattern)
                        .map(|t| t.and_utc().timestamp_millis())
                })
                .ok(),
        };
        if let Some(ms) = parsed {
            return Ok(ms);
        }
    }
    Err(format!("`{text}` fits none of the formats {formats:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPPING: &str = r#"
[event]
kind = "account.snapshot"
id = "id"
id_prefix = "tw-"
actor = "name"
time_ms = 1489449600000

[truth]
column = "bot"
abusive = ["1"]
benign = ["0"]
abusive_class = "bot"
benign_class = "human"

[attributes]
followers = { column = "followers", type = "int" }
default_image = { column = "default_image", type = "bool" }
age = { column = "created_at", type = "age_seconds", formats = ["%a %b %d %H:%M:%S %z %Y", "%d-%m-%Y %H:%M"] }
"#;

    fn rows(csv: &str) -> Result<Vec<LabelledEvent>, ParseError> {
        CsvMapping::from_toml(MAPPING)
            .unwrap()
            .read_rows(csv.as_bytes())
    }

    #[test]
    fn rows_become_labelled_events() {
        let csv = "\u{feff}id,name,followers,default_image,created_at,bot\n\
                   1,alice,8.41E+3,FALSE,Mon Mar 13 00:00:00 +0000 2017,0\n\
                   2,\"b,ot\",,TRUE,12-03-2017 00:00,1\n";
        let events = rows(csv).unwrap();
        assert_eq!(events.len(), 2);
        let alice = &events[0];
        assert_eq!(alice.event.id, "tw-1");
        assert_eq!(alice.event.actor, Entity::account("alice"));
        assert_eq!(alice.event.occurred_at_ms, 1_489_449_600_000);
        assert_eq!(alice.event.attribute("followers"), Some(&Value::Int(8410)));
        assert_eq!(
            alice.event.attribute("default_image"),
            Some(&Value::Bool(false))
        );
        assert_eq!(alice.event.attribute("age"), Some(&Value::Int(86_400)));
        assert_eq!(
            alice.truth,
            Truth {
                abusive: false,
                class: Some("human".into())
            }
        );
        let bot = &events[1];
        assert_eq!(bot.event.actor.id, "b,ot");
        assert_eq!(
            bot.event.attribute("followers"),
            None,
            "an empty cell is left out"
        );
        assert_eq!(bot.event.attribute("age"), Some(&Value::Int(2 * 86_400)));
        assert!(bot.truth.abusive);
    }

    #[test]
    fn present_says_whether_a_cell_has_a_value_and_cells_are_cleaned() {
        let mapping = format!(
            "{MAPPING}has_url = {{ column = \"url\", type = \"present\" }}\n\
             bio = {{ column = \"bio\", type = \"text\" }}\n\
             \n[cells]\nunquote = true\nmissing = [\"None\", \"null\"]\n"
        );
        let mapping = CsvMapping::from_toml(&mapping).unwrap();
        let csv = "id,name,followers,default_image,created_at,bot,url,bio\n\
                   1,a,1,false,12-03-2017 00:00,0,https://example.org,hello\n\
                   2,b,1,false,12-03-2017 00:00,0,,\n\
                   3,\"\"\"c\"\"\",1,false,\"\"\"12-03-2017 00:00\"\"\",0,null,\"\"\"\"\"\"\n\
                   4,d,None,false,12-03-2017 00:00,\" \"\"1\"\" \",\" None \",\"\"\"a \"\"quoted\"\" bio\"\"\"\n";
        let events = mapping.read_rows(csv.as_bytes()).unwrap();
        let has_url: Vec<_> = events
            .iter()
            .map(|e| e.event.attribute("has_url").cloned())
            .collect();
        assert_eq!(
            has_url,
            [true, false, false, false].map(|b| Some(Value::Bool(b))),
            "present is always there, true only for a value"
        );
        assert_eq!(
            events[0].event.attribute("bio"),
            Some(&Value::Text("hello".into()))
        );
        assert_eq!(events[1].event.attribute("bio"), None);
        // `"c"` loses its quotes in the actor and the date; `""` is empty.
        assert_eq!(events[2].event.actor, Entity::account("c"));
        assert_eq!(
            events[2].event.attribute("age"),
            Some(&Value::Int(2 * 86_400))
        );
        assert_eq!(events[2].event.attribute("bio"), None);
        // A missing word is empty wherever it is used; only one pair of
        // quotes goes.
        assert_eq!(events[3].event.attribute("followers"), None);
        assert!(events[3].truth.abusive);
        assert_eq!(
            events[3].event.attribute("bio"),
            Some(&Value::Text("a \"quoted\" bio".into()))
        );

        // Without [cells], quotes and words are values like any other.
        let plain = format!("{MAPPING}has_url = {{ column = \"url\", type = \"present\" }}\n");
        let plain = CsvMapping::from_toml(&plain).unwrap();
        let csv = "id,name,followers,default_image,created_at,bot,url\n\
                   1,\"\"\"c\"\"\",1,false,12-03-2017 00:00,0,None\n";
        let events = plain.read_rows(csv.as_bytes()).unwrap();
        assert_eq!(events[0].event.actor, Entity::account("\"c\""));
        assert_eq!(
            events[0].event.attribute("has_url"),
            Some(&Value::Bool(true))
        );
        assert!(CsvMapping::from_toml(&format!("{MAPPING}\n[cells]\nunquoted = true\n")).is_err());
    }

    #[test]
    fn bad_rows_and_mappings_are_named() {
        let error = rows(
            "id,name,followers,default_image,created_at,bot\n1,a,many,true,12-03-2017 00:00,0\n",
        );
        match error {
            Err(ParseError::Line { line, message }) => {
                assert_eq!(line, 2);
                assert!(
                    message.contains("followers") && message.contains("many"),
                    "{message}"
                );
            }
            other => panic!("expected a line error, got {other:?}"),
        }
        let error = rows(
            "id,name,followers,default_image,created_at,bot\n1,a,1,true,12-03-2017 00:00,maybe\n",
        );
        assert!(
            matches!(error, Err(ParseError::Line { ref message, .. }) if message.contains("maybe"))
        );
        let error = rows("id,name,bot\n1,a,0\n");
        assert!(
            matches!(error, Err(ParseError::Mapping(MappingError::MissingColumn { ref column, .. })) if column == "created_at")
        );
        let both = MAPPING.replace("time_ms = 1489449600000", "time_ms = 1\ntime = \"x\"");
        assert!(CsvMapping::from_toml(&both).is_err());
        assert!(CsvMapping::from_toml("[event]\nkind = 1").is_err());
    }
}
