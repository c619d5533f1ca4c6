//! Reconciler scenarios against a fake API server (the controller-rs pattern): every child
//! created, a version change gated on the migration Job, a failed Job → Degraded, drift
//! repaired, no status write when nothing changed, an invalid spec → a condition.

mod fake;
mod leader;

use std::sync::Arc;
use std::time::Duration;

use fake::{Call, FakeApi, Rollout};
use kube::runtime::events::{Recorder, Reporter};
use natter_operator::crd::{AutoscalingSpec, ChatCluster, ChatClusterStatus};
use natter_operator::metrics::Metrics;
use natter_operator::reconcile::{Context, reconcile};
use natter_operator::resources::migration_job_name;
use serde_json::{Value, json};

/// A ChatCluster as the API server would hand it over.
fn cluster(tag: &str, status: Option<ChatClusterStatus>) -> ChatCluster {
    let mut cluster: ChatCluster = serde_json::from_value(json!({
        "apiVersion": "natter.dev/v1alpha1",
        "kind": "ChatCluster",
        "metadata": {"name": "demo", "namespace": "natter", "uid": "11111111-2222-3333-4444-555555555555", "generation": 3},
        "spec": {
            "image": {"repository": "registry.example/natter", "tag": tag},
            "database": {"secretRef": {"name": "natter-db", "key": "url"}},
            "redis": {"secretRef": {"name": "natter-redis", "key": "url"}},
            "ingress": {"enabled": true, "host": "chat.example.com", "tlsSecretName": "chat-tls"},
        },
    }))
    .unwrap();
    cluster.status = status;
    cluster
}

/// Runs one reconcile (failing on a hang) and returns the calls it made.
async fn reconcile_once(api: &FakeApi, client: &kube::Client, cluster: ChatCluster) -> Vec<Call> {
    reconcile_counted(api, client, cluster, Metrics::default()).await
}

/// [`reconcile_once`], counted in `metrics`.
async fn reconcile_counted(
    api: &FakeApi,
    client: &kube::Client,
    cluster: ChatCluster,
    metrics: Metrics,
) -> Vec<Call> {
    let reporter = Reporter {
        controller: "natter-operator".into(),
        instance: None,
    };
    let ctx = Arc::new(Context::new(
        client.clone(),
        Recorder::new(client.clone(), reporter),
        metrics,
    ));
    tokio::time::timeout(Duration::from_secs(10), reconcile(Arc::new(cluster), ctx))
        .await
        .expect("reconcile finished")
        .expect("reconcile succeeded");
    assert_eq!(
        api.unexpected(),
        Vec::<String>::new(),
        "unexpected API calls"
    );
    api.take_calls()
}

fn lines(calls: &[Call]) -> Vec<String> {
    calls.iter().map(Call::line).collect()
}

fn applied<'a>(calls: &'a [Call], plural: &str) -> Vec<&'a Value> {
    calls
        .iter()
        .filter(|c| {
            c.method == "PATCH"
                && c.line().contains(&format!("/{plural}/"))
                && !c.uri.contains("/status")
        })
        .map(|c| &c.body)
        .collect()
}

fn status_written(calls: &[Call]) -> Option<ChatClusterStatus> {
    let call = calls
        .iter()
        .find(|c| c.uri.contains("/chatclusters/demo/status"))?;
    Some(serde_json::from_value(call.body["status"].clone()).unwrap())
}

fn condition<'a>(status: &'a ChatClusterStatus, kind: &str) -> (&'a str, &'a str) {
    let c = status.conditions.iter().find(|c| c.type_ == kind).unwrap();
    (c.status.as_str(), c.reason.as_str())
}

fn images(calls: &[Call]) -> Vec<String> {
    applied(calls, "deployments")
        .iter()
        .map(|d| {
            d["spec"]["template"]["spec"]["containers"][0]["image"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// Fails unless the reconcile published the Event `type reason`.
fn assert_event(calls: &[Call], expected: &str) {
    let seen = events(calls);
    assert!(
        seen.iter().any(|e| e == expected),
        "{expected} not in {seen:?}"
    );
}

fn events(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .filter(|c| c.method == "POST" && c.uri.contains("/events"))
        .map(|c| {
            format!(
                "{} {}",
                c.body["type"].as_str().unwrap_or(""),
                c.body["reason"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[tokio::test]
async fn first_install_migrates_then_creates_every_child() {
    let (client, api) = FakeApi::start();
    let calls = reconcile_once(&api, &client, cluster("1.0.0", None)).await;
    let seen = lines(&calls);
    for expected in [
        "PATCH /api/v1/namespaces/natter/serviceaccounts/demo",
        "PATCH /api/v1/namespaces/natter/configmaps/demo-config",
        "POST /api/v1/namespaces/natter/secrets",
        "PATCH /api/v1/namespaces/natter/services/demo-auth",
        "PATCH /api/v1/namespaces/natter/services/demo-website",
        "PATCH /api/v1/namespaces/natter/services/demo-chat",
        "PATCH /api/v1/namespaces/natter/services/demo-frontend",
        "PATCH /apis/networking.k8s.io/v1/namespaces/natter/ingresses/demo",
    ] {
        assert!(
            seen.contains(&expected.to_owned()),
            "missing {expected} in {seen:#?}"
        );
    }
    let job = migration_job_name(&cluster("1.0.0", None), "1.0.0", 1);
    assert!(seen.contains(&format!(
        "PATCH /apis/batch/v1/namespaces/natter/jobs/{job}"
    )));
    assert!(
        images(&calls).is_empty(),
        "no Deployment before the migration succeeded"
    );
    let status = status_written(&calls).unwrap();
    assert_eq!(
        condition(&status, "MigrationsApplied"),
        ("False", "Migrating")
    );
    assert_eq!(condition(&status, "Progressing"), ("True", "Migrating"));
    assert_eq!(status.url.as_deref(), Some("https://chat.example.com/"));
    for call in calls
        .iter()
        .filter(|c| c.method == "PATCH" && !c.uri.contains("/status"))
    {
        assert!(
            call.uri.contains("fieldManager=natter-operator") && call.uri.contains("force=true"),
            "{}",
            call.uri
        );
        assert_eq!(
            call.body["metadata"]["ownerReferences"][0]["kind"], "ChatCluster",
            "{}",
            call.uri
        );
    }

    api.set_job(&job, json!({"succeeded": 1}));
    api.set_ready(2);
    let calls = reconcile_once(&api, &client, cluster("1.0.0", Some(status))).await;
    assert_eq!(images(&calls), vec!["registry.example/natter:1.0.0"; 4]);
    assert_eq!(
        applied(&calls, "poddisruptionbudgets").len(),
        4,
        "two replicas each"
    );
    let status = status_written(&calls).unwrap();
    assert_eq!(status.current_version.as_deref(), Some("1.0.0"));
    assert_eq!(condition(&status, "Ready"), ("True", "AllReplicasReady"));
    assert_eq!(
        condition(&status, "MigrationsApplied"),
        ("True", "Migrated")
    );
    assert_event(&calls, "Normal AllReplicasReady");
    assert_event(&calls, "Normal Migrated");
}

#[tokio::test]
async fn reconciles_are_counted_and_timed() {
    let (client, api) = FakeApi::start();
    let metrics = Metrics::default();
    reconcile_counted(&api, &client, cluster("1.0.0", None), metrics.clone()).await;
    let text = metrics.render();
    for expected in [
        "natter_operator_reconciles_total{result=\"ok\"} 1\n",
        "natter_operator_reconcile_errors_total 0\n",
        "natter_operator_reconcile_duration_seconds_count 1\n",
    ] {
        assert!(text.contains(expected), "{expected} not in {text}");
    }
    assert!(text.ends_with("# EOF\n"), "{text}");
}

#[tokio::test]
async fn a_version_change_waits_for_its_migration_job() {
    let (client, api) = FakeApi::start();
    api.set_ready(2);
    let running = settled_status(&api, &client, "1.0.0").await;
    let next = cluster("1.1.0", Some(running.clone()));
    let job = migration_job_name(&next, "1.1.0", 1);

    let calls = reconcile_once(&api, &client, next.clone()).await;
    assert_eq!(
        images(&calls),
        vec!["registry.example/natter:1.0.0"; 4],
        "old version until migrated"
    );
    let migrating = applied(&calls, "jobs");
    assert_eq!(
        migrating[0]["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example/natter:1.1.0"
    );
    assert_eq!(
        migrating[0]["spec"]["template"]["spec"]["containers"][0]["args"],
        json!(["migrate"])
    );
    let status = status_written(&calls).unwrap();
    assert_eq!(status.current_version.as_deref(), Some("1.0.0"));

    api.set_job(&job, json!({"succeeded": 1}));
    let calls = reconcile_once(&api, &client, cluster("1.1.0", Some(status))).await;
    assert_eq!(images(&calls), vec!["registry.example/natter:1.1.0"; 4]);
    assert_eq!(
        status_written(&calls).unwrap().current_version.as_deref(),
        Some("1.1.0")
    );
}

#[tokio::test]
async fn a_failed_migration_degrades_and_keeps_the_old_version() {
    let (client, api) = FakeApi::start();
    api.set_ready(2);
    let running = settled_status(&api, &client, "1.0.0").await;
    let next = cluster("2.0.0", Some(running));
    api.set_job(&migration_job_name(&next, "2.0.0", 1), json!({"failed": 3, "conditions": [
        {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]}));
    let calls = reconcile_once(&api, &client, next).await;
    assert_eq!(images(&calls), vec!["registry.example/natter:1.0.0"; 4]);
    let status = status_written(&calls).unwrap();
    assert_eq!(condition(&status, "Degraded"), ("True", "MigrationFailed"));
    assert_eq!(condition(&status, "Ready"), ("False", "MigrationFailed"));
    let message = &status
        .conditions
        .iter()
        .find(|c| c.type_ == "Degraded")
        .unwrap()
        .message;
    assert!(
        message.contains("BackoffLimitExceeded") && message.contains("1.0.0 keeps running"),
        "{message}"
    );
    assert_event(&calls, "Warning MigrationFailed");
}

#[tokio::test]
async fn ready_waits_until_every_deployment_has_rolled_out() {
    let (client, api) = FakeApi::start();
    api.set_ready(2);
    let mut status = settled_status(&api, &client, "1.0.0").await;
    // An env change rolls every component: mid-rollout, old pods still count as ready
    // and running, the new ones are not all available yet, or the controller has not
    // even seen the new template.
    let rollouts = [
        Rollout {
            updated: 2,
            available: 2,
            running: 2,
            observed: false,
        },
        Rollout {
            updated: 1,
            available: 1,
            running: 3,
            observed: true,
        },
        Rollout {
            updated: 2,
            available: 1,
            running: 2,
            observed: true,
        },
        Rollout {
            updated: 2,
            available: 2,
            running: 3,
            observed: true,
        },
    ];
    for rollout in rollouts {
        api.set_rollout(rollout);
        let calls = reconcile_once(&api, &client, cluster("1.0.0", Some(status.clone()))).await;
        status = status_written(&calls).unwrap_or(status);
        assert_eq!(
            condition(&status, "Ready"),
            ("False", "RollingOut"),
            "{rollout:?}"
        );
        assert_eq!(condition(&status, "Progressing"), ("True", "RollingOut"));
        let message = &status
            .conditions
            .iter()
            .find(|c| c.type_ == "Progressing")
            .unwrap()
            .message;
        assert!(
            message.contains("chat ("),
            "names the components: {message}"
        );
    }
    api.set_ready(2);
    let calls = reconcile_once(&api, &client, cluster("1.0.0", Some(status))).await;
    let status = status_written(&calls).unwrap();
    assert_eq!(condition(&status, "Ready"), ("True", "AllReplicasReady"));
}

/// A Job `Failed` since `ago` seconds.
fn failed_job(ago: i64) -> Value {
    let at = k8s_openapi::jiff::Timestamp::now().as_second() - ago;
    let at = k8s_openapi::jiff::Timestamp::from_second(at).unwrap();
    json!({"failed": 3, "conditions": [{"type": "Failed", "status": "True",
        "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit",
        "lastTransitionTime": at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()}]})
}

#[tokio::test]
async fn a_failed_migration_is_retried_after_a_backoff_and_at_once_on_a_spec_change() {
    let (client, api) = FakeApi::start();
    api.set_ready(2);
    let running = settled_status(&api, &client, "1.0.0").await;
    let next = cluster("2.0.0", Some(running));
    let first = migration_job_name(&next, "2.0.0", 1);
    let second = migration_job_name(&next, "2.0.0", 2);
    let third = migration_job_name(&next, "2.0.0", 3);
    api.set_job(&first, failed_job(5));
    let calls = reconcile_once(&api, &client, next.clone()).await;
    let status = status_written(&calls).unwrap();
    assert_eq!(condition(&status, "Degraded"), ("True", "MigrationFailed"));
    assert_eq!(status.migration.as_ref().unwrap().attempt, 1);
    assert!(
        applied(&calls, "jobs").is_empty(),
        "no retry within the backoff"
    );

    // The failed Job has aged past the backoff: a second Job, the old version still runs.
    api.set_job(&first, failed_job(31));
    let calls = reconcile_once(&api, &client, cluster("2.0.0", Some(status))).await;
    let jobs = applied(&calls, "jobs");
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["metadata"]["name"], second.as_str());
    assert_eq!(images(&calls), vec!["registry.example/natter:1.0.0"; 4]);
    let status = status_written(&calls).unwrap();
    assert_eq!(status.migration.as_ref().unwrap().attempt, 2);
    assert_eq!(
        condition(&status, "MigrationsApplied"),
        ("False", "Migrating")
    );
    assert_eq!(condition(&status, "Degraded"), ("False", "AsExpected"));

    // The second fails at once; a spec change (a fixed Secret reference, say) does not wait.
    api.set_job(&second, failed_job(1));
    let mut edited = cluster("2.0.0", Some(status));
    edited.metadata.generation = Some(4);
    let calls = reconcile_once(&api, &client, edited).await;
    let jobs = applied(&calls, "jobs");
    assert_eq!(
        jobs[0]["metadata"]["name"],
        third.as_str(),
        "{:#?}",
        lines(&calls)
    );
    let status = status_written(&calls).unwrap();
    assert_eq!(status.migration.as_ref().unwrap().attempt, 3);

    api.set_job(&third, json!({"succeeded": 1}));
    let calls = reconcile_once(&api, &client, cluster("2.0.0", Some(status))).await;
    assert_eq!(images(&calls), vec!["registry.example/natter:2.0.0"; 4]);
}

#[tokio::test]
async fn a_missing_secret_is_reported_within_one_reconcile() {
    let (client, api) = FakeApi::start();
    let job = migration_job_name(&cluster("1.0.0", None), "1.0.0", 1);
    api.block_pod(
        &format!("{job}-x7k2p"),
        "CreateContainerConfigError",
        "secret \"natter-db\" not found",
    );
    let calls = reconcile_once(&api, &client, cluster("1.0.0", None)).await;
    assert!(
        lines(&calls)
            .iter()
            .any(|l| l == "GET /api/v1/namespaces/natter/pods"),
        "{:#?}",
        lines(&calls)
    );
    let status = status_written(&calls).unwrap();
    assert_eq!(condition(&status, "Degraded"), ("True", "PodsBlocked"));
    let event = calls
        .iter()
        .find(|c| c.method == "POST" && c.body["reason"] == "PodsBlocked")
        .expect("a PodsBlocked Event");
    assert_eq!(event.body["type"], "Warning");
    let note = event.body["note"].as_str().unwrap();
    assert!(note.contains("secret \"natter-db\" not found"), "{note}");
}

#[tokio::test]
async fn events_carry_the_reason_once_and_migration_events_name_their_job() {
    let (client, api) = FakeApi::start();
    api.set_ready(2);
    let running = settled_status(&api, &client, "1.0.0").await;
    let next = cluster("2.0.0", Some(running));
    let job = migration_job_name(&next, "2.0.0", 1);
    api.set_job(&job, failed_job(5));
    let calls = reconcile_once(&api, &client, next).await;
    let failures: Vec<&Call> = calls
        .iter()
        .filter(|c| c.method == "POST" && c.body["reason"] == "MigrationFailed")
        .collect();
    assert_eq!(
        failures.len(),
        1,
        "Ready, Degraded and MigrationsApplied share one Event"
    );
    let note = failures[0].body["note"].as_str().unwrap();
    assert!(
        note.starts_with("Ready=False, Degraded=True, MigrationsApplied=False: "),
        "{note}"
    );
    assert_eq!(failures[0].body["related"]["name"], job.as_str());
    assert_eq!(failures[0].body["related"]["kind"], "Job");
}

#[tokio::test]
async fn every_reconcile_reapplies_every_child_so_drift_is_repaired() {
    let (client, api) = FakeApi::start();
    api.set_ready(2);
    let status = settled_status(&api, &client, "1.0.0").await;
    // Someone deleted a Deployment and edited a Service: the next reconcile (the watch on
    // owned objects triggers it) applies the whole desired state again, forcing our fields.
    let calls = reconcile_once(&api, &client, cluster("1.0.0", Some(status))).await;
    assert_eq!(applied(&calls, "deployments").len(), 4);
    assert_eq!(applied(&calls, "services").len(), 4);
    assert!(
        calls
            .iter()
            .filter(|c| c.method == "PATCH")
            .all(|c| c.uri.contains("force=true") || c.uri.contains("/status"))
    );
}

#[tokio::test]
async fn an_unchanged_cluster_gets_no_status_write_and_no_event() {
    let (client, api) = FakeApi::start();
    api.set_ready(2);
    let status = settled_status(&api, &client, "1.0.0").await;
    let calls = reconcile_once(&api, &client, cluster("1.0.0", Some(status))).await;
    assert!(status_written(&calls).is_none(), "{:#?}", lines(&calls));
    assert!(events(&calls).is_empty());
}

#[tokio::test]
async fn an_invalid_spec_becomes_a_condition_and_an_event() {
    let (client, api) = FakeApi::start();
    let mut bad = cluster("1.0.0", None);
    bad.spec.chat.autoscaling = Some(AutoscalingSpec {
        min_replicas: 5,
        max_replicas: 2,
        target_cpu_utilization_percentage: 70,
    });
    let calls = reconcile_once(&api, &client, bad).await;
    assert!(applied(&calls, "deployments").is_empty() && applied(&calls, "services").is_empty());
    let status = status_written(&calls).unwrap();
    assert_eq!(condition(&status, "Degraded"), ("True", "InvalidSpec"));
    let message = &status
        .conditions
        .iter()
        .find(|c| c.type_ == "Degraded")
        .unwrap()
        .message;
    assert!(
        message.contains("chat.autoscaling: minReplicas (5) is above maxReplicas (2)"),
        "{message}"
    );
    assert_eq!(
        condition(&status, "MigrationsApplied"),
        ("False", "InvalidSpec"),
        "nothing ran"
    );
    assert_eq!(status.current_version, None);
    assert_event(&calls, "Warning InvalidSpec");
}

/// Reconciles a fresh cluster at `tag` to Ready and returns its status.
async fn settled_status(api: &FakeApi, client: &kube::Client, tag: &str) -> ChatClusterStatus {
    let first = cluster(tag, None);
    api.set_job(&migration_job_name(&first, tag, 1), json!({"succeeded": 1}));
    let calls = reconcile_once(api, client, first).await;
    let status = status_written(&calls).unwrap();
    assert_eq!(condition(&status, "Ready").0, "True");
    status
}
