//! Byte-level mutation of real inputs: the edits a fuzzer makes (flips,
//! interesting values, insertions, deletions, truncations, splices), as a
//! proptest strategy whose shrinking removes edits.

use proptest::prelude::*;

/// One edit, positions taken modulo the input's length when applied.
#[derive(Clone, Debug)]
pub enum Edit {
    /// Flip one bit.
    Flip(usize, u8),
    /// Overwrite a byte with a value decoders treat specially.
    Interesting(usize, u8),
    /// Overwrite a byte.
    Set(usize, u8),
    /// Insert bytes.
    Insert(usize, Vec<u8>),
    /// Remove up to this many bytes.
    Remove(usize, usize),
    /// Cut the input short.
    Truncate(usize),
    /// Copy a run of the input to another place (repeats a field, a chunk).
    Duplicate(usize, usize, usize),
}

const INTERESTING: [u8; 8] = [0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF, 0x10, 0x40];

fn edit() -> impl Strategy<Value = Edit> {
    let at = any::<usize>();
    prop_oneof![
        (at, 0u8..8).prop_map(|(at, bit)| Edit::Flip(at, bit)),
        (at, 0..INTERESTING.len()).prop_map(|(at, i)| Edit::Interesting(at, INTERESTING[i])),
        (at, any::<u8>()).prop_map(|(at, byte)| Edit::Set(at, byte)),
        (at, prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(at, b)| Edit::Insert(at, b)),
        (at, 1usize..64).prop_map(|(at, n)| Edit::Remove(at, n)),
        at.prop_map(Edit::Truncate),
        (at, at, 1usize..64).prop_map(|(from, to, n)| Edit::Duplicate(from, to, n)),
    ]
}

/// Apply `edits` to `bytes` in order.
pub fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for edit in edits {
        let len = bytes.len();
        let pos = |at: usize| if len == 0 { 0 } else { at % len };
        match edit {
            Edit::Flip(at, bit) if len > 0 => bytes[pos(*at)] ^= 1 << bit,
            Edit::Interesting(at, value) | Edit::Set(at, value) if len > 0 => {
                bytes[pos(*at)] = *value
            }
            Edit::Insert(at, inserted) => {
                let at = if len == 0 { 0 } else { at % (len + 1) };
                bytes.splice(at..at, inserted.iter().copied());
            }
            Edit::Remove(at, n) if len > 0 => {
                let at = pos(*at);
                bytes.drain(at..(at + n).min(len));
            }
            Edit::Truncate(at) => bytes.truncate(if len == 0 { 0 } else { at % len }),
            Edit::Duplicate(from, to, n) if len > 0 => {
                let from = pos(*from);
                let run = bytes[from..(from + n).min(len)].to_vec();
                let to = to % (len + 1);
                bytes.splice(to..to, run);
            }
            _ => {}
        }
    }
    bytes
}

/// One of `seeds` with up to `max_edits` edits (none, sometimes: the seed
/// itself must pass too).
pub fn mutated(seeds: Vec<Vec<u8>>, max_edits: usize) -> impl Strategy<Value = Vec<u8>> {
    let count = seeds.len();
    (0..count, prop::collection::vec(edit(), 0..=max_edits))
        .prop_map(move |(index, edits)| apply(seeds[index].clone(), &edits))
}

/// One edit to a line of a TOML document, line numbers taken modulo the
/// document's.
#[derive(Clone, Debug)]
pub enum LineEdit {
    /// Drop a line.
    Delete(usize),
    /// Repeat a line (a key set twice, a table opened twice).
    Duplicate(usize),
    /// Move a line elsewhere (a key under another table).
    Move(usize, usize),
    /// Replace what follows `=` on a line with a token.
    SetValue(usize, usize),
    /// Insert a token as a line of its own.
    Insert(usize, usize),
}

fn line_edit(tokens: usize) -> impl Strategy<Value = LineEdit> {
    let at = any::<usize>();
    prop_oneof![
        1 => at.prop_map(LineEdit::Delete),
        1 => at.prop_map(LineEdit::Duplicate),
        1 => (at, at).prop_map(|(from, to)| LineEdit::Move(from, to)),
        3 => (at, 0..tokens).prop_map(|(at, token)| LineEdit::SetValue(at, token)),
        1 => (at, 0..tokens).prop_map(|(at, token)| LineEdit::Insert(at, token)),
    ]
}

fn apply_lines(text: &str, edits: &[LineEdit], tokens: &[&str]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for edit in edits {
        let len = lines.len();
        if len == 0 {
            break;
        }
        match edit {
            LineEdit::Delete(at) => {
                lines.remove(at % len);
            }
            LineEdit::Duplicate(at) => {
                let line = lines[at % len].clone();
                lines.insert(at % len, line);
            }
            LineEdit::Move(from, to) => {
                let line = lines.remove(from % len);
                lines.insert(to % len, line);
            }
            LineEdit::SetValue(at, token) => {
                let line = &mut lines[at % len];
                if let Some(eq) = line.find('=') {
                    line.replace_range(eq + 1.., &format!(" {}", tokens[*token]));
                }
            }
            LineEdit::Insert(at, token) => lines.insert(at % (len + 1), tokens[*token].to_string()),
        }
    }
    lines.join("\n")
}

/// One of `seeds` with up to `max_edits` line edits (values swapped for
/// `tokens`), and sometimes byte edits on top (kept as text: the parsers
/// take `&str`, so invalid UTF-8 is replaced, not passed).
pub fn mutated_text(
    seeds: Vec<String>,
    tokens: &'static [&'static str],
    max_edits: usize,
) -> impl Strategy<Value = String> {
    let count = seeds.len();
    (
        0..count,
        prop::collection::vec(line_edit(tokens.len()), 0..=max_edits),
        proptest::option::weighted(0.25, prop::collection::vec(edit(), 1..4)),
    )
        .prop_map(move |(index, lines, bytes)| {
            let text = apply_lines(&seeds[index], &lines, tokens);
            match bytes {
                None => text,
                Some(edits) => {
                    String::from_utf8_lossy(&apply(text.into_bytes(), &edits)).into_owned()
                }
            }
        })
}
