//! Label values and the dense indexes behind them: fixed label sets are
//! kept as arrays of atomics, indexed by exhaustive matches, so a variant
//! added to an enum fails to compile here instead of being miscounted.

use crate::policy::Mode;
use crate::verdict::{Action, RuleError, Severity};

/// Every severity, in index order.
pub const SEVERITIES: [Severity; 4] = [
    Severity::Allow,
    Severity::Review,
    Severity::Limit,
    Severity::Block,
];

/// A severity's index in [`SEVERITIES`].
pub fn severity_index(severity: Severity) -> usize {
    match severity {
        Severity::Allow => 0,
        Severity::Review => 1,
        Severity::Limit => 2,
        Severity::Block => 3,
    }
}

/// Every action, in index order.
pub const ACTIONS: [Action; 5] = [
    Action::BlockAccount,
    Action::BanGroup,
    Action::LimitForwarding,
    Action::RemoveMedia,
    Action::ReportToClearinghouse,
];

/// An action's index in [`ACTIONS`].
pub fn action_index(action: Action) -> usize {
    match action {
        Action::BlockAccount => 0,
        Action::BanGroup => 1,
        Action::LimitForwarding => 2,
        Action::RemoveMedia => 3,
        Action::ReportToClearinghouse => 4,
    }
}

/// Every rule error kind ([`RuleError::kind`]), in index order.
pub const ERROR_KINDS: [&str; 10] = [
    "out_of_fuel",
    "deadline",
    "out_of_memory",
    "stack_overflow",
    "panic",
    "trap",
    "host_call",
    "bad_output",
    "unavailable",
    "state",
];

/// An error's index in [`ERROR_KINDS`].
pub fn error_index(error: &RuleError) -> usize {
    match error {
        RuleError::OutOfFuel { .. } => 0,
        RuleError::Deadline { .. } => 1,
        RuleError::OutOfMemory { .. } => 2,
        RuleError::StackOverflow => 3,
        RuleError::Panic { .. } => 4,
        RuleError::Trap { .. } => 5,
        RuleError::HostCall { .. } => 6,
        RuleError::BadOutput { .. } => 7,
        RuleError::Unavailable { .. } => 8,
        RuleError::State { .. } => 9,
    }
}

/// A rule's mode as a label value.
pub fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Enforce => "enforce",
        Mode::Shadow => "shadow",
        Mode::Disabled => "disabled",
    }
}

/// A gRPC status code as the gRPC specification spells it
/// (`INVALID_ARGUMENT`).
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_follow_the_lists() {
        for (index, severity) in SEVERITIES.into_iter().enumerate() {
            assert_eq!(severity_index(severity), index);
        }
        for (index, action) in ACTIONS.into_iter().enumerate() {
            assert_eq!(action_index(action), index);
        }
        let message = String::new;
        let errors = [
            RuleError::OutOfFuel { budget: 1 },
            RuleError::Deadline { limit_ms: 1 },
            RuleError::OutOfMemory { limit_bytes: 1 },
            RuleError::StackOverflow,
            RuleError::Panic { message: message() },
            RuleError::Trap { message: message() },
            RuleError::HostCall { message: message() },
            RuleError::BadOutput { message: message() },
            RuleError::Unavailable { message: message() },
            RuleError::State { message: message() },
        ];
        for error in &errors {
            assert_eq!(ERROR_KINDS[error_index(error)], error.kind());
        }
        assert_eq!(code_name(tonic::Code::InvalidArgument), "INVALID_ARGUMENT");
    }
}
