//! Helpers shared by the integration tests: built plugins, events, state.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    Arc::new(Event::new(
        id,
        "message.sent",
        at_ms,
        Entity::account(account),
    ))
}

/// Share a state for rule calls.
pub fn shared<S: StateView + 'static>(state: S) -> Arc<dyn StateView> {
    Arc::new(state)
}

/// A rule written by hand in WAT, subscribed to `message.sent`, whose
/// `evaluate` runs `body` with the verdict record's address (320) as its
/// only job: `body` must leave an f64 score on the stack. It imports
/// nothing and exports no post-return functions: the bare minimum the
/// contract allows, which exercises paths the SDK never takes.
pub fn wat_rule(name: &str, globals: &str, body: &str) -> Vec<u8> {
    assert!(name.len() < 20);
    let name_bytes: String = name.bytes().map(|b| format!("\\{b:02x}")).collect();
    wat::parse_str(format!(
        r#"(module
  (memory (export "memory") 1)
  (global $bump (mut i32) (i32.const 4096))
  {globals}
  (data (i32.const 100) "{name_bytes}")
  (data (i32.const 120) "1")
  (data (i32.const 130) "message.sent")
  ;; event-kinds: one string at 130, 12 bytes
  (data (i32.const 160) "\82\00\00\00\0c\00\00\00")
  ;; manifest: name, version, event-kinds, counters (empty), guards (empty)
  (data (i32.const 200) "\64\00\00\00\{len:02x}\00\00\00\78\00\00\00\01\00\00\00\a0\00\00\00\01\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00")
  (func (export "manifest") (result i32) i32.const 200)
  (func (export "evaluate") (result i32)
    i32.const 320
    {body}
    f64.store
    i32.const 328 i32.const 0 i32.store8
    i32.const 332 i64.const 0 i64.store
    i32.const 340 i64.const 0 i64.store
    i32.const 348 i64.const 0 i64.store
    i32.const 320)
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    global.get $bump
    global.get $bump local.get 3 i32.add global.set $bump)
)"#,
        len = name.len()
    ))
    .expect("valid WAT")
}

/// A server program the suite runs (`nats-server`, `redis-server`, ...),
/// from PATH or the system directories Debian installs into (which a
/// non-root PATH may lack). A missing program fails the test, naming the
/// package: it is a dependency of the suite, installed by `.ci/run`.
pub fn installed_program(name: &str, package: &str) -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    on_path
        .or_else(|| {
            ["/usr/sbin", "/usr/bin", "/usr/local/bin"]
                .iter()
                .map(|dir| Path::new(dir).join(name))
                .find(|candidate| candidate.is_file())
        })
        .unwrap_or_else(|| {
            panic!(
                "{name} is not installed: the tests that need it fail without it \
                 (apt-get install {package}; .ci/run installs it)"
            )
        })
}

/// A loopback port free right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Start `command` (its output discarded) and wait until it accepts
/// connections on loopback `port`; fail if it exits or takes too long.
pub fn start_listening(mut command: Command, port: u16) -> Child {
    let name = command.get_program().to_string_lossy().into_owned();
    command.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("start {name}: {e}"));
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{name} exited at start: {status}");
        }
        assert!(Instant::now() < deadline, "{name} did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}
