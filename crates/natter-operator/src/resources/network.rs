//! How the components are reached: headless Services and the Ingress.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use kube::ResourceExt;
use serde_json::json;

use super::{Component, GRPC_PORT, HTTP_PORT, component_name, labels, metadata, selector, typed};
use crate::crd::ChatCluster;

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
