//! A login is one trace: the HTTP edge (or the gRPC edge), the service, the rate limit, the
//! store's statements, the password hash and the token signature, exported to an
//! in-process OTLP collector under the caller's trace id.

use fake_opentelemetry_collector::ExportedSpan;
use natter_proto::auth::v1 as pb;
use natter_proto::auth::v1::auth_service_client::AuthServiceClient;
use natter_testkit::telemetry::Traces;

use crate::server::{Server, Transport};

/// Whether `span`'s chain of parents within `spans` reaches `ancestor`.
fn descends_from(spans: &[ExportedSpan], span: &ExportedSpan, ancestor: &str) -> bool {
    let mut parent = span.parent_span_id.as_str();
    while !parent.is_empty() {
        if parent == ancestor {
            return true;
        }
        parent = spans
            .iter()
            .find(|s| s.span_id == parent)
            .map_or("", |s| s.parent_span_id.as_str());
    }
    false
}

fn assert_login_tree(spans: &[ExportedSpan], edge: &str) {
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    for expected in [
        edge,
        "auth.login",
        "login.rate_limit",
        "db.user_by_login",
        "password.verify",
        "db.create_session",
        "token.sign",
    ] {
        assert!(names.contains(&expected), "{expected} missing: {names:?}");
    }
    let edge = spans.iter().find(|s| s.name == edge).unwrap();
    assert_eq!(
        edge.parent_span_id, "00f067aa0ba902b7",
        "the caller's span is the parent"
    );
    let login = spans.iter().find(|s| s.name == "auth.login").unwrap();
    assert!(
        descends_from(spans, login, &edge.span_id),
        "the service runs under the edge"
    );
    for child in ["db.user_by_login", "password.verify", "db.create_session"] {
        let span = spans.iter().find(|s| s.name == child).unwrap();
        assert_eq!(
            span.parent_span_id, login.span_id,
            "{child} runs under auth.login"
        );
    }
    let query = spans.iter().find(|s| s.name == "db.user_by_login").unwrap();
    let system = query
        .attributes
        .get("db.system.name")
        .cloned()
        .unwrap_or_default();
    assert!(system.contains("postgresql"), "{:?}", query.attributes);
}

// A current-thread runtime: the subscriber set below applies to this thread, which runs
// the server's tasks too.
#[tokio::test]
async fn a_login_is_one_trace_from_the_edge_to_the_hash() {
    let mut traces = Traces::capture().await;
    // PostgreSQL and Redis, as in cluster mode. Not SQLite: its worker threads drop the
    // last reference to a statement's span, and closing it tells the parent through the
    // thread's default subscriber, which a test's thread-local one is not (so parents
    // would never close here; a process-wide subscriber has no such problem).
    let server = Transport::Grpc.start().await;
    server
        .api
        .register("tracy", "correct horse", None)
        .await
        .unwrap();
    grpc_login(&server, &mut traces).await;
    json_login(&server, &mut traces).await;
}

/// JSON over HTTP: the `traceparent` header is the parent; `traceresponse` names the span.
async fn json_login(server: &Server, traces: &mut Traces) {
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let response = reqwest::Client::new()
        .post(format!("http://{}/api/v1/auth/login", server.addr))
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .json(&serde_json::json!({"login": "tracy", "password": "correct horse"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let served_by = response.headers()["traceresponse"].to_str().unwrap();
    assert!(
        served_by.starts_with(&format!("00-{trace}-")),
        "{served_by}"
    );
    let edge = "POST /api/v1/auth/login";
    let spans = traces.trace(trace, edge, 1).await;
    let served = spans.iter().find(|s| s.name == edge).unwrap();
    let status = &served.attributes["http.response.status_code"];
    assert!(status.contains("200"), "{status}");
    assert_login_tree(&spans, edge);
}

/// gRPC: the trace context arrives as metadata.
async fn grpc_login(server: &Server, traces: &mut Traces) {
    let trace = "0af7651916cd43dd8448eb211c80319c";
    let mut client = AuthServiceClient::connect(format!("http://{}", server.addr))
        .await
        .unwrap();
    let mut request = tonic::Request::new(pb::LoginRequest {
        login: "tracy".into(),
        password: "correct horse".into(),
        client: None,
    });
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace}-00f067aa0ba902b7-01").parse().unwrap(),
    );
    client.login(request).await.unwrap();
    let edge = "natter.auth.v1.AuthService/Login";
    let spans = traces.trace(trace, edge, 1).await;
    assert_login_tree(&spans, edge);
}
