//! Request size limits, answered the way gRPC specifies.
//!
//! tonic refuses a message over the size limit with `OUT_OF_RANGE`; the gRPC
//! specification (and every other implementation) says `RESOURCE_EXHAUSTED`,
//! which is what clients retry and alert on. These helpers turn the one into
//! the other, with a message that says which limit and how to change it.

use tonic::{Code, Status};

/// What tonic's message says when a request is over the size limit.
const TONIC_OVERSIZED: &str = "Error, decoded message length too large";

/// `RESOURCE_EXHAUSTED` for tonic's oversized-message error; any other
/// status unchanged.
pub fn explain_oversized(status: Status) -> Status {
    if status.code() != Code::OutOfRange || !status.message().starts_with(TONIC_OVERSIZED) {
        return status;
    }
    // "found N bytes, the limit is: M bytes"
    let numbers: Vec<&str> = status
        .message()
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .collect();
    let message = match numbers.as_slice() {
        [found, limit] => format!(
            "the request message is {found} bytes, over this server's limit of {limit} bytes \
             (`max_message_bytes` in its configuration)"
        ),
        _ => format!(
            "the request message is over this server's size limit: {}",
            status.message()
        ),
    };
    Status::resource_exhausted(message)
}

/// The same for a whole HTTP response: unary calls that fail while their
/// request is decoded answer with the status in the response headers.
pub fn oversized_response<B>(mut response: http::Response<B>) -> http::Response<B> {
    let Some(status) = Status::from_header_map(response.headers()) else {
        return response;
    };
    if status.code() == Code::OutOfRange && status.message().starts_with(TONIC_OVERSIZED) {
        // Cannot fail: the message is ASCII made here.
        let _ = explain_oversized(status).add_header(response.headers_mut());
    }
    response
}
