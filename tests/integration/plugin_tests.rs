//! The rules' own native unit tests, run as part of the engine's suite so
//! that one `cargo test --workspace` covers the guest workspace too.

use std::path::Path;
use std::process::Command;

#[test]
fn plugin_sdk_and_rules_pass_their_native_tests() {
    let plugins = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins");
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/plugins-native");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(&plugins)
        .args(["test", "--workspace", "--target-dir"])
        .arg(&target)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .expect("run cargo test in plugins/");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "plugin tests failed:\n{stdout}\n{stderr}"
    );
    // Count what ran, so an empty run cannot pass for a green one.
    let passed: usize = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("test result: ok. "))
        .filter_map(|l| l.split(' ').next()?.parse::<usize>().ok())
        .sum();
    assert!(passed >= 6, "only {passed} plugin tests ran:\n{stdout}");
}
