//! A hostile rule that imports a WASI function to write to a file descriptor.
//! The engine must refuse to load it and name the import.
use enforcer_sdk::*;

#[link(wasm_import_module = "wasi_snapshot_preview1")]
unsafe extern "C" {
    fn fd_write(fd: i32, iovs: i32, iovs_len: i32, written: i32) -> i32;
}

/// The rule.
pub struct ForbiddenImport;

impl Rule for ForbiddenImport {
    fn manifest() -> Manifest {
        Manifest::new("hostile-forbidden-import", "1.0.0").on("message.sent")
    }

    fn evaluate(_: &Event, _: &State) -> Verdict {
        // SAFETY: never runs; the engine refuses the module at load.
        let status = unsafe { fd_write(1, 0, 0, 0) };
        Verdict::new(Severity::Allow, f64::from(status))
    }
}

rule!(ForbiddenImport);
