//! The values a rule reads and returns: entities, attributes, verdicts and the
//! manifest. They mirror the WIT contract one to one, as plain Rust types that
//! work the same in a native unit test and inside the engine.

/// One minute, in seconds, for counter windows.
pub const MINUTE: u32 = 60;
/// One hour, in seconds.
pub const HOUR: u32 = 60 * MINUTE;
/// One day, in seconds.
pub const DAY: u32 = 24 * HOUR;

/// What kind of thing an entity is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntityKind {
    /// A user account.
    Account,
    /// A group chat.
    Group,
}

/// An account or a group on the platform.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Entity {
    /// Whether this is an account or a group.
    pub kind: EntityKind,
    /// The platform's id for it.
    pub id: String,
}

impl Entity {
    /// An account with this id.
    pub fn account(id: impl Into<String>) -> Self {
        Entity {
            kind: EntityKind::Account,
            id: id.into(),
        }
    }

    /// A group with this id.
    pub fn group(id: impl Into<String>) -> Self {
        Entity {
            kind: EntityKind::Group,
            id: id.into(),
        }
    }
}

/// Which entity a state read, an action or an effect is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Subject {
    /// The event's actor.
    Actor,
    /// The event's target; reads of a missing target see nothing.
    Target,
    /// Any other entity, such as a group named in an attribute.
    Entity(Entity),
}

/// A typed event attribute.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A signed integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// UTF-8 text.
    Text(String),
    /// Raw bytes, such as a PDQ hash.
    Bytes(Vec<u8>),
    /// A list of integers.
    IntList(Vec<i64>),
    /// A list of floats.
    FloatList(Vec<f64>),
    /// A list of booleans.
    BoolList(Vec<bool>),
    /// A list of texts.
    TextList(Vec<String>),
    /// A list of byte strings.
    BytesList(Vec<Vec<u8>>),
}

/// How strongly a rule wants the engine to act, from least to most.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Nothing wrong.
    Allow,
    /// A human should look.
    Review,
    /// Restrict the entity (for example cap forwarding).
    Limit,
    /// Stop the entity.
    Block,
}

/// An enforcement action a rule can recommend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Block the account.
    BlockAccount,
    /// Ban the group.
    BanGroup,
    /// Cap how widely the account can forward.
    LimitForwarding,
    /// Remove the offending media (a profile photo, a group icon).
    RemoveMedia,
    /// Report to the child-safety clearing house with the evidence.
    ReportToClearinghouse,
}

/// An action and the entity it applies to.
#[derive(Clone, Debug, PartialEq)]
pub struct RecommendedAction {
    /// What to do.
    pub action: Action,
    /// To whom.
    pub subject: Subject,
}

/// Why a rule decided what it did.
#[derive(Clone, Debug, PartialEq)]
pub struct Reason {
    /// A stable machine-readable code, such as `forward-burst`.
    pub code: String,
    /// A short explanation for a human reviewer.
    pub explanation: String,
}

/// A change a rule asks the engine to make to its state.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Put a label on a subject until `ttl_seconds` after the event's time.
    SetLabel {
        /// Who gets the label.
        subject: Subject,
        /// The label.
        label: String,
        /// How long it lasts, from the event's time.
        ttl_seconds: u64,
    },
    /// Remove a label from a subject.
    ClearLabel {
        /// Who loses the label.
        subject: Subject,
        /// The label.
        label: String,
    },
}

/// What a rule concludes about one event.
///
/// Build one with [`Verdict::allow`] or [`Verdict::new`] and the chained
/// methods:
///
/// ```
/// use enforcer_sdk::*;
/// let verdict = Verdict::new(Severity::Limit, 0.8)
///     .action(Action::LimitForwarding, Subject::Actor)
///     .reason("forward-burst", "forwarded one message to 40 chats at once")
///     .set_label(Subject::Actor, "mass-forwarder", HOUR as u64);
/// assert_eq!(verdict.severity, Severity::Limit);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// How confident the rule is that the behaviour is abusive, in [0, 1].
    pub score: f64,
    /// How strongly the rule wants the engine to act.
    pub severity: Severity,
    /// The actions the rule recommends.
    pub actions: Vec<RecommendedAction>,
    /// Why.
    pub reasons: Vec<Reason>,
    /// State changes the rule asks for.
    pub effects: Vec<Effect>,
}

impl Verdict {
    /// Nothing wrong: score 0, no actions.
    pub fn allow() -> Self {
        Verdict::new(Severity::Allow, 0.0)
    }

    /// A verdict of this severity and score (clamped to [0, 1]).
    pub fn new(severity: Severity, score: f64) -> Self {
        Verdict {
            score: if score.is_nan() {
                0.0
            } else {
                score.clamp(0.0, 1.0)
            },
            severity,
            actions: Vec::new(),
            reasons: Vec::new(),
            effects: Vec::new(),
        }
    }

    /// Recommend an action against a subject.
    pub fn action(mut self, action: Action, subject: Subject) -> Self {
        self.actions.push(RecommendedAction { action, subject });
        self
    }

    /// Add a reason: a stable code and a short human explanation.
    pub fn reason(mut self, code: impl Into<String>, explanation: impl Into<String>) -> Self {
        self.reasons.push(Reason {
            code: code.into(),
            explanation: explanation.into(),
        });
        self
    }

    /// Ask the engine to label a subject for `ttl_seconds` from the event.
    pub fn set_label(
        mut self,
        subject: Subject,
        label: impl Into<String>,
        ttl_seconds: u64,
    ) -> Self {
        self.effects.push(Effect::SetLabel {
            subject,
            label: label.into(),
            ttl_seconds,
        });
        self
    }

    /// Ask the engine to remove a label from a subject.
    pub fn clear_label(mut self, subject: Subject, label: impl Into<String>) -> Self {
        self.effects.push(Effect::ClearLabel {
            subject,
            label: label.into(),
        });
        self
    }

    /// Whether the rule found nothing to act on.
    pub fn is_allow(&self) -> bool {
        self.severity == Severity::Allow
    }
}

/// How a counter aggregates the events it sees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Aggregation {
    /// The number of matching events.
    Count,
    /// The sum of an integer attribute.
    Sum(String),
    /// The number of distinct values of an attribute.
    Distinct(String),
    /// The number of distinct actors (for a counter kept per target).
    DistinctActors,
    /// The number of distinct targets (for a counter kept per actor).
    DistinctTargets,
}

/// Which events of its kinds a counter counts. An event that lacks the
/// attribute, or has it with another type, is not counted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CounterFilter {
    /// Every event.
    All,
    /// Events whose boolean attribute is true.
    IsTrue(String),
    /// Events whose boolean attribute is false.
    IsFalse(String),
    /// Events whose text attribute equals a value.
    TextEquals(String, String),
}

/// Whose counter a matching event updates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CounterKey {
    /// The event's actor.
    Actor,
    /// The event's target.
    Target,
}

/// A behaviour counter a rule needs the engine to keep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CounterSpec {
    /// The name the rule reads it by.
    pub name: String,
    /// The event kinds that update it.
    pub event_kinds: Vec<String>,
    /// Whose counter an event updates.
    pub key: CounterKey,
    /// What it adds up.
    pub aggregation: Aggregation,
    /// Which of the events it counts.
    pub filter: CounterFilter,
    /// The longest window the rule reads, in seconds.
    pub window_seconds: u32,
}

impl CounterSpec {
    /// Count the events of `kinds` per actor, over up to `window_seconds`.
    pub fn count(name: impl Into<String>, kinds: &[&str], window_seconds: u32) -> Self {
        CounterSpec {
            name: name.into(),
            event_kinds: kinds.iter().map(|k| k.to_string()).collect(),
            key: CounterKey::Actor,
            aggregation: Aggregation::Count,
            filter: CounterFilter::All,
            window_seconds,
        }
    }

    /// Sum the integer attribute `attribute` of events of `kinds` per actor.
    pub fn sum(
        name: impl Into<String>,
        kinds: &[&str],
        attribute: &str,
        window_seconds: u32,
    ) -> Self {
        CounterSpec {
            aggregation: Aggregation::Sum(attribute.to_string()),
            ..CounterSpec::count(name, kinds, window_seconds)
        }
    }

    /// Count distinct values of `attribute` on events of `kinds` per actor.
    pub fn distinct(
        name: impl Into<String>,
        kinds: &[&str],
        attribute: &str,
        window_seconds: u32,
    ) -> Self {
        CounterSpec {
            aggregation: Aggregation::Distinct(attribute.to_string()),
            ..CounterSpec::count(name, kinds, window_seconds)
        }
    }

    /// Count distinct targets of events of `kinds` per actor, such as the
    /// distinct accounts an account messaged.
    pub fn distinct_targets(name: impl Into<String>, kinds: &[&str], window_seconds: u32) -> Self {
        CounterSpec {
            aggregation: Aggregation::DistinctTargets,
            ..CounterSpec::count(name, kinds, window_seconds)
        }
    }

    /// Count distinct actors of events of `kinds` per target, such as the
    /// distinct accounts that reported an account.
    pub fn distinct_actors(name: impl Into<String>, kinds: &[&str], window_seconds: u32) -> Self {
        CounterSpec {
            aggregation: Aggregation::DistinctActors,
            ..CounterSpec::count(name, kinds, window_seconds).by_target()
        }
    }

    /// Keep the counter for the event's target instead of its actor.
    pub fn by_target(mut self) -> Self {
        self.key = CounterKey::Target;
        self
    }

    /// Count only events whose boolean attribute `attribute` is true.
    pub fn only_if(mut self, attribute: &str) -> Self {
        self.filter = CounterFilter::IsTrue(attribute.to_string());
        self
    }

    /// Count only events whose boolean attribute `attribute` is false.
    pub fn only_if_not(mut self, attribute: &str) -> Self {
        self.filter = CounterFilter::IsFalse(attribute.to_string());
        self
    }

    /// Count only events whose text attribute `attribute` equals `value`.
    pub fn only_if_text(mut self, attribute: &str, value: &str) -> Self {
        self.filter = CounterFilter::TextEquals(attribute.to_string(), value.to_string());
        self
    }
}

/// What a rule is and what it needs.
#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    /// The rule's name, unique in a rule set.
    pub name: String,
    /// The rule's own version, for people.
    pub version: String,
    /// The event kinds the rule is given.
    pub event_kinds: Vec<String>,
    /// The counters it reads.
    pub counters: Vec<CounterSpec>,
    /// Conditions of which at least one must hold for the engine to call
    /// the rule (none: always called). See [`Guard`].
    pub guards: Vec<Guard>,
}

/// A cheap condition the engine checks itself before calling a rule, so
/// that ordinary traffic never enters the sandbox. Guards are necessary
/// conditions: the engine calls the rule only if at least one of its
/// guards holds, and a rule must allow, with no effects, every event on
/// which none holds ([`crate::testing::evaluate`] checks this on every
/// test). An attribute that is absent or of another type fails its guard.
#[derive(Clone, Debug, PartialEq)]
pub enum Guard {
    /// An integer attribute at or above a value.
    IntAtLeast(String, i64),
    /// An integer attribute below a value.
    IntBelow(String, i64),
    /// A float attribute at or above a value.
    FloatAtLeast(String, f64),
    /// A counter the rule declares, for the actor or the target, at or
    /// above a value over a window no longer than the declared one.
    CounterAtLeast {
        /// The counter's name in the manifest.
        counter: String,
        /// Whose counter.
        subject: CounterKey,
        /// The window read.
        window_seconds: u32,
        /// The least value that lets the rule be called.
        value: u64,
    },
}

impl Guard {
    /// Call the rule only if integer attribute `attribute` is at least `value`.
    pub fn int_at_least(attribute: &str, value: i64) -> Self {
        Guard::IntAtLeast(attribute.to_string(), value)
    }

    /// Call the rule only if integer attribute `attribute` is below `value`.
    pub fn int_below(attribute: &str, value: i64) -> Self {
        Guard::IntBelow(attribute.to_string(), value)
    }

    /// Call the rule only if float attribute `attribute` is at least `value`.
    pub fn float_at_least(attribute: &str, value: f64) -> Self {
        Guard::FloatAtLeast(attribute.to_string(), value)
    }

    /// Call the rule only if the actor's counter `counter` over
    /// `window_seconds` is at least `value`.
    pub fn counter_at_least(counter: &str, window_seconds: u32, value: u64) -> Self {
        Guard::CounterAtLeast {
            counter: counter.to_string(),
            subject: CounterKey::Actor,
            window_seconds,
            value,
        }
    }

    /// For a counter guard: read the target's counter instead of the actor's.
    pub fn of_target(self) -> Self {
        match self {
            Guard::CounterAtLeast {
                counter,
                window_seconds,
                value,
                ..
            } => Guard::CounterAtLeast {
                counter,
                subject: CounterKey::Target,
                window_seconds,
                value,
            },
            other => other,
        }
    }
}

impl Manifest {
    /// A rule with this name and version that subscribes to nothing yet.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        Manifest {
            name: name.into(),
            version: version.into(),
            event_kinds: Vec::new(),
            counters: Vec::new(),
            guards: Vec::new(),
        }
    }

    /// Subscribe to an event kind.
    pub fn on(mut self, kind: impl Into<String>) -> Self {
        self.event_kinds.push(kind.into());
        self
    }

    /// Add a guard: the rule is called only if at least one holds.
    pub fn guard(mut self, guard: Guard) -> Self {
        self.guards.push(guard);
        self
    }

    /// Declare a counter the rule reads.
    pub fn counter(mut self, spec: CounterSpec) -> Self {
        self.counters.push(spec);
        self
    }
}

/// A hash-bank entry within the asked distance of a hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HashMatch {
    /// The bank it is in.
    pub bank: String,
    /// The entry's id in that bank.
    pub entry_id: String,
    /// Hamming distance in bits.
    pub distance: u32,
}

/// How important a log line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Detail for rule authors.
    Debug,
    /// Normal operation.
    Info,
    /// Something odd.
    Warn,
    /// Something broken.
    Error,
}
