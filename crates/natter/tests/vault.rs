//! The binary with its secrets in Vault (OpenBao from `cargo xtask test`): a missing
//! secret stops start-up naming it, `natter vault bootstrap` writes a working set, and
//! `natter rotate-keys` reaches the running process without a restart.

mod support;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use support::{Running, request, start_with, terminate};

struct Installation {
    kv_path: String,
    dir: tempfile::TempDir,
}

impl Installation {
    fn new() -> Self {
        std::env::var("VAULT_ADDR").expect("VAULT_ADDR: run the tests with `cargo xtask test`");
        Self {
            kv_path: format!("natter-e2e/{}", uuid::Uuid::new_v4().simple()),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn env(&self) -> Vec<(&str, &str)> {
        vec![
            ("NATTER_SECRETS_SOURCE", "vault"),
            ("NATTER_VAULT_KV_PATH", &self.kv_path),
            ("NATTER_SECRETS_POLL_SECS", "1"),
            ("NATTER_VAULT_START_DEADLINE_SECS", "5"),
            // The test logs in repeatedly until the new key signs.
            ("NATTER_AUTH_LOGIN_LIMIT_PER_USERNAME", "1000"),
            ("NATTER_AUTH_LOGIN_LIMIT_PER_IP", "1000"),
        ]
    }

    fn natter(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_natter"))
            .args(args)
            .envs(self.env())
            .env("NATTER_DATA_DIR", self.dir.path().join("data"))
            .output()
            .unwrap()
    }

    fn start(&self) -> Running {
        let data = self.dir.path().join("data");
        start_with(&data, &self.env())
    }
}

fn body(response: &str) -> serde_json::Value {
    let (_, body) = response.split_once("\r\n\r\n").expect("a response body");
    serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {response}"))
}

fn login(url: &str) -> String {
    let reply = request(
        url,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(r#"{"login":"ada","password":"correct horse battery"}"#),
    );
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    body(&reply)["access_token"].as_str().unwrap().to_owned()
}

fn kid(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

#[test]
fn a_missing_secret_stops_start_naming_it() {
    let install = Installation::new();
    let output = install.natter(&[]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = format!("secret `secret/{}/jwt` is missing", install.kv_path);
    assert!(stderr.contains(&expected), "{stderr}");
}

#[test]
fn bootstrap_then_rotation_without_restart() {
    let install = Installation::new();
    let bootstrap = install.natter(&["vault", "bootstrap"]);
    let stdout = String::from_utf8_lossy(&bootstrap.stdout);
    assert!(
        bootstrap.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&bootstrap.stderr)
    );
    assert!(
        stdout.contains(&format!("wrote secret/{}/jwt", install.kv_path)),
        "{stdout}"
    );
    let again = install.natter(&["vault", "bootstrap"]);
    assert!(
        !again.status.success(),
        "bootstrap never overwrites silently"
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));

    let running = install.start();
    let register = request(
        &running.url,
        "POST",
        "/api/v1/auth/register",
        None,
        Some(r#"{"username":"ada","password":"correct horse battery"}"#),
    );
    assert!(register.starts_with("HTTP/1.1 201"), "{register}");
    let old_token = login(&running.url);
    let old_kid = kid(&old_token);

    let rotate = install.natter(&["rotate-keys"]);
    assert!(
        rotate.status.success(),
        "{}",
        String::from_utf8_lossy(&rotate.stderr)
    );
    let printed = String::from_utf8_lossy(&rotate.stdout).into_owned();
    let new_kid = printed
        .strip_prefix("new signing key ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("expected `new signing key <kid> is active`, got {printed:?}"))
        .to_owned();
    assert_ne!(new_kid, old_kid);

    let deadline = Instant::now() + Duration::from_secs(20);
    let new_token = loop {
        let token = login(&running.url);
        if kid(&token) == new_kid {
            break token;
        }
        assert!(Instant::now() < deadline, "the rotated key never took over");
        std::thread::sleep(Duration::from_millis(200));
    };
    for token in [&old_token, &new_token] {
        let me = request(&running.url, "GET", "/api/v1/auth/me", Some(token), None);
        assert!(me.starts_with("HTTP/1.1 200"), "{me}");
    }
    assert!(terminate(running).success());
}

#[test]
fn the_vault_token_lifetime_is_a_metric() {
    let install = Installation::new();
    assert!(install.natter(&["vault", "bootstrap"]).status.success());
    // A token that expires in an hour (the dev server's root token never does).
    let vault = std::env::var("VAULT_ADDR").unwrap();
    let root = std::env::var("VAULT_TOKEN").expect("VAULT_TOKEN from `cargo xtask test`");
    let created = request(
        &vault,
        "POST",
        "/v1/auth/token/create",
        Some(&root),
        Some(r#"{"ttl":"1h"}"#),
    );
    let token = body(&created)["auth"]["client_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_owned();
    let mut env = install.env();
    env.push(("VAULT_TOKEN", &token));
    let running = start_with(&install.dir.path().join("data"), &env);
    let metrics = support::get(&running.url, "/metrics");
    let ttl: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("natter_vault_token_ttl_seconds "))
        .unwrap_or_else(|| panic!("no token TTL in {metrics}"))
        .parse()
        .unwrap();
    assert!((3000.0..=3600.0).contains(&ttl), "{ttl}");
    assert!(terminate(running).success());
}
