//! The `enforcer` binary as a user runs it: the quick start's demo, the
//! server on its embedded defaults, and mistakes in a policy or in the
//! server's settings reported with where they are.

use std::process::Command;

fn enforcer(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_enforcer"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run enforcer")
}

/// Start `enforcer serve` with `args` and read what it prints until a line
/// starts with `prefix`: the server, the rest of its output, what it
/// printed so far, and the rest of that line.
// The server is returned for the caller to stop and wait on.
#[allow(clippy::zombie_processes)]
fn serve_until(
    cwd: &std::path::Path,
    args: &[&str],
    prefix: &str,
) -> (
    std::process::Child,
    std::io::BufReader<std::process::ChildStdout>,
    String,
    String,
) {
    use std::io::BufRead;
    use std::process::Stdio;

    let mut server = Command::new(env!("CARGO_BIN_EXE_enforcer"))
        .arg("serve")
        .args(args)
        .current_dir(cwd)
        .env_remove("ENFORCER_CONFIG")
        .env_remove("ENFORCER_DATA_DIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start enforcer serve");
    let mut stdout = std::io::BufReader::new(server.stdout.take().unwrap());
    let mut printed = String::new();
    loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            let _ = server.kill();
            let _ = server.wait();
            panic!("serve exited before printing `{prefix}`:\n{printed}");
        }
        printed.push_str(&line);
        if let Some(rest) = line.strip_prefix(prefix) {
            let rest = rest.trim_end().to_string();
            return (server, stdout, printed, rest);
        }
    }
}

#[test]
fn the_demo_decides_and_reports_the_known_hash_match() {
    let output = enforcer(&["demo", "--json"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), enforcer::demo::traffic().len());
    let icon = lines
        .iter()
        .find(|l| l["decision"]["event"]["kind"] == "media.group_icon")
        .expect("the icon event was decided");
    assert_eq!(icon["decision"]["severity"], "block");
    let actions: Vec<&str> = icon["decision"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "block_account",
            "ban_group",
            "remove_media",
            "report_to_clearinghouse"
        ]
    );
    // The retried event comes back as a duplicate with the same decision.
    let last = lines.last().unwrap();
    assert_eq!(last["duplicate"], true);
    assert_eq!(last["decision"], icon["decision"]);
}

#[test]
fn a_bad_policy_is_refused_with_its_line() {
    let dir = std::env::temp_dir().join(format!("enforcer-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("policy.toml");
    std::fs::write(
        &policy,
        "version = \"x\"\n\n[rules.mass-forwarding]\nweight = -2.0\n",
    )
    .unwrap();
    let output = enforcer(&["demo", "--policy", policy.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("policy line 4: weight -2 is outside 0 to 100"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// `enforcer serve` with no configuration: the example rules on a free
/// port, a real call answered, and a clean stop on SIGTERM.
#[test]
fn serve_runs_on_its_embedded_defaults_and_stops_on_sigterm() {
    let workdir = tempfile::tempdir().unwrap();
    let (mut server, mut stdout, printed, addr) = serve_until(
        workdir.path(),
        &["--listen", "127.0.0.1:0"],
        "enforcer listening on ",
    );
    let addr = addr.split_whitespace().next().unwrap().to_string();
    assert!(printed.contains("mass-forwarding"), "{printed}");
    // Durable by default: decisions go to `enforcer-data` where it runs.
    assert!(
        printed.contains("storage: enforcer-data (decisions up to 0; checkpoint none"),
        "{printed}"
    );

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let decision = runtime.block_on(async {
        use enforcer::api::v1;
        let mut client =
            v1::enforcement_client::EnforcementClient::connect(format!("http://{addr}"))
                .await
                .expect("connect");
        let event = enforcer::event::Event::new(
            "cli-1",
            "message.forwarded",
            1_764_000_000_000,
            enforcer::event::Entity::account("forwarder"),
        )
        .with("chat_count", enforcer::event::Value::Int(60));
        let decision = client
            .evaluate(v1::EvaluateRequest {
                event: Some(enforcer::api::event_to_proto(&event)),
                ..Default::default()
            })
            .await
            .expect("evaluate")
            .into_inner()
            .decision
            .unwrap();
        // A review later finds the forwarder abusive.
        client
            .submit_labels(v1::SubmitLabelsRequest {
                labels: vec![v1::GroundTruthLabel {
                    subject: Some(v1::ground_truth_label::Subject::Entity(
                        enforcer::api::entity_to_proto(&event.actor),
                    )),
                    truth: v1::Truth::Abusive as i32,
                    source: v1::LabelSource::Review as i32,
                    ..Default::default()
                }],
            })
            .await
            .expect("submit a label");
        decision
    });
    assert_eq!(decision.id, "dec-cli-1");
    assert_eq!(
        decision.outcome.unwrap().severity,
        enforcer::api::v1::Severity::Limit as i32
    );

    // The shadow report counts it: one decision, a limit on both sides.
    let report = enforcer(&[
        "shadow",
        "report",
        "--server",
        &format!("http://{addr}"),
        "--json",
    ]);
    assert!(report.status.success(), "{report:?}");
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(report["decisions"], 1, "{report}");
    assert_eq!(report["matrix"][2][2], 1, "{report}");
    assert_eq!(report["disagreements"], 0, "{report}");
    // And its accuracy: the limit was right, live and shadow alike.
    let accuracy = &report["accuracy"];
    assert_eq!(accuracy["positive_severity"], "SEVERITY_LIMIT", "{report}");
    assert_eq!(accuracy["live"]["true_positives"], 1, "{report}");
    assert_eq!(accuracy["shadow"]["precision"], 1.0, "{report}");
    assert_eq!(accuracy["rules"][0]["rule"], "mass-forwarding", "{report}");

    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .expect("send SIGTERM");
    assert!(killed.success());
    let status = server.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert!(status.success(), "serve exited with {status}");
    assert!(rest.contains("enforcer stopped"), "{rest}");
    // The decision was logged there, and a last checkpoint taken on the
    // way out.
    let data = workdir.path().join("enforcer-data");
    assert!(data.join("decisions.redb").is_file());
    assert!(data.join("state.image").is_file());
}

#[test]
fn serve_refuses_bad_settings_saying_which_and_why() {
    let dir = std::env::temp_dir().join(format!("enforcer-cli-settings-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("enforcer.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\n[limits]\nworkers = 0\n").unwrap();
    let config = config.to_str().unwrap();
    let missing = dir.join("missing");
    let missing = missing.to_str().unwrap();

    let cases: [(&[&str], &str); 4] = [
        (
            &["serve", "--config", config],
            "line 3: limits.workers: must be at least 1",
        ),
        (&["serve", "--workers", "0"], "--workers"),
        (&["serve", "--listen", "nowhere"], "invalid socket address"),
        (
            &["serve", "--listen", "127.0.0.1:0", "--plugin-dir", missing],
            "cannot read it",
        ),
    ];
    for (args, expected) in cases {
        let output = enforcer(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} started");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    // The environment is read too (clap names the flag it stands for).
    let output = Command::new(env!("CARGO_BIN_EXE_enforcer"))
        .args(["serve"])
        .env("ENFORCER_WORKERS", "zero")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("invalid value 'zero' for '--workers"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The lifecycle as an operator runs it: a key made and a rule signed on
/// the command line, the engine serving a signed plugin directory, and the
/// rule changed, rolled back and audited through `enforcer plugin`.
#[test]
fn signed_rules_are_served_and_changed_with_enforcer_plugin() {
    let dir = std::env::temp_dir().join(format!("enforcer-cli-plugin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    let path = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let key = dir.join("key");
    let made = enforcer(&["plugin", "keygen", "--out", &path(&key)]);
    assert!(made.status.success(), "{made:?}");
    let public = std::fs::read_to_string(dir.join("key.pub")).unwrap();
    let public = public.trim();
    assert!(public.starts_with("ed25519:"), "{public}");

    let (_, wasm) = enforcer::examples::EXAMPLE_RULES
        .iter()
        .find(|(name, _)| *name == "mass-forwarding")
        .unwrap();
    let rule = rules.join("forwarding.wasm");
    std::fs::write(&rule, wasm).unwrap();
    let signed = enforcer(&["plugin", "sign", "--key", &path(&key), &path(&rule)]);
    assert!(signed.status.success(), "{signed:?}");
    std::fs::write(dir.join("policy.toml"), "version = \"files-1\"\n").unwrap();

    let token = "cli-test-token-0123456789";
    let rules_dir = path(&rules);
    let policy = path(&dir.join("policy.toml"));
    let (mut server, _stdout, _printed, admin) = serve_until(
        &dir,
        &[
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--plugin-dir",
            &rules_dir,
            "--policy",
            &policy,
            "--trusted-key",
            public,
            "--admin-token",
            token,
        ],
        "control plane (enforcement.v1.Admin) on ",
    );
    let admin = format!("http://{}", admin.split(',').next().unwrap());
    let plugin = |args: &[&str]| -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_enforcer"))
            .arg("plugin")
            .args(args)
            .args(["--admin", &admin, "--token", token])
            .env_remove("RUST_BACKTRACE")
            .output()
            .expect("run enforcer plugin")
    };
    let stdout_of =
        |output: &std::process::Output| String::from_utf8_lossy(&output.stdout).to_string();

    let listed = plugin(&["list"]);
    let text = stdout_of(&listed);
    assert!(listed.status.success(), "{listed:?}");
    assert!(text.contains("mass-forwarding"), "{text}");
    assert!(
        text.contains("active") && text.contains("signed by"),
        "{text}"
    );

    // A second build of the rule: unsigned it is refused, signed it goes live.
    let mut second = wasm.to_vec();
    second.extend_from_slice(&[0, 6, 5, b'c', b'l', b'i', b'-', b'2']);
    let second_path = dir.join("second.wasm");
    std::fs::write(&second_path, &second).unwrap();
    let refused = plugin(&["upload", &path(&second_path), "--as", "active"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("PermissionDenied") && stderr.contains("unsigned"),
        "{stderr}"
    );
    let signed = enforcer(&["plugin", "sign", "--key", &path(&key), &path(&second_path)]);
    assert!(signed.status.success(), "{signed:?}");
    let uploaded = plugin(&["upload", &path(&second_path), "--as", "active"]);
    assert!(uploaded.status.success(), "{uploaded:?}");
    let shown = stdout_of(&uploaded);
    assert!(
        shown.contains("mass-forwarding") && shown.contains("upload"),
        "{shown}"
    );

    let rolled_back = plugin(&["rollback", "mass-forwarding"]);
    assert!(rolled_back.status.success(), "{rolled_back:?}");
    let audit = stdout_of(&plugin(&["audit"]));
    let actions: Vec<&str> = audit
        .lines()
        .map(|line| line.split_whitespace().nth(3).unwrap_or(""))
        .collect();
    assert_eq!(actions, ["rollback", "upload", "upload"], "{audit}");
    assert!(audit.contains("operator"), "{audit}");
    assert!(audit.lines().last().unwrap().contains("REFUSED"), "{audit}");

    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .expect("send SIGTERM");
    assert!(killed.success());
    assert!(server.wait().unwrap().success());
    std::fs::remove_dir_all(&dir).ok();
}

/// The demo's traffic as a labelled history: the spammer, the forwarder
/// and the ring's account act abusively, everyone else is ordinary.
fn labelled_demo_history(path: &std::path::Path) {
    let abusive = ["new-7731", "fwd-2210", "ring-0415"];
    let lines: String = enforcer::demo::traffic()
        .into_iter()
        .map(|event| {
            let bad = abusive.contains(&event.actor.id.as_str());
            let class = if bad { "abuser" } else { "ordinary" };
            serde_json::json!({ "event": event, "truth": { "abusive": bad, "class": class } })
                .to_string()
                + "\n"
        })
        .collect();
    std::fs::write(path, lines).unwrap();
}

#[test]
fn a_backtest_writes_the_same_reports_on_every_run_and_names_bad_input() {
    let dir = std::env::temp_dir().join(format!("enforcer-cli-backtest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let history = dir.join("history.jsonl");
    labelled_demo_history(&history);
    // Runs a backtest of the history with `sides` (the rule sets'
    // flags), writing report-N.json and report-N.html.
    let backtest = |n: u32, sides: &[&str]| {
        let json = dir.join(format!("report-{n}.json"));
        let html = dir.join(format!("report-{n}.html"));
        let mut args = vec!["backtest", history.to_str().unwrap(), "--quiet"];
        args.extend_from_slice(sides);
        args.extend([
            "--json",
            json.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
        ]);
        (enforcer(&args), json, html)
    };
    // An empty policy file is refused, and said to be the baseline's.
    let (out, _, _) = backtest(0, &["--baseline-policy", "/dev/null"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the baseline"), "{stderr}");

    let run = |n: u32| {
        let (out, json, html) = backtest(n, &["--baseline", "--policy", "../plugins/policy.toml"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            std::fs::read(json).unwrap(),
            std::fs::read(html).unwrap(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (json, html, stderr) = run(1);
    let (json_again, html_again, _) = run(2);
    assert!(json == json_again, "the JSON report differs between runs");
    assert!(html == html_again, "the HTML report differs between runs");
    assert!(stderr.contains("events/s"), "{stderr}");

    let report: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let events = enforcer::demo::traffic().len() as u64;
    assert_eq!(report["input"]["events"], events);
    // The demo's retry repeats an event id: judged once.
    assert_eq!(report["input"]["duplicate_ids"], 1);
    // The example rules act on the three abusers and on no one else.
    let entities = &report["candidate"]["entities"]["confusion"];
    assert_eq!(entities["tp"], 3, "{entities}");
    assert_eq!(entities["fp"], 0, "{entities}");
    // Candidate and baseline are the same rules and policy: no difference.
    assert_eq!(report["comparison"]["events_differ"], 0);
    let html = String::from_utf8(html).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<svg"));

    // A line that is not a labelled event is named with its line number.
    std::fs::write(&history, "{\"event\": 1}\n").unwrap();
    let out = enforcer(&["backtest", history.to_str().unwrap(), "--json", "-"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 1"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}
