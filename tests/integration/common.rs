//! Helpers shared by the integration tests: built plugins, events, state.

use std::path::Path;
use std::sync::Arc;

use enforcer::event::{Entity, Event, Value};
use enforcer::state::StateView;

/// The bytes of a plugin built from `plugins/`, by crate name.
pub fn plugin(crate_name: &str) -> Vec<u8> {
    let file = Path::new(enforcer::examples::PLUGIN_DIR)
        .join(format!("{}.wasm", crate_name.replace('-', "_")));
    std::fs::read(&file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()))
}

/// A `message.forwarded` event from `account` to `chats` chats.
pub fn forward(id: &str, account: &str, chats: i64, at_ms: i64) -> Arc<Event> {
    Arc::new(
        Event::new(id, "message.forwarded", at_ms, Entity::account(account))
            .with("chat_count", Value::Int(chats)),
    )
}

/// A `message.sent` event.
pub fn sent(id: &str, account: &str, at_ms: i64) -> Arc<Event> {
    Arc::new(Event::new(id, "message.sent", at_ms, Entity::account(account)))
}

/// Share a state for rule calls.
pub fn shared<S: StateView + 'static>(state: S) -> Arc<dyn StateView> {
    Arc::new(state)
}
