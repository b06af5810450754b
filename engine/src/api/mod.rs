//! The gRPC API, `enforcement.v1`, generated from `proto/` at build time,
//! and the conversions between its messages and the engine's own types.
//!
//! The engine's types stay the engine's: the pipeline never sees a protobuf
//! message. Conversion into the engine validates what the wire format cannot
//! (required fields, enum values, timestamps) and names the offending field
//! in every error, so a client can fix its request from the message alone.

mod from_proto;
mod to_proto;

pub use from_proto::{FieldError, entity_from_proto, event_from_proto, prefix_field, timestamp_ms};
pub use to_proto::{
    action_to_proto, decision_to_proto, entity_to_proto, event_to_proto, severity_to_proto,
};

/// The generated messages, server and client of `enforcement.v1`.
#[allow(missing_docs, clippy::all)]
pub mod v1 {
    tonic::include_proto!("enforcement.v1");
}

/// The encoded file descriptor set of the API (with its imports), which
/// server reflection serves so that tools can call the engine without the
/// `.proto` files.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/enforcement_descriptor.bin"));
