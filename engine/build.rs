//! Builds the guest workspace in `plugins/` for `wasm32-unknown-unknown` and
//! generates `plugins.rs` in `OUT_DIR`: the example rules as embedded bytes,
//! their fixtures as embedded JSON, and the directory holding every built
//! plugin (the hostile test corpus included) for the test suite.
//!
//! It also compiles the gRPC API in `proto/` with a pure-Rust protobuf
//! compiler (no system `protoc`): the generated server and client code, and
//! the encoded file descriptor set that server reflection serves.
//!
//! The guest workspace is built with its own cargo invocation and its own
//! target directory, so host and guest builds never share features, flags
//! or locks.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-unknown-unknown";

fn main() {
    compile_api();
    build_plugins();
}

/// The gRPC API: `enforcement.v1` from `proto/`, as tonic server and client
/// code, plus `enforcement_descriptor.bin` for reflection.
fn compile_api() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let proto = manifest_dir.join("../proto").canonicalize().unwrap();
    println!("cargo:rerun-if-changed={}", proto.display());
    let files = protox::compile(
        [
            "enforcement/v1/enforcement.proto",
            "enforcement/v1/admin.proto",
        ],
        [&proto],
    )
    .unwrap_or_else(|e| panic!("proto/ does not compile: {e:?}"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    fs::write(
        out_dir.join("enforcement_descriptor.bin"),
        prost::Message::encode_to_vec(&files),
    )
    .unwrap();
    tonic_prost_build::configure()
        // Attributes in name order, so an event converts the same way
        // every time.
        .btree_map(".")
        .compile_fds(files)
        .unwrap_or_else(|e| panic!("generating the gRPC code: {e}"));
}

/// The guest workspace, built for wasm, and `plugins.rs` naming its output.
fn build_plugins() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let plugins = manifest_dir.join("../plugins").canonicalize().unwrap();
    for watched in [
        "Cargo.toml",
        "Cargo.lock",
        ".cargo",
        "wit",
        "sdk",
        "rules",
        "hostile",
    ] {
        println!("cargo:rerun-if-changed={}", plugins.join(watched).display());
    }

    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    // OUT_DIR is <target>/<profile>/build/<pkg>/out: share one guest build
    // across every host profile instead of rebuilding it per profile.
    let target_dir = out_dir
        .ancestors()
        .nth(4)
        .map(|t| t.join("wasm-plugins"))
        .unwrap_or_else(|| out_dir.join("wasm-plugins"));

    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(&plugins)
        .args(["build", "--release", "--workspace", "--target", WASM_TARGET])
        .arg("--target-dir")
        .arg(&target_dir);
    // Flags meant for the host build must not leak into the guest build.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_MAKEFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
    ] {
        command.env_remove(var);
    }
    let status = command
        .status()
        .expect("run cargo for the plugins workspace");
    if !status.success() {
        panic!(
            "building the plugins in {} failed; if the wasm target is missing, run \
             `rustup target add {WASM_TARGET}`",
            plugins.display()
        );
    }

    let built = target_dir.join(WASM_TARGET).join("release");
    let mut generated = String::new();
    writeln!(
        generated,
        "/// Where every built plugin is, hostile test plugins included."
    )
    .unwrap();
    writeln!(
        generated,
        "pub const PLUGIN_DIR: &str = {:?};",
        built.display().to_string()
    )
    .unwrap();
    writeln!(
        generated,
        "/// The example rules, by crate name, as wasm bytes."
    )
    .unwrap();
    writeln!(generated, "pub const EXAMPLE_RULES: &[(&str, &[u8])] = &[").unwrap();
    let rules = crate_names(&plugins.join("rules"));
    for rule in &rules {
        require_tests(&plugins.join("rules").join(rule));
        let wasm = built.join(format!("{}.wasm", rule.replace('-', "_")));
        assert!(wasm.exists(), "{} was not built", wasm.display());
        writeln!(
            generated,
            "    ({rule:?}, include_bytes!({:?})),",
            wasm.display().to_string()
        )
        .unwrap();
    }
    writeln!(generated, "];").unwrap();
    writeln!(
        generated,
        "/// The fixtures of each example rule (`fixtures.json` in its crate), by \
         crate name, as JSON."
    )
    .unwrap();
    writeln!(
        generated,
        "pub const EXAMPLE_FIXTURES: &[(&str, &str)] = &["
    )
    .unwrap();
    for rule in &rules {
        let fixtures = require_fixtures(&plugins.join("rules").join(rule));
        writeln!(
            generated,
            "    ({rule:?}, include_str!({:?})),",
            fixtures.display().to_string()
        )
        .unwrap();
    }
    writeln!(generated, "];").unwrap();
    fs::write(out_dir.join("plugins.rs"), generated).unwrap();
}

/// The crate directories under `dir`, sorted.
fn crate_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// An example rule without native unit tests is not finished.
fn require_tests(crate_dir: &Path) {
    let source = fs::read_to_string(crate_dir.join("src/lib.rs")).unwrap_or_default();
    assert!(
        source.contains("#[test]"),
        "{} has no unit tests; every example rule is tested natively",
        crate_dir.display()
    );
}

/// An example rule without fixtures is not finished either: they are what
/// the engine checks a build against before it activates it, and the
/// examples show how to write them.
fn require_fixtures(crate_dir: &Path) -> PathBuf {
    let fixtures = crate_dir.join("fixtures.json");
    // Named on its own so that a fixture file added to or removed from a
    // crate reruns this script even if the directory watch misses it.
    println!("cargo:rerun-if-changed={}", fixtures.display());
    assert!(
        fixtures.is_file(),
        "{} has no fixtures.json; every example rule ships fixtures (see the engine's \
         `fixtures` module for the format)",
        crate_dir.display()
    );
    fixtures
}
