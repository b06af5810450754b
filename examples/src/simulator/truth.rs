//! What the simulator knows and a detector has to find out: the class of
//! every account and group, whether each event is part of abuse, and the
//! simulated `known-csam` hash bank. These are the labels a rule's precision
//! and recall are measured against.

use enforcer::event::{Entity, Event};
use serde::{Deserialize, Serialize};

/// What an account or a group really is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// An ordinary account: chats with contacts and in its groups.
    Ordinary,
    /// An ordinary group chat.
    OrdinaryGroup,
    /// A young account messaging strangers in bulk.
    Spammer,
    /// An account forwarding messages to many chats.
    MassForwarder,
    /// A member of a ring trading known child-exploitation imagery.
    CsamRingMember,
    /// A group where such a ring trades.
    CsamGroup,
    /// A freshly created account that starts messaging in bursts at once.
    NewAccountBot,
}

impl Class {
    /// Every class, in declaration order.
    pub const ALL: [Class; 7] = [
        Class::Ordinary,
        Class::OrdinaryGroup,
        Class::Spammer,
        Class::MassForwarder,
        Class::CsamRingMember,
        Class::CsamGroup,
        Class::NewAccountBot,
    ];

    /// Whether entities of this class are abusive.
    pub fn is_abusive(self) -> bool {
        !matches!(self, Class::Ordinary | Class::OrdinaryGroup)
    }

    /// The `snake_case` name, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Ordinary => "ordinary",
            Class::OrdinaryGroup => "ordinary_group",
            Class::Spammer => "spammer",
            Class::MassForwarder => "mass_forwarder",
            Class::CsamRingMember => "csam_ring_member",
            Class::CsamGroup => "csam_group",
            Class::NewAccountBot => "new_account_bot",
        }
    }
}

impl std::fmt::Display for Class {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The truth about one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventTruth {
    /// The class of the acting account.
    pub class: Class,
    /// Whether the event is part of abusive behaviour. An abusive account's
    /// ordinary chatter is not, and neither is an ordinary account's report
    /// of a spammer.
    pub abusive: bool,
}

/// An event with its truth, one line of the JSON lines output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LabelledEvent {
    /// The event as the engine receives it.
    pub event: Event,
    /// What the simulator knows about it.
    pub truth: EventTruth,
}

/// The truth about one account or group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityTruth {
    /// The account or group.
    pub entity: Entity,
    /// What it really is.
    pub class: Class,
    /// Whether it is abusive (`class.is_abusive()`).
    pub abusive: bool,
}

/// One entry of the simulated `known-csam` hash bank.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankEntry {
    /// The bank's id for the entry.
    pub id: String,
    /// A 256-bit PDQ hash, serialised as 64 lowercase hex digits.
    #[serde(with = "hex_hash")]
    pub hash: [u8; 32],
}

/// Everything one simulation run produced.
#[derive(Clone, Debug, PartialEq)]
pub struct Traffic {
    /// The events in arrival order.
    pub events: Vec<LabelledEvent>,
    /// Every account and group, accounts first.
    pub truth: Vec<EntityTruth>,
    /// The `known-csam` bank the ring's media is drawn from.
    pub bank: Vec<BankEntry>,
}

impl Traffic {
    /// The engine's hash banks holding this traffic's `known-csam` bank,
    /// for a pipeline that judges it.
    pub fn hash_banks(&self) -> enforcer::banks::HashBanks {
        enforcer::banks::HashBanks::new().with_entries(
            "known-csam",
            self.bank
                .iter()
                .map(|entry| enforcer::banks::BankEntry::new(entry.id.as_str(), entry.hash)),
        )
    }
}

/// Serde for a 32-byte hash as 64 hex digits, the way hash banks are
/// usually exchanged (and short enough to read in a JSON line).
mod hex_hash {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(hash: &[u8; 32], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::to_hex(hash))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(deserializer)?;
        super::from_hex(&text).ok_or_else(|| D::Error::custom("expected 64 hex digits"))
    }
}

/// Lowercase hex of a hash.
pub fn to_hex(hash: &[u8; 32]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(64);
    for byte in hash {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

/// A hash from exactly 64 hex digits (either case), or `None`.
pub fn from_hex(text: &str) -> Option<[u8; 32]> {
    let digits = text.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let mut hash = [0u8; 32];
    for (byte, pair) in hash.iter_mut().zip(digits.chunks_exact(2)) {
        let high = char::from(pair[0]).to_digit(16)?;
        let low = char::from(pair[1]).to_digit(16)?;
        *byte = u8::try_from(high * 16 + low).ok()?;
    }
    Some(hash)
}
