//! The event vocabulary of `plugins/EVENTS.md`, one constructor per kind, so
//! that attribute names, types and order are written down exactly once.
//! Events leave here without an id; ids are given in arrival order at the end.

use enforcer::event::{Entity, Event, Value};

use super::media::Photo;

/// `account.created`
pub const ACCOUNT_CREATED: &str = "account.created";
/// `message.sent`
pub const MESSAGE_SENT: &str = "message.sent";
/// `message.forwarded`
pub const MESSAGE_FORWARDED: &str = "message.forwarded";
/// `account.blocked`
pub const ACCOUNT_BLOCKED: &str = "account.blocked";
/// `report.filed`
pub const REPORT_FILED: &str = "report.filed";
/// `media.profile_photo`
pub const MEDIA_PROFILE_PHOTO: &str = "media.profile_photo";
/// `media.group_icon`
pub const MEDIA_GROUP_ICON: &str = "media.group_icon";
/// `profile.updated`
pub const PROFILE_UPDATED: &str = "profile.updated";
/// `group.updated`
pub const GROUP_UPDATED: &str = "group.updated";
/// `group.invite_link_shared`
pub const GROUP_INVITE_LINK_SHARED: &str = "group.invite_link_shared";
/// `group.joined`
pub const GROUP_JOINED: &str = "group.joined";

/// Every kind the simulator emits.
pub const KINDS: [&str; 11] = [
    ACCOUNT_CREATED,
    MESSAGE_SENT,
    MESSAGE_FORWARDED,
    ACCOUNT_BLOCKED,
    REPORT_FILED,
    MEDIA_PROFILE_PHOTO,
    MEDIA_GROUP_ICON,
    PROFILE_UPDATED,
    GROUP_UPDATED,
    GROUP_INVITE_LINK_SHARED,
    GROUP_JOINED,
];

/// A `report.filed` reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reason {
    Spam,
    Scam,
    Harassment,
    ChildSafety,
    Other,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Reason::Spam => "spam",
            Reason::Scam => "scam",
            Reason::Harassment => "harassment",
            Reason::ChildSafety => "child_safety",
            Reason::Other => "other",
        }
    }
}

/// The text field a profile or group edit changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Field {
    Name,
    Description,
}

/// An upstream text classifier's label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Label {
    ChildSexualization,
    Spam,
    Scam,
    None,
}

/// A text edit as the classifier saw it.
pub(crate) struct TextEdit {
    pub field: Field,
    pub label: Label,
    pub score: f64,
}

impl TextEdit {
    fn attributes(&self) -> [(&'static str, Value); 3] {
        let field = match self.field {
            Field::Name => "name",
            Field::Description => "description",
        };
        let label = match self.label {
            Label::ChildSexualization => "child_sexualization",
            Label::Spam => "spam",
            Label::Scam => "scam",
            Label::None => "none",
        };
        [
            ("field", text(field)),
            (
                "classifier_score",
                Value::Float(classifier_score(self.score)),
            ),
            ("classifier_label", text(label)),
        ]
    }
}

/// A sent message, from the sender's side.
pub(crate) struct Message {
    pub actor_age_seconds: i64,
    pub to_contact: bool,
    pub has_media: bool,
    pub message_id: String,
}

/// One forward of a message.
pub(crate) struct Forward {
    pub chat_count: i64,
    pub message_id: String,
    pub forward_depth: i64,
}

/// A score as classifiers report it, to three decimals. Short decimals
/// also survive a JSON round trip exactly, which arbitrary doubles do not
/// with serde_json's default (fast) float parsing.
fn classifier_score(score: f64) -> f64 {
    (score.clamp(0.0, 1.0) * 1000.0).round() / 1000.0
}

fn text(value: &str) -> Value {
    Value::Text(value.to_owned())
}

fn event(kind: &str, at: i64, actor: &Entity) -> Event {
    Event::new(String::new(), kind, at, actor.clone())
}

fn with_all<const N: usize>(mut event: Event, attributes: [(&str, Value); N]) -> Event {
    event.attributes.reserve_exact(N);
    for (name, value) in attributes {
        event.attributes.push((name.to_owned(), value));
    }
    event
}

pub(crate) fn account_created(at: i64, account: &Entity) -> Event {
    event(ACCOUNT_CREATED, at, account)
}

pub(crate) fn message_sent(
    at: i64,
    sender: &Entity,
    recipient: &Entity,
    message: Message,
) -> Event {
    let sent = event(MESSAGE_SENT, at, sender).with_target(recipient.clone());
    with_all(
        sent,
        [
            ("actor_age_seconds", Value::Int(message.actor_age_seconds)),
            ("to_contact", Value::Bool(message.to_contact)),
            ("has_media", Value::Bool(message.has_media)),
            ("message_id", Value::Text(message.message_id)),
        ],
    )
}

pub(crate) fn message_forwarded(
    at: i64,
    forwarder: &Entity,
    first_chat: Option<&Entity>,
    forward: Forward,
) -> Event {
    let mut forwarded = event(MESSAGE_FORWARDED, at, forwarder);
    forwarded.target = first_chat.cloned();
    with_all(
        forwarded,
        [
            ("chat_count", Value::Int(forward.chat_count)),
            ("message_id", Value::Text(forward.message_id)),
            ("forward_depth", Value::Int(forward.forward_depth)),
        ],
    )
}

pub(crate) fn account_blocked(at: i64, blocker: &Entity, blocked: &Entity) -> Event {
    event(ACCOUNT_BLOCKED, at, blocker).with_target(blocked.clone())
}

pub(crate) fn report_filed(at: i64, reporter: &Entity, reported: &Entity, reason: Reason) -> Event {
    let report = event(REPORT_FILED, at, reporter).with_target(reported.clone());
    with_all(report, [("reason", text(reason.as_str()))])
}

fn photo_attributes(photo: Photo) -> [(&'static str, Value); 3] {
    [
        ("pdq_hash", Value::Bytes(photo.hash.to_vec())),
        ("pdq_quality", Value::Int(photo.quality)),
        ("media_id", Value::Text(photo.media_id)),
    ]
}

pub(crate) fn profile_photo(at: i64, account: &Entity, photo: Photo) -> Event {
    with_all(
        event(MEDIA_PROFILE_PHOTO, at, account),
        photo_attributes(photo),
    )
}

pub(crate) fn group_icon(at: i64, editor: &Entity, group: &Entity, photo: Photo) -> Event {
    let icon = event(MEDIA_GROUP_ICON, at, editor).with_target(group.clone());
    with_all(icon, photo_attributes(photo))
}

pub(crate) fn profile_updated(at: i64, account: &Entity, edit: &TextEdit) -> Event {
    with_all(event(PROFILE_UPDATED, at, account), edit.attributes())
}

pub(crate) fn group_updated(at: i64, editor: &Entity, group: &Entity, edit: &TextEdit) -> Event {
    let updated = event(GROUP_UPDATED, at, editor).with_target(group.clone());
    with_all(updated, edit.attributes())
}

pub(crate) fn invite_link_shared(
    at: i64,
    sharer: &Entity,
    group: &Entity,
    public: bool,
    link_id: &str,
) -> Event {
    let shared = event(GROUP_INVITE_LINK_SHARED, at, sharer).with_target(group.clone());
    with_all(
        shared,
        [("public", Value::Bool(public)), ("link_id", text(link_id))],
    )
}

pub(crate) fn group_joined(
    at: i64,
    joiner: &Entity,
    group: &Entity,
    via_invite_link: bool,
) -> Event {
    let joined = event(GROUP_JOINED, at, joiner).with_target(group.clone());
    with_all(joined, [("via_invite_link", Value::Bool(via_invite_link))])
}
