//! Unit checks of the children the operator builds.

use serde_json::json;

use super::*;
use crate::crd::ChatCluster;

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
    assert!(
        env.iter().any(|e| e["name"] == "NATTER_DATABASE_URL"
            && e["valueFrom"]["secretKeyRef"]["name"] == "db")
    );
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

#[test]
fn leased_database_credentials_are_configured_from_the_vault_spec() {
    let mut cluster = cluster();
    cluster.spec.vault = Some(
        serde_json::from_value(json!({
            "address": "https://vault:8200", "role": "natter",
            "databaseRole": "natter-app", "databaseMount": "pg",
        }))
        .unwrap(),
    );
    let data = settings::settings(&cluster);
    assert_eq!(data["NATTER_VAULT_DATABASE_ROLE"], "natter-app");
    assert_eq!(data["NATTER_VAULT_DATABASE_MOUNT"], "pg");
    assert!(crate::validate::problems(&cluster).is_empty());
    cluster.spec.database = serde_json::from_value(json!({"vaultPath": "natter/db"})).unwrap();
    let problems = crate::validate::problems(&cluster);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("databaseRole needs database.secretRef")),
        "{problems:?}"
    );
}

#[test]
fn notifications_reach_the_website_and_only_it_gets_smtp_credentials() {
    let mut cluster = cluster();
    cluster.spec.ingress = serde_json::from_value(json!({
        "enabled": true, "host": "chat.example.com", "tlsSecretName": "tls",
    }))
    .unwrap();
    cluster.spec.notifications = serde_json::from_value(json!({
        "push": {"contact": "mailto:ops@example.com"},
        "email": {
            "smtp": {"secretRef": {"name": "smtp", "key": "url"}},
            "from": "Natter <natter@example.com>",
            "delayMinutes": 30,
        },
    }))
    .unwrap();
    assert!(crate::validate::problems(&cluster).is_empty());
    let data = settings::settings(&cluster);
    assert_eq!(data["NATTER_NOTIFY_PUSH_ENABLED"], "true");
    assert_eq!(data["NATTER_NOTIFY_PUSH_CONTACT"], "mailto:ops@example.com");
    assert_eq!(data["NATTER_NOTIFY_EMAIL_ENABLED"], "true");
    assert_eq!(data["NATTER_NOTIFY_EMAIL_DELAY_SECS"], "1800");
    assert_eq!(data["NATTER_NOTIFY_PUBLIC_URL"], "https://chat.example.com");
    assert!(
        !data.contains_key("NATTER_NOTIFY_SMTP_URL"),
        "not in the ConfigMap"
    );
    let env_of = |component| {
        let deployment = serde_json::to_value(deployment(&cluster, component, "1.2.3")).unwrap();
        deployment["spec"]["template"]["spec"]["containers"][0].clone()
    };
    let website = env_of(Component::Website);
    let smtp = (website["env"].as_array().unwrap().iter())
        .find(|e| e["name"] == "NATTER_NOTIFY_SMTP_URL")
        .expect("the website reads the SMTP URL from its Secret");
    assert_eq!(smtp["valueFrom"]["secretKeyRef"]["name"], "smtp");
    let vapid = (website["envFrom"].as_array().unwrap().iter())
        .any(|e| e["secretRef"]["name"] == "demo-vapid" && e["secretRef"]["optional"] == true);
    assert!(vapid, "the generated VAPID key: {website}");
    let chat = env_of(Component::Chat);
    assert!(!chat.to_string().contains("NATTER_NOTIFY_SMTP_URL"));
    assert!(!chat.to_string().contains("demo-vapid"));

    let mut bad = cluster.clone();
    let email = bad.spec.notifications.email.as_mut().unwrap();
    email.from = "not an address".into();
    email.smtp = serde_json::from_value(json!({"vaultPath": "natter/smtp"})).unwrap();
    let problems = crate::validate::problems(&bad);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("notifications.email.from"))
            && problems
                .iter()
                .any(|p| p.contains("notifications.email.smtp.vaultPath needs spec.vault")),
        "{problems:?}"
    );
}
