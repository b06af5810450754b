//! The `enforcer` binary as a user runs it: the quick start's demo, and a
//! policy mistake reported with its line.

use std::process::Command;

fn enforcer(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_enforcer"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run enforcer")
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
