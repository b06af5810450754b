//! Another language's client against the real server: the Python client in
//! `tests/interop/python_client.py` generates its stubs from `proto/` with
//! the standard Python gRPC tooling and calls health and `Evaluate`. It
//! catches what tests with our own (tonic) client cannot: a proto that other
//! generators reject, or wire behaviour that only our own client tolerates.
//!
//! It needs Python 3 with the packages of `tests/interop/requirements.txt`.
//! Without them the test fails, saying what to install, rather than
//! skipping: a skipped interop test would pass CI without checking anything.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use enforcer::pipeline::PipelineOptions;
use enforcer::server::ServerOptions;

use crate::grpc_server::TestServer;

/// The interpreter the client runs under.
const PYTHON: &str = "python3";
/// The client, from the workspace root.
const CLIENT: &str = "tests/interop/python_client.py";
/// Its packages, from the workspace root.
const REQUIREMENTS: &str = "tests/interop/requirements.txt";
/// Generous: generating the stubs and five calls take about a second, but a
/// loaded CI machine may be slow to start Python. A hung client must still
/// end the test rather than stall the suite.
const DEADLINE: Duration = Duration::from_secs(120);

/// The workspace root: this package's manifest directory is `tests/`.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// What a finished command said.
struct Output {
    /// Its exit status; `None` when it overran [`DEADLINE`] and was killed.
    status: Option<ExitStatus>,
    stdout: String,
    stderr: String,
}

impl Output {
    fn success(&self) -> bool {
        self.status.is_some_and(|status| status.success())
    }

    /// How it ended, in words.
    fn outcome(&self) -> String {
        match self.status {
            Some(status) => status.to_string(),
            None => format!("killed after {DEADLINE:?}"),
        }
    }
}

/// Run `command` to completion, killing it after [`DEADLINE`]. The pipes
/// are drained on their own threads so that a chatty child cannot block on
/// a full pipe while we wait for it.
fn run(mut command: Command) -> std::io::Result<Output> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped stderr")));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if started.elapsed() > DEADLINE {
            // Killing it closes its pipes, so what it printed is still read.
            child.kill()?;
            child.wait()?;
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok(Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    })
}

/// Fail, saying exactly what to install, unless Python 3 and the client's
/// packages are there.
fn require_python_packages(root: &Path) {
    let install = format!("python3 -m pip install -r {REQUIREMENTS}");
    let mut probe = Command::new(PYTHON);
    probe.current_dir(root).args([
        "-c",
        "import grpc, grpc_tools.protoc, grpc_health.v1.health_pb2, google.protobuf",
    ]);
    match run(probe) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "the interop test needs `{PYTHON}` on PATH, which is missing: install Python 3 \
             with pip (on Debian: apt-get install python3 python3-pip), then, from the \
             workspace root: {install}"
        ),
        Err(e) => panic!("could not run `{PYTHON}`: {e}"),
        Ok(out) if !out.success() => panic!(
            "the interop test needs Python's gRPC packages, which are missing; from the \
             workspace root run: {install}\n{PYTHON} ({}) said:\n{}",
            out.outcome(),
            out.stderr.trim_end()
        ),
        Ok(_) => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_generated_from_proto_evaluates_and_checks_health() {
    let root = workspace_root();
    // Before the server starts: a missing package is the likeliest failure
    // and deserves its own message, not the client's traceback.
    require_python_packages(&root);

    let server = TestServer::start(PipelineOptions::default(), ServerOptions::default()).await;
    let mut client = Command::new(PYTHON);
    client
        .current_dir(&root)
        .arg(CLIENT)
        .arg(server.addr.to_string());
    // The client blocks for its whole run; off the async workers, which
    // the server in this process needs to answer it.
    let out = tokio::task::spawn_blocking(move || run(client))
        .await
        .expect("the client runner")
        .unwrap_or_else(|e| panic!("could not start {PYTHON} {CLIENT}: {e}"));
    server.shutdown().await;

    assert!(
        out.success(),
        "{PYTHON} {CLIENT} failed ({}).\n--- stdout\n{}--- stderr\n{}",
        out.outcome(),
        out.stdout,
        out.stderr
    );
    // Its last line is its summary; show the run in `--nocapture` output.
    print!("{}", out.stdout);
    assert!(
        out.stdout.contains("interop: all checks passed"),
        "the client exited 0 without its summary:\n{}",
        out.stdout
    );
}
