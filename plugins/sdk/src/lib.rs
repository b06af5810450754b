//! The Enforcer rule SDK: write a rule in Rust, test it natively, build it to
//! WebAssembly and load it into the engine.
//!
//! A rule is a type that implements [`Rule`] and is exported with [`rule!`]:
//!
//! ```
//! use enforcer_sdk::*;
//!
//! pub struct ForwardBurst;
//!
//! impl Rule for ForwardBurst {
//!     fn manifest() -> Manifest {
//!         Manifest::new("forward-burst", "1.0.0").on("message.forwarded")
//!     }
//!
//!     fn evaluate(event: &Event, _state: &State) -> Verdict {
//!         match event.int("chat_count") {
//!             Some(n) if n >= 20 => Verdict::new(Severity::Limit, 0.9)
//!                 .action(Action::LimitForwarding, Subject::Actor)
//!                 .reason("forward-burst", format!("one message forwarded to {n} chats")),
//!             _ => Verdict::allow(),
//!         }
//!     }
//! }
//!
//! rule!(ForwardBurst);
//! ```
//!
//! Rules are pure functions of the event and the engine's state: they keep
//! nothing between calls (the engine resets each instance after every call)
//! and they change state only by returning effects.

mod event;
#[cfg(target_arch = "wasm32")]
mod glue;
pub mod native;
pub mod testing;
mod types;

pub use event::{Event, State, log};
pub use types::*;

/// A rule: a manifest that says what it wants, and a judgement of one event.
pub trait Rule {
    /// The rule's name, version, the event kinds it wants and the counters it
    /// reads. Called once per instance, before any evaluation.
    fn manifest() -> Manifest;

    /// Judge one event of a kind the manifest subscribes to.
    fn evaluate(event: &Event, state: &State) -> Verdict;
}

/// Export a [`Rule`] as the plugin's entry point. Use it once per crate.
///
/// On targets other than wasm it expands to nothing, so the same crate builds
/// natively for unit tests and benchmarks.
#[macro_export]
macro_rules! rule {
    ($rule:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct EnforcerEntryPoint;
            impl $crate::__private::Guest for EnforcerEntryPoint {
                fn manifest() -> $crate::__private::WitManifest {
                    $crate::__private::manifest::<$rule>()
                }
                fn evaluate() -> $crate::__private::WitVerdict {
                    $crate::__private::evaluate::<$rule>()
                }
            }
            $crate::__private::export!(EnforcerEntryPoint with_types_in $crate::__private::bindings);
        };
    };
}

/// The glue the [`rule!`] macro expands to. Not part of the API.
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod __private {
    pub use crate::glue::bindings;
    pub use crate::glue::bindings::Guest;
    pub use crate::glue::bindings::export;
    pub use crate::glue::{WitManifest, WitVerdict, evaluate, manifest};
}
