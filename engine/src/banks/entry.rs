//! One entry of a hash bank, the match a lookup returns, and the allow-list
//! hit that suppresses one.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A 256-bit PDQ hash, in the byte order of its 64-hex-digit form.
pub type Pdq = [u8; 32];

/// One entry of a bank: a hash of known material and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BankEntry {
    /// The entry's id in its bank, unique there, as evidence names it.
    pub id: Arc<str>,
    /// The PDQ hash.
    pub hash: Pdq,
    /// Where the hash came from (a hash list, a clearing house, a review).
    pub source: Arc<str>,
    /// When it was added to the bank (milliseconds since the Unix epoch).
    pub added_at_ms: i64,
}

impl BankEntry {
    /// An entry with no source and no time of adding.
    pub fn new(id: impl Into<Arc<str>>, hash: Pdq) -> Self {
        BankEntry {
            id: id.into(),
            hash,
            source: Arc::from(""),
            added_at_ms: 0,
        }
    }

    /// The same entry, from `source`, added at `added_at_ms`.
    pub fn from_source(mut self, source: impl Into<Arc<str>>, added_at_ms: i64) -> Self {
        self.source = source.into();
        self.added_at_ms = added_at_ms;
        self
    }
}

/// A bank entry within the asked distance of a hash: the evidence a
/// decision and a clearing-house report carry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashMatch {
    /// The bank.
    pub bank: String,
    /// The entry's id in the bank.
    pub entry_id: String,
    /// The entry's hash.
    #[serde(with = "hex_hash")]
    pub entry_hash: Pdq,
    /// Hamming distance in bits between the entry and the hash looked up.
    pub distance: u32,
    /// Where the entry came from.
    #[serde(default)]
    pub source: String,
    /// When the entry was added to the bank.
    #[serde(default)]
    pub added_at_ms: i64,
}

/// A known false positive near the hash looked up: while it stands, the
/// matches of the lookup are suppressed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllowHit {
    /// The allow-list.
    pub allow_list: String,
    /// Its entry.
    pub entry_id: String,
    /// Hamming distance in bits from the hash looked up.
    pub distance: u32,
}

/// One lookup a rule made that found something: what was looked up and
/// what it matched. Lookups that matched nothing are not recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchEvidence {
    /// The bank looked in.
    pub bank: String,
    /// The hash looked up (the media's).
    #[serde(with = "hex_hash")]
    pub query_hash: Pdq,
    /// The distance the rule asked for.
    pub max_distance: u32,
    /// The entries within it, nearest first.
    pub matches: Vec<HashMatch>,
    /// The allow-list entry that suppressed them, if one did: then the
    /// rule was given none of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed_by: Option<AllowHit>,
}

/// What one lookup in a bank found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HashLookup {
    /// Entries within the distance, nearest first (ties by entry id). When
    /// the lookup is suppressed these are what would have matched: rules
    /// are given none of them, the decision's evidence keeps them all.
    pub matches: Vec<HashMatch>,
    /// The allow-list entry that suppressed the matches, if one did.
    pub suppressed_by: Option<AllowHit>,
}

impl HashLookup {
    /// The matches a rule is given: none when an allow-list suppressed them.
    pub fn effective(&self) -> &[HashMatch] {
        if self.suppressed_by.is_some() {
            &[]
        } else {
            &self.matches
        }
    }
}

/// Bits that differ between two hashes.
pub fn hamming(a: &Pdq, b: &Pdq) -> u32 {
    let word = |h: &Pdq, i: usize| {
        u64::from_le_bytes([
            h[i],
            h[i + 1],
            h[i + 2],
            h[i + 3],
            h[i + 4],
            h[i + 5],
            h[i + 6],
            h[i + 7],
        ])
    };
    (0..4)
        .map(|w| (word(a, w * 8) ^ word(b, w * 8)).count_ones())
        .sum()
}

/// A hash from its 64 hex digits (either case).
pub fn parse_hex(text: &str) -> Result<Pdq, String> {
    let text = text.trim();
    if text.len() != 64 {
        return Err(format!(
            "`{}` is {} characters; a PDQ hash is 64 hex digits",
            shorten(text),
            text.len()
        ));
    }
    let mut hash = [0u8; 32];
    hex::decode_to_slice(text, &mut hash)
        .map_err(|e| format!("`{}` is not hex: {e}", shorten(text)))?;
    Ok(hash)
}

/// At most 80 characters of `text`, for an error message.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(80) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

/// Serde for a hash as its 64 hex digits.
pub mod hex_hash {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::Pdq;

    /// Write the hash as hex.
    pub fn serialize<S: Serializer>(hash: &Pdq, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(hash))
    }

    /// Read a hash from hex.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Pdq, D::Error> {
        let text = String::deserialize(deserializer)?;
        super::parse_hex(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hamming_counts_differing_bits_in_every_word() {
        let zero = [0u8; 32];
        let mut other = zero;
        other[0] = 0b1011;
        other[15] = 0x80;
        other[31] = 0xff;
        assert_eq!(hamming(&zero, &other), 3 + 1 + 8);
        assert_eq!(hamming(&other, &other), 0);
        assert_eq!(hamming(&zero, &[0xff; 32]), 256);
    }

    #[test]
    fn hex_round_trips_and_refuses_bad_text() {
        let text = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
        let hash = parse_hex(text).unwrap();
        assert_eq!(hash[0], 0xf8);
        assert_eq!(hex::encode(hash), text);
        assert_eq!(parse_hex(&text.to_uppercase()).unwrap(), hash);
        assert!(parse_hex(&text[1..]).unwrap_err().contains("63 characters"));
        let bad = format!("{}zz", &text[..62]);
        assert!(parse_hex(&bad).unwrap_err().contains("not hex"));
    }
}
