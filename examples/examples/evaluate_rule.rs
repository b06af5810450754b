//! Load a rule into the engine's sandbox and judge a few events with it,
//! using the library directly (no server).
//!
//! ```text
//! cargo run -p enforcer-examples --example evaluate_rule [path/to/rule.wasm]
//! ```
//!
//! Without a path it uses the built-in `mass-forwarding` example rule.

use std::sync::Arc;

use enforcer::event::{Entity, Event, Value};
use enforcer::runtime::Runtime;
use enforcer::state::{FixedState, StateView};

fn main() -> anyhow::Result<()> {
    let wasm = match std::env::args().nth(1) {
        Some(path) => std::fs::read(path)?,
        None => enforcer::examples::EXAMPLE_RULES
            .iter()
            .find(|(name, _)| *name == "mass-forwarding")
            .map(|(_, wasm)| wasm.to_vec())
            .expect("mass-forwarding is an example rule"),
    };
    let runtime = Runtime::new()?;
    let rule = runtime.load(&wasm)?;
    println!(
        "loaded {} {} ({})",
        rule.name(),
        rule.manifest().version,
        rule.sha256()
    );

    // What the engine knows about these accounts right now.
    let state: Arc<dyn StateView> = Arc::new(
        FixedState::new()
            .with_counter(Entity::account("quiet"), "forwards", 4)
            .with_counter(Entity::account("busy"), "forwards", 350),
    );
    for (id, account, chats) in [("e1", "quiet", 2), ("e2", "busy", 2), ("e3", "quiet", 60)] {
        let event = Arc::new(
            Event::new(
                id,
                "message.forwarded",
                1_764_000_000_000,
                Entity::account(account),
            )
            .with("chat_count", Value::Int(chats)),
        );
        let outcome = rule.evaluate(&event, &state);
        match outcome.result {
            Ok(verdict) => println!(
                "{id} {account} forwards to {chats}: {:?} ({:.2}) {:?}",
                verdict.severity,
                verdict.score,
                verdict
                    .reasons
                    .iter()
                    .map(|r| &r.explanation)
                    .collect::<Vec<_>>()
            ),
            Err(error) => println!("{id}: rule failed: {error}"),
        }
    }
    Ok(())
}
