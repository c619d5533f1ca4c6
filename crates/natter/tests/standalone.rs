//! The binary as a user runs it: standalone mode starts, prints its URL, answers, keeps
//! its generated secrets private and reuses them, and stops cleanly on SIGTERM.

mod support;

use std::process::Command;

use support::{get, start, terminate};

#[test]
fn standalone_serves_keeps_secrets_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let running = start(&data);
    assert!(get(&running.url, "/healthz").starts_with("HTTP/1.1 200"));
    let ready = get(&running.url, "/readyz");
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    let jwks = get(&running.url, "/.well-known/jwks.json");
    assert!(jwks.contains("\"kty\":\"OKP\""), "{jwks}");
    let secrets = std::fs::read_to_string(data.join("secrets.json")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data.join("secrets.json")), 0o600);
        assert_eq!(mode(&data), 0o700);
    }
    let status = terminate(running);
    assert!(status.success(), "clean exit on SIGTERM, got {status}");

    let again = start(&data);
    assert_eq!(
        std::fs::read_to_string(data.join("secrets.json")).unwrap(),
        secrets,
        "secrets are reused on the next start"
    );
    assert!(get(&again.url, "/healthz").starts_with("HTTP/1.1 200"));
    assert!(terminate(again).success());
}

#[test]
fn a_bad_setting_is_refused_with_its_name() {
    let output = Command::new(env!("CARGO_BIN_EXE_natter"))
        .env("NATTER_HTTP_ADDR", "not-an-address")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("http.addr") && stderr.contains("NATTER_HTTP_ADDR"),
        "{stderr}"
    );
}

#[test]
fn auth_mode_requires_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_natter"))
        .arg("auth")
        .env("NATTER_DATA_DIR", dir.path())
        .env_remove("NATTER_DATABASE_URL")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("NATTER_DATABASE_URL"), "{stderr}");
}
