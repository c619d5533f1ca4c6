//! The children of a ChatCluster, built from its spec: pure functions from the resource to
//! the objects the controller applies (no API calls here, so tests can look at them).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::crd::{ChatCluster, ComponentSpec, ConnectionSource, VaultAuthMethod};

/// HTTP port of every component (API, WebSocket, health, metrics).
pub const HTTP_PORT: i32 = 8080;
/// gRPC port of auth, website and chat.
pub const GRPC_PORT: i32 = 50051;
/// Where the projected service-account token for Vault's jwt method is mounted.
const VAULT_TOKEN_DIR: &str = "/var/run/secrets/natter/vault";

/// One Natter service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Component {
    /// Accounts and tokens.
    Auth,
    /// Rooms, members, history, JSON API.
    Website,
    /// WebSocket delivery.
    Chat,
    /// Server-rendered web UI.
    Frontend,
}

impl Component {
    /// Every component, in rollout order.
    pub const ALL: [Component; 4] = [Self::Auth, Self::Website, Self::Chat, Self::Frontend];

    /// The name: subcommand, label and suffix of its objects.
    pub fn name(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Website => "website",
            Self::Chat => "chat",
            Self::Frontend => "frontend",
        }
    }

    /// Its part of the spec.
    pub fn spec(self, cluster: &ChatCluster) -> &ComponentSpec {
        match self {
            Self::Auth => &cluster.spec.auth,
            Self::Website => &cluster.spec.website,
            Self::Chat => &cluster.spec.chat,
            Self::Frontend => &cluster.spec.frontend,
        }
    }

    fn serves_grpc(self) -> bool {
        self != Self::Frontend
    }

    /// Time to drain: chat closes every socket with 1012 and waits for clients to go.
    fn termination_grace_secs(self) -> i64 {
        match self {
            Self::Chat => 45,
            _ => 30,
        }
    }
}

/// The name of a component's Deployment, Service, HPA and PDB.
pub fn component_name(cluster: &ChatCluster, component: Component) -> String {
    format!("{}-{}", cluster.name_any(), component.name())
}

/// Labels selecting a component's pods (never includes the version).
pub fn selector(cluster: &ChatCluster, component: Component) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".into(), "natter".into()),
        ("app.kubernetes.io/instance".into(), cluster.name_any()),
        (
            "app.kubernetes.io/component".into(),
            component.name().into(),
        ),
    ])
}

fn labels(cluster: &ChatCluster, component: Option<Component>, version: Option<&str>) -> Value {
    let mut labels = json!({
        "app.kubernetes.io/name": "natter",
        "app.kubernetes.io/instance": cluster.name_any(),
        "app.kubernetes.io/managed-by": "natter-operator",
    });
    if let Some(component) = component {
        labels["app.kubernetes.io/component"] = json!(component.name());
    }
    if let Some(version) = version {
        labels["app.kubernetes.io/version"] = json!(version);
    }
    labels
}

/// Metadata with the owner reference that makes the cluster own (and garbage-collect) it.
fn metadata(cluster: &ChatCluster, name: &str, labels: Value) -> Value {
    let owner = cluster
        .controller_owner_ref(&())
        .expect("a ChatCluster from the API server has a uid");
    json!({
        "name": name,
        "namespace": cluster.namespace(),
        "labels": labels,
        "ownerReferences": [owner],
    })
}

fn typed<T: DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("the operator builds well-formed objects")
}

/// The pods' ServiceAccount (the identity Vault's role is bound to).
pub fn service_account(cluster: &ChatCluster) -> ServiceAccount {
    typed(json!({
        "metadata": metadata(cluster, &cluster.name_any(), labels(cluster, None, None)),
        "automountServiceAccountToken": false,
    }))
}

/// The settings every component reads (docs/configuration.md).
pub fn config_map(cluster: &ChatCluster) -> ConfigMap {
    typed(json!({
        "metadata": metadata(cluster, &config_map_name(cluster), labels(cluster, None, None)),
        "data": settings(cluster),
    }))
}

fn config_map_name(cluster: &ChatCluster) -> String {
    format!("{}-config", cluster.name_any())
}

/// The generated secrets of an installation without Vault.
pub fn secrets_name(cluster: &ChatCluster) -> String {
    format!("{}-secrets", cluster.name_any())
}

fn settings(cluster: &ChatCluster) -> BTreeMap<String, String> {
    let spec = &cluster.spec;
    let auth = format!(
        "http://{}:{GRPC_PORT}",
        component_name(cluster, Component::Auth)
    );
    let mut data = BTreeMap::from([
        (
            "NATTER_HTTP_ADDR".to_owned(),
            format!("0.0.0.0:{HTTP_PORT}"),
        ),
        ("NATTER_GRPC_ADDR".into(), format!("0.0.0.0:{GRPC_PORT}")),
        ("NATTER_AUTH_GRPC_URL".into(), auth),
        ("NATTER_LOG_FORMAT".into(), "json".into()),
        (
            "NATTER_TRUST_FORWARDED_FOR".into(),
            spec.ingress.enabled.to_string(),
        ),
        ("RUST_LOG".into(), spec.telemetry.log_level.as_str().into()),
        (
            "NATTER_TRACE_SAMPLE_RATIO".into(),
            spec.telemetry.sampling_ratio.to_string(),
        ),
    ]);
    if let Some(endpoint) = &spec.telemetry.otlp_endpoint {
        data.insert("OTEL_EXPORTER_OTLP_ENDPOINT".into(), endpoint.clone());
    }
    match &spec.vault {
        Some(vault) => {
            let method = match vault.auth_method {
                VaultAuthMethod::Kubernetes => "kubernetes",
                VaultAuthMethod::Jwt => "jwt",
            };
            data.extend([
                ("NATTER_SECRETS_SOURCE".into(), "vault".into()),
                ("VAULT_ADDR".into(), vault.address.clone()),
                ("NATTER_VAULT_AUTH_METHOD".into(), method.into()),
                ("NATTER_VAULT_ROLE".into(), vault.role.clone()),
                ("NATTER_VAULT_KV_MOUNT".into(), vault.kv_mount.clone()),
                ("NATTER_VAULT_KV_PATH".into(), vault.kv_path.clone()),
                (
                    "NATTER_VAULT_TOKEN_FILE".into(),
                    format!("{VAULT_TOKEN_DIR}/token"),
                ),
            ]);
            if let Some(mount) = &vault.auth_mount {
                data.insert("NATTER_VAULT_AUTH_MOUNT".into(), mount.clone());
            }
        }
        None => {
            data.insert("NATTER_SECRETS_SOURCE".into(), "env".into());
        }
    }
    for (source, key) in [(&spec.database, "DATABASE"), (&spec.redis, "REDIS")] {
        if let Some(path) = &source.vault_path {
            data.insert(format!("NATTER_VAULT_{key}_PATH"), path.clone());
        }
    }
    data
}

/// A fingerprint of the settings, put on pod templates so a change rolls the pods.
pub fn settings_hash(cluster: &ChatCluster) -> String {
    let text = serde_json::to_string(&settings(cluster)).expect("settings serialise");
    let digest = Sha256::digest(text.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// `NATTER_JWT_KEYS` and `NATTER_COOKIE_KEY` for an installation without Vault: created
/// once, never replaced (rotation is `natter rotate-keys` against Vault, or editing it).
pub fn generated_secrets(cluster: &ChatCluster) -> Secret {
    let fresh = natter_core::secrets::Secrets::generate();
    let keys = serde_json::to_string(&fresh.jwt_keys).expect("key set serialises");
    typed(json!({
        "metadata": metadata(cluster, &secrets_name(cluster), labels(cluster, None, None)),
        "type": "Opaque",
        "stringData": {
            "NATTER_JWT_KEYS": keys,
            "NATTER_COOKIE_KEY": fresh.cookie_keys.current.expose(),
        },
    }))
}

/// A component's Service: headless, so gRPC clients see and balance across every pod.
pub fn service(cluster: &ChatCluster, component: Component) -> Service {
    let mut ports = vec![
        json!({"name": "http", "port": HTTP_PORT, "targetPort": "http", "appProtocol": "http"}),
    ];
    if component.serves_grpc() {
        ports.push(json!({"name": "grpc", "port": GRPC_PORT, "targetPort": "grpc", "appProtocol": "kubernetes.io/h2c"}));
    }
    let name = component_name(cluster, component);
    typed(json!({
        "metadata": metadata(cluster, &name, labels(cluster, Some(component), None)),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": false,
            "selector": selector(cluster, component),
            "ports": ports,
        },
    }))
}

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
pub fn migration_job(cluster: &ChatCluster, version: &str) -> Job {
    let mut pod = pod_spec(cluster, &["migrate"], version, None);
    pod["restartPolicy"] = json!("Never");
    typed(json!({
        "metadata": metadata(cluster, &migration_job_name(cluster, version), labels(cluster, None, Some(version))),
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

/// `<cluster>-migrate-<hash of version>` (a tag may not fit a name as it is).
pub fn migration_job_name(cluster: &ChatCluster, version: &str) -> String {
    let digest = Sha256::digest(version.as_bytes());
    let hash: String = digest[..5].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-migrate-{hash}", cluster.name_any())
}

/// The Ingress: `/` frontend, `/api` website, `/api/v1/auth` and `/.well-known` auth,
/// `/ws` chat with timeouts long enough for idle WebSockets.
pub fn ingress(cluster: &ChatCluster) -> Ingress {
    let spec = &cluster.spec.ingress;
    let route = |path: &str, component: Component| {
        json!({"path": path, "pathType": "Prefix", "backend": {"service": {
            "name": component_name(cluster, component), "port": {"name": "http"}}}})
    };
    let paths = vec![
        route("/api/v1/auth", Component::Auth),
        route("/.well-known", Component::Auth),
        route("/api", Component::Website),
        route("/ws", Component::Chat),
        route("/", Component::Frontend),
    ];
    let mut annotations = BTreeMap::from([
        (
            "nginx.ingress.kubernetes.io/proxy-read-timeout".to_owned(),
            "3600".to_owned(),
        ),
        (
            "nginx.ingress.kubernetes.io/proxy-send-timeout".into(),
            "3600".into(),
        ),
        (
            "nginx.ingress.kubernetes.io/proxy-body-size".into(),
            "1m".into(),
        ),
    ]);
    annotations.extend(spec.annotations.clone());
    let mut meta = metadata(cluster, &cluster.name_any(), labels(cluster, None, None));
    meta["annotations"] = json!(annotations);
    let mut rule = json!({"http": {"paths": paths}});
    if let Some(host) = &spec.host {
        rule["host"] = json!(host);
    }
    let mut body = json!({"rules": [rule]});
    if let Some(class) = &spec.class_name {
        body["ingressClassName"] = json!(class);
    }
    if let (Some(secret), Some(host)) = (&spec.tls_secret_name, &spec.host) {
        body["tls"] = json!([{"hosts": [host], "secretName": secret}]);
    }
    typed(json!({"metadata": meta, "spec": body}))
}

/// Where users reach the installation, when the Ingress names a host.
pub fn url(cluster: &ChatCluster) -> Option<String> {
    let spec = &cluster.spec.ingress;
    let host = spec.host.as_ref().filter(|_| spec.enabled)?;
    let scheme = if spec.tls_secret_name.is_some() {
        "https"
    } else {
        "http"
    };
    Some(format!("{scheme}://{host}/"))
}

/// A component's CPU autoscaler, when its spec asks for one.
pub fn autoscaler(cluster: &ChatCluster, component: Component) -> Option<HorizontalPodAutoscaler> {
    let scaling = component.spec(cluster).autoscaling.as_ref()?;
    let name = component_name(cluster, component);
    Some(typed(json!({
        "metadata": metadata(cluster, &name, labels(cluster, Some(component), None)),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                "type": "Utilization", "averageUtilization": scaling.target_cpu_utilization_percentage}}}],
        },
    })))
}

/// A component's disruption budget, when it runs more than one pod.
pub fn disruption_budget(
    cluster: &ChatCluster,
    component: Component,
) -> Option<PodDisruptionBudget> {
    let own = component.spec(cluster);
    let pods = own
        .autoscaling
        .as_ref()
        .map_or(own.replicas, |a| a.min_replicas);
    if pods <= 1 {
        return None;
    }
    let name = component_name(cluster, component);
    Some(typed(json!({
        "metadata": metadata(cluster, &name, labels(cluster, Some(component), None)),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(cluster, component)}},
    })))
}

/// The resource's kind and name, for messages.
pub fn describe<K: Resource<DynamicType = ()>>(object: &K) -> String {
    format!(
        "{}/{}",
        K::kind(&()),
        object.meta().name.as_deref().unwrap_or("?")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster() -> ChatCluster {
        serde_json::from_value(json!({
            "apiVersion": "natter.dev/v1alpha1", "kind": "ChatCluster",
            "metadata": {"name": "demo", "namespace": "natter", "uid": "u-1"},
            "spec": {
                "image": {"tag": "1.2.3"},
                "database": {"secretRef": {"name": "db", "key": "url"}},
                "redis": {"secretRef": {"name": "redis", "key": "url"}},
            },
        }))
        .unwrap()
    }

    #[test]
    fn pods_are_locked_down_and_probed() {
        let deployment =
            serde_json::to_value(deployment(&cluster(), Component::Chat, "1.2.3")).unwrap();
        let pod = &deployment["spec"]["template"]["spec"];
        let container = &pod["containers"][0];
        assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(
            container["securityContext"]["allowPrivilegeEscalation"],
            false
        );
        assert_eq!(
            container["securityContext"]["capabilities"]["drop"],
            json!(["ALL"])
        );
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
        assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
        assert_eq!(pod["terminationGracePeriodSeconds"], 45);
        assert_eq!(container["args"], json!(["chat"]));
        assert_eq!(
            deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/scrape"],
            "true"
        );
        let env = container["env"].as_array().unwrap();
        assert!(env.iter().any(|e| e["name"] == "NATTER_DATABASE_URL"
            && e["valueFrom"]["secretKeyRef"]["name"] == "db"));
    }

    #[test]
    fn services_are_headless_and_the_ingress_routes_by_path() {
        let service = serde_json::to_value(service(&cluster(), Component::Auth)).unwrap();
        assert_eq!(service["spec"]["clusterIP"], "None");
        let mut with_ingress = cluster();
        with_ingress.spec.ingress.enabled = true;
        let ingress = serde_json::to_value(ingress(&with_ingress)).unwrap();
        let paths: Vec<(String, String)> = ingress["spec"]["rules"][0]["http"]["paths"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["path"].as_str().unwrap().into(),
                    p["backend"]["service"]["name"].as_str().unwrap().into(),
                )
            })
            .collect();
        assert!(paths.contains(&("/ws".into(), "demo-chat".into())));
        assert!(paths.contains(&("/api".into(), "demo-website".into())));
        assert!(paths.contains(&("/api/v1/auth".into(), "demo-auth".into())));
        assert!(paths.contains(&("/".into(), "demo-frontend".into())));
        let timeout =
            &ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-read-timeout"];
        assert_eq!(timeout, "3600");
    }

    #[test]
    fn autoscaling_drops_fixed_replicas_and_single_pods_get_no_budget() {
        let mut scaled = cluster();
        scaled.spec.website.autoscaling = Some(crate::crd::AutoscalingSpec {
            min_replicas: 2,
            max_replicas: 6,
            target_cpu_utilization_percentage: 70,
        });
        scaled.spec.auth.replicas = 1;
        let website = serde_json::to_value(deployment(&scaled, Component::Website, "1")).unwrap();
        assert!(website["spec"].get("replicas").is_none());
        assert!(autoscaler(&scaled, Component::Website).is_some());
        assert!(autoscaler(&scaled, Component::Auth).is_none());
        assert!(disruption_budget(&scaled, Component::Auth).is_none());
        assert!(disruption_budget(&scaled, Component::Website).is_some());
    }
}
