//! A corpus of hostile events, shared by the hostile-request tests and the
//! load generator's soak runs: strings far over their limits, ten thousand
//! attributes, NaN and infinite floats, timestamps at the ends of their
//! range, entity types out of range, and images that are not images. Each
//! comes with the status the engine must answer and words its message must
//! hold.

use std::collections::BTreeMap;

use enforcer::api::v1;
use tonic::Code;

/// `base` with one change made by `change`.
pub fn with(base: &v1::Event, change: impl FnOnce(&mut v1::Event)) -> v1::Event {
    let mut event = base.clone();
    change(&mut event);
    event
}

/// An attribute value.
pub fn value(kind: v1::value::Kind) -> v1::Value {
    v1::Value { kind: Some(kind) }
}

/// `base` with the attribute `name` set.
pub fn attribute(base: &v1::Event, name: &str, kind: v1::value::Kind) -> v1::Event {
    with(base, |e| {
        e.attributes.insert(name.into(), value(kind));
    })
}

/// A PNG claiming to be `side` x `side` pixels: its header, and one empty
/// data block. The decoder reads the sides before any pixel.
pub fn png_header(side: u32) -> Vec<u8> {
    let mut header = side.to_be_bytes().to_vec();
    header.extend(side.to_be_bytes());
    header.extend([8, 2, 0, 0, 0]); // 8-bit RGB, no interlace
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend(png_chunk(b"IHDR", &header));
    // A zlib stream of one empty stored block.
    bytes.extend(png_chunk(
        b"IDAT",
        &[0x78, 0x01, 0x01, 0x00, 0x00, 0xFF, 0xFF, 0, 0, 0, 1],
    ));
    bytes.extend(png_chunk(b"IEND", &[]));
    bytes
}

/// One PNG chunk: length, type, data and the CRC-32 (IEEE, reflected) of
/// type and data, which the decoder checks.
fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
    chunk.extend(kind);
    chunk.extend(data);
    let mut crc = !0u32;
    for &byte in &chunk[4..] {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    chunk.extend((!crc).to_be_bytes());
    chunk
}

/// A hostile event: what it is, the event, the status it must get, and
/// words that status's message must hold.
pub type Hostile = (&'static str, v1::Event, Code, Vec<String>);

/// Hostile events that prost decodes, each made from the good event `base`.
pub fn hostile_events(base: &v1::Event) -> Vec<Hostile> {
    use v1::value::Kind;
    let invalid = Code::InvalidArgument;
    let long_name = "n".repeat(100_000);
    vec![
        (
            "a kind of 1 MB",
            with(base, |e| e.kind = "k".repeat(1 << 20)),
            invalid,
            vec!["event.kind".into(), "over 128 bytes".into()],
        ),
        (
            "a target id of 1 MB",
            with(base, |e| e.target = wire_entity(&"t".repeat(1 << 20))),
            invalid,
            vec!["event.target.id".into(), "is 1048576 bytes".into()],
        ),
        (
            "an attribute name of 100 KB",
            attribute(base, &long_name, Kind::Int(1)),
            invalid,
            vec!["event.attributes[\"nnnn".into(), "over 128 bytes".into()],
        ),
        (
            "an attribute name of 100 KB with no value",
            with(base, |e| {
                e.attributes
                    .insert(long_name.clone(), v1::Value { kind: None });
            }),
            invalid,
            vec!["event.attributes[\"nnnn".into(), "has no value set".into()],
        ),
        (
            "an empty attribute name",
            attribute(base, "", Kind::Int(1)),
            invalid,
            vec!["event.attributes[\"\"]".into(), "is empty".into()],
        ),
        (
            "10,000 attributes",
            with(base, |e| {
                e.attributes = (0..10_000)
                    .map(|i| (format!("a{i}"), value(Kind::Boolean(true))))
                    .collect::<BTreeMap<_, _>>();
            }),
            invalid,
            vec!["event.attributes: 10000 attributes, over the limit of 256".into()],
        ),
        (
            "a NaN float",
            attribute(base, "score", Kind::Float(f64::NAN)),
            invalid,
            vec![
                "event.attributes[\"score\"]".into(),
                "NaN".into(),
                "finite".into(),
            ],
        ),
        (
            "an infinite float",
            attribute(base, "score", Kind::Float(f64::NEG_INFINITY)),
            invalid,
            vec!["event.attributes[\"score\"]".into(), "-inf".into()],
        ),
        (
            "a float list holding infinity",
            attribute(
                base,
                "scores",
                Kind::FloatList(v1::FloatList {
                    values: vec![0.5, f64::INFINITY],
                }),
            ),
            invalid,
            vec![
                "event.attributes[\"scores\"]".into(),
                "element 1 is inf".into(),
            ],
        ),
        (
            "a timestamp at the last second an i64 holds",
            with(base, |e| e.occurred_at.as_mut().unwrap().seconds = i64::MAX),
            invalid,
            vec!["event.occurred_at".into(), "out of range".into()],
        ),
        (
            "a timestamp at the first second an i64 holds",
            with(base, |e| e.occurred_at.as_mut().unwrap().seconds = i64::MIN),
            invalid,
            vec!["event.occurred_at".into(), "out of range".into()],
        ),
        (
            "a timestamp in the year 10000",
            with(base, |e| {
                e.occurred_at.as_mut().unwrap().seconds = 253_402_300_800
            }),
            invalid,
            vec![
                "event.occurred_at".into(),
                "ahead of the engine's clock".into(),
            ],
        ),
        (
            "a timestamp the second before the epoch, nanos set",
            with(base, |e| {
                e.occurred_at = Some(prost_types::Timestamp {
                    seconds: -1,
                    nanos: 999_999_999,
                })
            }),
            invalid,
            vec!["event.occurred_at".into(), "before the Unix epoch".into()],
        ),
        (
            "an entity type far out of range",
            with(base, |e| e.actor.as_mut().unwrap().r#type = i32::MIN),
            invalid,
            vec!["event.actor.type".into(), "is not an entity type".into()],
        ),
        (
            "garbage as an image",
            attribute(
                base,
                "image",
                Kind::Bytes(b"<html>not an image</html>".to_vec()),
            ),
            invalid,
            vec![
                "event.attributes.image".into(),
                "not a JPEG, PNG, GIF or WebP".into(),
            ],
        ),
        (
            "an image sent as text",
            attribute(base, "image", Kind::Text("iVBORw0KGgo=".into())),
            invalid,
            vec!["event.attributes.image".into(), "is not bytes".into()],
        ),
        (
            "a PNG header claiming 100000 x 100000 pixels",
            attribute(base, "image", Kind::Bytes(png_header(100_000))),
            invalid,
            vec!["event.attributes.image".into(), "100000x100000".into()],
        ),
        (
            "a PNG header and no pixels",
            attribute(base, "image", Kind::Bytes(png_header(64))),
            invalid,
            vec!["event.attributes.image".into(), "PNG".into()],
        ),
        (
            "an empty image",
            attribute(base, "image", Kind::Bytes(Vec::new())),
            invalid,
            vec!["event.attributes.image".into(), "empty".into()],
        ),
    ]
}

/// An account of id `id`.
pub fn wire_entity(id: &str) -> Option<v1::Entity> {
    Some(v1::Entity {
        r#type: v1::EntityType::Account as i32,
        id: id.into(),
    })
}
