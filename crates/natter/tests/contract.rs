//! The API contract: schemathesis (`st`, installed by `cargo xtask test`) generates
//! requests from the served OpenAPI document against standalone `natter` with a valid
//! token and checks every answer against it: no undocumented status, no schema-valid
//! request refused, no schema-violating request taken, no 5xx, answers matching their
//! schemas, and the document's links followed (create a room, then read, join, post to,
//! leave and delete it).

mod support;

use std::path::PathBuf;
use std::process::Command;

use support::{request, start_with, terminate};

/// The generator's seed: the same cases on every run, so a failure reproduces.
const SEED: &str = "1";

#[test]
fn every_answer_matches_the_openapi_document() {
    let dir = tempfile::tempdir().unwrap();
    // Generated requests write far more than a person; the limits are tested elsewhere,
    // and here they would hide the logic behind 429s.
    let running = start_with(
        &dir.path().join("data"),
        &[
            ("NATTER_WEBSITE_WRITE_LIMIT", "1000000"),
            ("NATTER_AUTH_LOGIN_LIMIT_PER_IP", "1000000"),
            ("NATTER_AUTH_LOGIN_LIMIT_PER_USERNAME", "1000000"),
        ],
    );
    let document = format!("{}/api/v1/openapi.json", running.url.trim_end_matches('/'));
    // Logout ends the session of the token it is sent with, so it runs last with its own.
    let everything = schemathesis(&document, &session(&running.url, "contract"))
        .args(["--exclude-path", "/api/v1/auth/logout"])
        .current_dir(dir.path())
        .output()
        .expect("run st");
    assert_passed("every operation but logout", &everything);
    let logout = schemathesis(&document, &session(&running.url, "leaver"))
        .args(["--include-path", "/api/v1/auth/logout"])
        // No link leads from logout anywhere: nothing to run statefully.
        .args(["--phases", "examples,coverage,fuzzing"])
        .current_dir(dir.path())
        .output()
        .expect("run st");
    assert_passed("logout", &logout);
    assert!(terminate(running).success());
}

/// Registers `name` asking for a session (one request, one password hash); its access
/// token.
fn session(url: &str, name: &str) -> String {
    let body = format!(r#"{{"username":"{name}","password":"correct horse","session":true}}"#);
    let reply = request(url, "POST", "/api/v1/auth/register", None, Some(&body));
    assert!(reply.starts_with("HTTP/1.1 201"), "{reply}");
    let json = reply.split("\r\n\r\n").nth(1).unwrap();
    let tokens: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(tokens["user"]["username"], name, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    tokens["access_token"].as_str().unwrap().to_owned()
}

fn schemathesis(document: &str, token: &str) -> Command {
    let mut st = Command::new(st_binary());
    st.args(["run", document, "--checks", "all", "--seed", SEED])
        .args(["--generation-database", "none", "--no-color"])
        .arg("--header")
        .arg(format!("Authorization: Bearer {token}"));
    st
}

fn assert_passed(what: &str, run: &std::process::Output) {
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "schemathesis found failures ({what}):\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains(" passed"),
        "schemathesis ran no case ({what}):\n{stdout}"
    );
}

/// `st` from PATH (`cargo xtask test` installs it: `pip install schemathesis`).
fn st_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("st"))
        .find(|candidate| candidate.is_file())
        .expect("schemathesis's `st` is not on PATH: pip install schemathesis==4.32.5")
}
