//! What runs: a Deployment per component and the migration Job, over one locked-down pod
//! template.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::settings::{config_map_name, settings_hash, vapid_secret_name};
use super::{
    Component, GRPC_PORT, HTTP_PORT, VAULT_TOKEN_DIR, component_name, labels, metadata,
    secrets_name, selector, typed,
};
use crate::crd::{ChatCluster, ConnectionSource};

fn connection_env(name: &str, source: &ConnectionSource) -> Option<Value> {
    let secret = source.secret_ref.as_ref()?;
    Some(json!({
        "name": name,
        "valueFrom": {"secretKeyRef": {"name": secret.name, "key": secret.key}},
    }))
}

/// The pod template shared by a component's Deployment and the migration Job.
fn pod_spec(
    cluster: &ChatCluster,
    args: &[&str],
    version: &str,
    component: Option<Component>,
) -> Value {
    let spec = &cluster.spec;
    let mut env: Vec<Value> = vec![
        json!({"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}),
        json!({"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}),
    ];
    env.extend(connection_env("NATTER_DATABASE_URL", &spec.database));
    env.extend(connection_env("NATTER_REDIS_URL", &spec.redis));
    // The SMTP credentials only where digests are sent.
    if component == Some(Component::Website) {
        let email = spec.notifications.email.as_ref();
        env.extend(email.and_then(|e| connection_env("NATTER_NOTIFY_SMTP_URL", &e.smtp)));
    }
    if let Some(component) = component {
        env.extend(
            component
                .spec(cluster)
                .env
                .iter()
                .map(|e| json!({"name": e.name, "value": e.value})),
        );
    }
    let mut env_from = vec![json!({"configMapRef": {"name": config_map_name(cluster)}})];
    if spec.vault.is_none() {
        env_from.push(json!({"secretRef": {"name": secrets_name(cluster)}}));
        if component == Some(Component::Website) {
            let vapid = vapid_secret_name(cluster);
            env_from.push(json!({"secretRef": {"name": vapid, "optional": true}}));
        }
    }
    let mut volumes = vec![json!({"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}})];
    let mut mounts = vec![json!({"name": "tmp", "mountPath": "/tmp"})];
    if spec.vault.is_some() {
        // A short-lived token with audience `vault`, refreshed by the kubelet.
        volumes.push(json!({"name": "vault-token", "projected": {"sources": [
            {"serviceAccountToken": {"path": "token", "audience": "vault", "expirationSeconds": 3600}}
        ]}}));
        mounts.push(json!({"name": "vault-token", "mountPath": VAULT_TOKEN_DIR, "readOnly": true}));
    }
    let mut container = json!({
        "name": component.map_or("migrate", Component::name),
        "image": format!("{}:{version}", spec.image.repository),
        "imagePullPolicy": spec.image.pull_policy,
        "args": args,
        "env": env,
        "envFrom": env_from,
        "volumeMounts": mounts,
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "runAsNonRoot": true,
            "capabilities": {"drop": ["ALL"]},
        },
    });
    if let Some(component) = component {
        let mut ports = vec![json!({"name": "http", "containerPort": HTTP_PORT})];
        if component.serves_grpc() {
            ports.push(json!({"name": "grpc", "containerPort": GRPC_PORT}));
        }
        container["ports"] = json!(ports);
        container["livenessProbe"] = json!({"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10, "failureThreshold": 3});
        container["readinessProbe"] = json!({"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 5, "failureThreshold": 2});
        // Stay in the endpoints a moment after SIGTERM while load balancers catch up.
        container["lifecycle"] = json!({"preStop": {"sleep": {"seconds": 5}}});
        if let Some(resources) = &component.spec(cluster).resources {
            container["resources"] = json!(resources);
        }
    }
    let pull_secrets: Vec<Value> = spec
        .image
        .pull_secrets
        .iter()
        .map(|n| json!({"name": n}))
        .collect();
    json!({
        "serviceAccountName": cluster.name_any(),
        "automountServiceAccountToken": false,
        "imagePullSecrets": pull_secrets,
        "securityContext": {
            "runAsNonRoot": true,
            "runAsUser": 65532,
            "runAsGroup": 65532,
            "fsGroup": 65532,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "terminationGracePeriodSeconds": component.map_or(30, Component::termination_grace_secs),
        "containers": [container],
        "volumes": volumes,
    })
}

/// A component's Deployment running `version`.
pub fn deployment(cluster: &ChatCluster, component: Component, version: &str) -> Deployment {
    let name = component_name(cluster, component);
    let own = component.spec(cluster);
    let mut pod_labels = selector(cluster, component);
    pod_labels.insert("app.kubernetes.io/version".into(), version.into());
    let mut spec = json!({
        "selector": {"matchLabels": selector(cluster, component)},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
        "template": {
            "metadata": {
                "labels": pod_labels,
                "annotations": {
                    "prometheus.io/scrape": "true",
                    "prometheus.io/port": HTTP_PORT.to_string(),
                    "prometheus.io/path": "/metrics",
                    "natter.dev/settings-hash": settings_hash(cluster),
                },
            },
            "spec": pod_spec(cluster, &[component.name()], version, Some(component)),
        },
    });
    // With autoscaling the HPA owns the replica count.
    if own.autoscaling.is_none() {
        spec["replicas"] = json!(own.replicas);
    }
    typed(json!({
        "metadata": metadata(cluster, &name, labels(cluster, Some(component), Some(version))),
        "spec": spec,
    }))
}

/// The migration Job of `version`; its name is unique per version.
pub fn migration_job(cluster: &ChatCluster, version: &str, attempt: u32) -> Job {
    let mut pod = pod_spec(cluster, &["migrate"], version, None);
    pod["restartPolicy"] = json!("Never");
    let name = migration_job_name(cluster, version, attempt);
    typed(json!({
        "metadata": metadata(cluster, &name, labels(cluster, None, Some(version))),
        "spec": {
            "backoffLimit": 2,
            "activeDeadlineSeconds": 900,
            "ttlSecondsAfterFinished": 86400,
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": "natter", "app.kubernetes.io/instance": cluster.name_any(), "app.kubernetes.io/component": "migrate"}},
                "spec": pod,
            },
        },
    }))
}

/// `<cluster>-migrate-<hash of version>-<attempt>` (a tag may not fit a name as it is).
pub fn migration_job_name(cluster: &ChatCluster, version: &str, attempt: u32) -> String {
    let digest = Sha256::digest(version.as_bytes());
    let hash: String = digest[..5].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-migrate-{hash}-{attempt}", cluster.name_any())
}
