//! A fake Kubernetes API server behind a tower-test mock: it answers server-side applies
//! by echoing the object, keeps scripted migration Jobs and Deployment readiness, records
//! every request, and refuses (and records) anything it does not know.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use http::{Method, Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};

/// Where every Deployment's rollout stands (its `metadata.generation` is 2).
#[derive(Debug, Clone, Copy)]
pub struct Rollout {
    /// Pods of the current revision.
    pub updated: i32,
    /// Available pods (all of them updated ones here).
    pub available: i32,
    /// Pods running, older revisions included.
    pub running: i32,
    /// Whether the Deployment controller has seen generation 2.
    pub observed: bool,
}

/// One request the operator made.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: Method,
    /// Path and query.
    pub uri: String,
    pub body: Value,
}

impl Call {
    /// `METHOD /path` without the query.
    pub fn line(&self) -> String {
        format!(
            "{} {}",
            self.method,
            self.uri.split('?').next().unwrap_or("")
        )
    }
}

#[derive(Debug, Default)]
struct State {
    calls: Vec<Call>,
    unexpected: Vec<String>,
    /// Job name → its status.
    jobs: BTreeMap<String, Value>,
    /// The status every Deployment reports (`set_ready`, `set_rollout`).
    deployment: Value,
    /// Names of Secrets created.
    secrets: BTreeSet<String>,
    /// Leases by name, each with its resourceVersion.
    leases: BTreeMap<String, Value>,
    /// Pods a list returns.
    pods: Vec<Value>,
}

/// The fake API server's state, shared with the test.
#[derive(Debug, Clone, Default)]
pub struct FakeApi(Arc<Mutex<State>>);

impl FakeApi {
    /// A client talking to a new fake server.
    pub fn start() -> (Client, Self) {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let api = Self::default();
        let server = api.clone();
        tokio::spawn(async move {
            while let Some((request, send)) = handle.next_request().await {
                let response = server.answer(request).await;
                send.send_response(response);
            }
        });
        (Client::new(service, "default"), api)
    }

    /// Every call so far, and forgets them.
    pub fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut self.lock().calls)
    }

    /// Requests the fake did not know; a test asserts there are none.
    pub fn unexpected(&self) -> Vec<String> {
        self.lock().unexpected.clone()
    }

    /// The migration Job `name` reports `status`.
    pub fn set_job(&self, name: &str, status: Value) {
        self.lock().jobs.insert(name.into(), status);
    }

    /// Every Deployment reports `ready` pods, all updated and available: rolled out.
    pub fn set_ready(&self, ready: i32) {
        self.set_rollout(Rollout {
            updated: ready,
            available: ready,
            running: ready,
            observed: true,
        });
    }

    /// A pod of the installation whose container waits for `reason` (`message`, as the
    /// kubelet says it).
    pub fn block_pod(&self, name: &str, reason: &str, message: &str) {
        self.lock().pods.push(json!({
            "metadata": {"name": name, "namespace": "natter"},
            "status": {"containerStatuses": [{
                "name": "natter", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": reason, "message": message}},
            }]},
        }));
    }

    /// Every Deployment reports `rollout`.
    pub fn set_rollout(&self, rollout: Rollout) {
        self.lock().deployment = json!({
            "observedGeneration": if rollout.observed { 2 } else { 1 },
            "replicas": rollout.running,
            "updatedReplicas": rollout.updated,
            "readyReplicas": rollout.available,
            "availableReplicas": rollout.available,
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn answer(&self, request: Request<Body>) -> Response<Body> {
        let (parts, body) = request.into_parts();
        let bytes = body.collect_bytes().await.unwrap_or_default();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let uri = parts.uri.to_string();
        let call = Call {
            method: parts.method.clone(),
            uri: uri.clone(),
            body: body.clone(),
        };
        let path = uri.split('?').next().unwrap_or("").to_owned();
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        self.lock().calls.push(call);
        // `…/<plural>/<name>` for objects, `…/<plural>` for collections (POST).
        let kind = match parts.method {
            Method::POST => segments.last().copied().unwrap_or(""),
            _ => segments.iter().rev().nth(1).copied().unwrap_or(""),
        };
        let name = segments.last().copied().unwrap_or("");
        match (parts.method.clone(), kind) {
            (Method::GET, _) if path.ends_with("/pods") => {
                let items = self.lock().pods.clone();
                reply(
                    StatusCode::OK,
                    json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": items}),
                )
            }
            (Method::PATCH, _) if path.ends_with("/status") => {
                // The operator ignores the answer, but it must parse as a ChatCluster.
                let mut object = json!({
                    "apiVersion": "natter.dev/v1alpha1", "kind": "ChatCluster",
                    "metadata": {"name": segments[segments.len() - 2], "namespace": "natter"},
                    "spec": {"image": {"tag": "x"}, "database": {"vaultPath": "x"}, "redis": {"vaultPath": "x"}},
                });
                object["status"] = body["status"].clone();
                reply(StatusCode::OK, object)
            }
            (Method::PATCH, "deployments") => {
                let mut object = with_meta(body);
                object["metadata"]["generation"] = json!(2);
                object["status"] = self.lock().deployment.clone();
                reply(StatusCode::OK, object)
            }
            (Method::PATCH, "events") => reply(StatusCode::OK, body),
            (Method::PATCH, _) => reply(StatusCode::OK, with_meta(body)),
            (Method::GET, "jobs") => match self.lock().jobs.get(name) {
                Some(status) => reply(
                    StatusCode::OK,
                    json!({
                    "apiVersion": "batch/v1", "kind": "Job",
                    "metadata": {"name": name, "namespace": "natter"}, "status": status}),
                ),
                None => not_found(),
            },
            (Method::POST, "secrets") => {
                let name = body["metadata"]["name"].as_str().unwrap_or("").to_owned();
                match self.lock().secrets.insert(name) {
                    true => reply(StatusCode::CREATED, with_meta(body)),
                    false => status(StatusCode::CONFLICT, "AlreadyExists"),
                }
            }
            (Method::GET, "leases") => match self.lock().leases.get(name) {
                Some(lease) => reply(StatusCode::OK, lease.clone()),
                None => not_found(),
            },
            (Method::POST, "leases") => self.write_lease(body, None),
            (Method::PUT, "leases") => self.write_lease(body, Some(name)),
            (Method::POST, "events") => reply(StatusCode::CREATED, with_meta(body)),
            (Method::DELETE, _) => not_found(),
            _ => {
                self.lock()
                    .unexpected
                    .push(format!("{} {uri}", parts.method));
                status(StatusCode::INTERNAL_SERVER_ERROR, "InternalError")
            }
        }
    }
}

impl FakeApi {
    /// Creates (`replacing` none) or replaces a Lease, refusing a stale resourceVersion
    /// with 409 as the API server does.
    fn write_lease(&self, mut lease: Value, replacing: Option<&str>) -> Response<Body> {
        let name = lease["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let mut state = self.lock();
        let current = state
            .leases
            .get(&name)
            .map(|l| l["metadata"]["resourceVersion"].clone());
        let fresh = match (replacing, &current) {
            (None, None) => true,
            (Some(_), Some(version)) => lease["metadata"]["resourceVersion"] == *version,
            _ => false,
        };
        if !fresh {
            return status(StatusCode::CONFLICT, "Conflict");
        }
        let next = current
            .and_then(|v| v.as_str()?.parse::<u64>().ok())
            .unwrap_or(0)
            + 1;
        lease["metadata"]["resourceVersion"] = json!(next.to_string());
        state.leases.insert(name, lease.clone());
        reply(StatusCode::OK, lease)
    }

    /// Moves the Lease's renew time `secs` into the past (a holder that stopped renewing).
    pub fn age_lease(&self, name: &str, secs: i64) {
        let mut state = self.lock();
        let lease = state.leases.get_mut(name).expect("a lease");
        let renewed: i64 = k8s_openapi::jiff::Timestamp::now().as_second() - secs;
        let stamp = k8s_openapi::jiff::Timestamp::from_second(renewed).unwrap();
        lease["spec"]["renewTime"] = json!(stamp.strftime("%Y-%m-%dT%H:%M:%S.000000Z").to_string());
    }
}

fn with_meta(mut object: Value) -> Value {
    object["metadata"]["uid"] = json!("00000000-0000-0000-0000-000000000001");
    object["metadata"]["resourceVersion"] = json!("1");
    object
}

fn reply(code: StatusCode, body: Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(&body).unwrap()))
        .unwrap()
}

fn not_found() -> Response<Body> {
    status(StatusCode::NOT_FOUND, "NotFound")
}

fn status(code: StatusCode, reason: &str) -> Response<Body> {
    reply(
        code,
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": reason, "reason": reason, "code": code.as_u16(),
        }),
    )
}
