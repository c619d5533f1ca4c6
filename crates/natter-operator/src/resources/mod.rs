//! The children of a ChatCluster, built from its spec: pure functions from the resource to
//! the objects the controller applies (no API calls here, so tests can look at them).

mod network;
mod scaling;
mod settings;
#[cfg(test)]
mod tests;
mod workload;

use std::collections::BTreeMap;

use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

pub use network::{ingress, service, url};
pub use scaling::{autoscaler, disruption_budget};
pub use settings::{
    config_map, generated_secrets, generated_vapid_secret, secrets_name, service_account,
    settings_hash,
};
pub use workload::{deployment, migration_job, migration_job_name};

use crate::crd::{ChatCluster, ComponentSpec};

/// HTTP port of every component (API, WebSocket, health, metrics).
pub const HTTP_PORT: i32 = 8080;
/// gRPC port of auth, website and chat.
pub const GRPC_PORT: i32 = 50051;
/// Where the projected service-account token for Vault's jwt method is mounted.
pub(super) const VAULT_TOKEN_DIR: &str = "/var/run/secrets/natter/vault";

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

pub(super) fn labels(
    cluster: &ChatCluster,
    component: Option<Component>,
    version: Option<&str>,
) -> Value {
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
pub(super) fn metadata(cluster: &ChatCluster, name: &str, labels: Value) -> Value {
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

pub(super) fn typed<T: DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("the operator builds well-formed objects")
}

/// Every child the operator applies for `cluster` once `version` runs, as one YAML stream
/// (`natter render`: see what the operator would create, validate it offline).
pub fn render_all(cluster: &ChatCluster, version: &str) -> String {
    fn doc<T: serde::Serialize>(out: &mut String, object: &T) {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(object).expect("objects serialise"));
    }
    let mut out = String::new();
    doc(&mut out, &service_account(cluster));
    doc(&mut out, &config_map(cluster));
    if cluster.spec.vault.is_none() {
        doc(&mut out, &generated_secrets(cluster));
        doc(&mut out, &generated_vapid_secret(cluster));
    }
    doc(&mut out, &migration_job(cluster, version, 1));
    for component in Component::ALL {
        doc(&mut out, &service(cluster, component));
        doc(&mut out, &deployment(cluster, component, version));
        if let Some(hpa) = autoscaler(cluster, component) {
            doc(&mut out, &hpa);
        }
        if let Some(pdb) = disruption_budget(cluster, component) {
            doc(&mut out, &pdb);
        }
    }
    if cluster.spec.ingress.enabled {
        doc(&mut out, &ingress(cluster));
    }
    out
}
