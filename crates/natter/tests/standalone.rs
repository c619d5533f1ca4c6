//! The binary as a user runs it: standalone mode starts, prints its URL, answers, keeps
//! its generated secrets private and reuses them, stops cleanly on SIGTERM, logs JSON
//! with trace ids and exports whole traces.

mod support;

use std::process::Command;

use natter_testkit::telemetry::sample;
use support::{get, header, register, request, start, start_with, terminate};

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
fn sqlite_reads_on_a_connection_per_core_unless_configured() {
    let dir = tempfile::tempdir().unwrap();
    let max = |running: &support::Running| {
        let text = get(&running.url, "/metrics");
        sample(&text, "natter_db_pool_max_connections")
            .unwrap_or_else(|| panic!("no pool maximum in {text}"))
    };
    let running = start(&dir.path().join("default"));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(max(&running), cores.clamp(4, 16) as f64);
    assert!(terminate(running).success());
    let running = start_with(
        &dir.path().join("configured"),
        &[("NATTER_DATABASE_MAX_CONNECTIONS", "7")],
    );
    assert_eq!(max(&running), 7.0);
    assert!(terminate(running).success());
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

#[test]
fn json_logs_carry_the_callers_trace_id() {
    use std::io::{BufRead, BufReader, Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_natter"))
        .env("NATTER_HTTP_ADDR", "127.0.0.1:0")
        .env("NATTER_DATA_DIR", dir.path().join("data"))
        .env("NATTER_AUTH_ARGON2_MEMORY_KIB", "256")
        .env("NATTER_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let first = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .next()
        .unwrap()
        .unwrap();
    let host = first
        .split("http://")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let (lines, reader) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let body = r#"{"username":"tracy","password":"correct horse"}"#;
    let mut stream = std::net::TcpStream::connect(&host).unwrap();
    write!(
        stream,
        "POST /api/v1/auth/register HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\
         traceparent: 00-{trace}-00f067aa0ba902b7-01\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    let line = reader
        .iter()
        .find(|line| line.contains("\"message\":\"registered\""))
        .expect("the request's log line");
    let json: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
    let spans = json["spans"].as_array().unwrap();
    assert!(spans.iter().any(|s| s["trace_id"] == trace), "{line}");
    let _ = child.kill();
    let _ = child.wait();
}

/// Over SQLite too, every request's trace reaches the collector whole: the edge and
/// service spans close although sqlx's worker threads drop the statements' spans.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_traces_reach_the_otlp_collector() {
    let mut collector = fake_opentelemetry_collector::FakeCollectorServer::start()
        .await
        .unwrap();
    let endpoint = collector.endpoint();
    let dir = tempfile::tempdir().unwrap();
    let running = support::start_with(
        &dir.path().join("data"),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );
    register(&running.url, "whole");
    let login = r#"{"login":"whole","password":"correct horse"}"#;
    let mut traces = Vec::new();
    for _ in 0..3 {
        let response = request(
            &running.url,
            "POST",
            "/api/v1/auth/login",
            None,
            Some(login),
        );
        let served_by = response
            .lines()
            .find_map(|l| l.strip_prefix("traceresponse: "))
            .unwrap_or_else(|| panic!("no traceresponse in {response}"));
        traces.push(served_by.split('-').nth(1).unwrap().to_owned());
    }
    let mut seen = std::collections::HashSet::new();
    let whole = |seen: &std::collections::HashSet<(String, String)>| {
        traces.iter().all(|t| {
            ["POST /api/v1/auth/login", "auth.login", "db.user_by_login"]
                .iter()
                .all(|name| seen.contains(&(t.clone(), (*name).to_owned())))
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !whole(&seen) && std::time::Instant::now() < deadline {
        let batch = collector
            .exported_spans(1, std::time::Duration::from_millis(200))
            .await;
        seen.extend(batch.into_iter().map(|s| (s.trace_id, s.name)));
    }
    assert!(whole(&seen), "incomplete traces {traces:?}: {seen:?}");
    assert!(terminate(running).success());
}

/// The JSON body of a raw response.
fn json_body(response: &str) -> serde_json::Value {
    let (_, body) = response.split_once("\r\n\r\n").expect("a body");
    serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {response}"))
}

#[test]
fn unknown_paths_are_404_not_grpc() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path());
    for path in ["/api/v1/nope", "/no-such-page"] {
        let response = get(&running.url, path);
        assert!(response.starts_with("HTTP/1.1 404"), "{path}: {response}");
        assert_ne!(header(&response, "content-type"), Some("application/grpc"));
        assert_eq!(json_body(&response)["error"]["code"], "not_found");
    }
    assert!(terminate(running).success());
}

#[test]
fn logouts_survive_a_restart_and_token_answers_are_never_cached() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path());
    register(&running.url, "leaver");
    let login = r#"{"login":"leaver","password":"correct horse"}"#;
    let login = request(
        &running.url,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(login),
    );
    assert_eq!(header(&login, "cache-control"), Some("no-store"), "{login}");
    assert_eq!(header(&login, "x-content-type-options"), Some("nosniff"));
    let token = json_body(&login)["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let me = request(&running.url, "GET", "/api/v1/auth/me", Some(&token), None);
    assert!(me.starts_with("HTTP/1.1 200"), "{me}");
    let out = request(
        &running.url,
        "POST",
        "/api/v1/auth/logout",
        Some(&token),
        Some("{}"),
    );
    assert!(out.starts_with("HTTP/1.1 204"), "{out}");
    assert!(terminate(running).success());

    let again = start(dir.path());
    let me = request(&again.url, "GET", "/api/v1/auth/me", Some(&token), None);
    assert!(
        me.starts_with("HTTP/1.1 401"),
        "the token stays revoked: {me}"
    );
    assert_eq!(json_body(&me)["error"]["code"], "token_revoked");
    let rooms = request(&again.url, "GET", "/api/v1/rooms/mine", Some(&token), None);
    assert!(rooms.starts_with("HTTP/1.1 401"), "{rooms}");
    assert!(terminate(again).success());
}

/// gRPC server reflection lists every service the process serves, and describes them, so
/// `grpcurl` needs no .proto files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_reflection_lists_and_describes_the_services() {
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let dir = tempfile::tempdir().unwrap();
    let running = start(&dir.path().join("data"));
    let listed = reflect(&running.url, MessageRequest::ListServices(String::new())).await;
    let Some(MessageResponse::ListServicesResponse(list)) = listed else {
        panic!("not a service list");
    };
    let mut names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "grpc.health.v1.Health",
            "natter.auth.v1.AuthService",
            "natter.chat.v1.ChatService",
            "natter.website.v1.WebsiteService",
        ]
    );
    let symbol = MessageRequest::FileContainingSymbol("natter.website.v1.WebsiteService".into());
    let Some(MessageResponse::FileDescriptorResponse(files)) = reflect(&running.url, symbol).await
    else {
        panic!("not a file descriptor");
    };
    let first = String::from_utf8_lossy(&files.file_descriptor_proto[0]).into_owned();
    assert!(
        first.contains("natter/website/v1/website.proto"),
        "the service's file"
    );
    assert!(terminate(running).success());
}

/// One reflection request on its own stream; its answer.
async fn reflect(
    url: &str,
    request: tonic_reflection::pb::v1::server_reflection_request::MessageRequest,
) -> Option<tonic_reflection::pb::v1::server_reflection_response::MessageResponse> {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;

    let channel = tonic::transport::Endpoint::from_shared(url.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let mut answers = ServerReflectionClient::new(channel)
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    answers.message().await.unwrap().unwrap().message_response
}
