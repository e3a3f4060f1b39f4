//! `aquifer demo`, the README's first command, as a user runs it: it must
//! pass, and say what it checked.

use std::process::Command;

#[test]
fn the_demo_passes_and_reports_every_check() {
    let out = Command::new(env!("CARGO_BIN_EXE_aquifer"))
        .arg("demo")
        .env_remove("RUST_LOG")
        .output()
        .expect("the demo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for check in [
        "ok   probe-and-license succeeded",
        "ok   it read its probe and licence with bmat",
        "ok   fails failed in its second task, with the reason",
        "ok   waits was cancelled while it waited",
        "ok   builds kept its output, and consumes got it through copy_outputs",
        "ok   the bytes consumes kept are what builds made",
        "ok   every resource is destroyed",
        "ok   every worker directory is gone",
    ] {
        assert!(stdout.contains(check), "missing {check:?} in\n{stdout}");
    }
    assert!(stdout.contains("the probe is probe-"), "{stdout}");
    // Neither its story nor its log is interleaved with the agents' info
    // lines, and nothing is coloured: neither stream is a terminal.
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (name, text) in [("stdout", &stdout), ("stderr", &stderr)] {
        assert!(
            !text.contains('\u{1b}'),
            "a colour escape in {name}:\n{text}"
        );
        assert!(!text.contains(" INFO "), "an info line in {name}:\n{text}");
    }
}
