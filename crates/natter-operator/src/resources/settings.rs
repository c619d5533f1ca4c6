//! Identity and settings shared by every pod: the ServiceAccount, the ConfigMap of
//! NATTER_* variables, and the generated signing and cookie keys without Vault.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use kube::ResourceExt;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{
    Component, GRPC_PORT, HTTP_PORT, VAULT_TOKEN_DIR, component_name, labels, metadata, typed,
};
use crate::crd::{ChatCluster, VaultAuthMethod};

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

pub(super) fn config_map_name(cluster: &ChatCluster) -> String {
    format!("{}-config", cluster.name_any())
}

/// The generated secrets of an installation without Vault.
pub fn secrets_name(cluster: &ChatCluster) -> String {
    format!("{}-secrets", cluster.name_any())
}

pub(super) fn settings(cluster: &ChatCluster) -> BTreeMap<String, String> {
    let spec = &cluster.spec;
    let auth = format!(
        "http://{}:{GRPC_PORT}",
        component_name(cluster, Component::Auth)
    );
    let website = format!(
        "http://{}:{GRPC_PORT}",
        component_name(cluster, Component::Website)
    );
    let mut data = BTreeMap::from([
        (
            "NATTER_HTTP_ADDR".to_owned(),
            format!("0.0.0.0:{HTTP_PORT}"),
        ),
        ("NATTER_GRPC_ADDR".into(), format!("0.0.0.0:{GRPC_PORT}")),
        ("NATTER_AUTH_GRPC_URL".into(), auth),
        ("NATTER_WEBSITE_GRPC_URL".into(), website),
        (
            "NATTER_FRONTEND_SECURE_COOKIES".into(),
            spec.ingress.tls_secret_name.is_some().to_string(),
        ),
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
            if let Some(role) = &vault.database_role {
                data.insert("NATTER_VAULT_DATABASE_ROLE".into(), role.clone());
            }
            if let Some(mount) = &vault.database_mount {
                data.insert("NATTER_VAULT_DATABASE_MOUNT".into(), mount.clone());
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
    data.extend(notifications(cluster));
    data
}

/// `notify.*`: pushes on or off and their contact; email digests when configured (the
/// SMTP URL itself comes from its Secret, or from Vault, never through the ConfigMap
/// unless it carries no credentials).
fn notifications(cluster: &ChatCluster) -> Vec<(String, String)> {
    let spec = &cluster.spec.notifications;
    let mut data = vec![(
        "NATTER_NOTIFY_PUSH_ENABLED".to_owned(),
        spec.push.enabled.to_string(),
    )];
    if let Some(contact) = &spec.push.contact {
        data.push(("NATTER_NOTIFY_PUSH_CONTACT".into(), contact.clone()));
    }
    let Some(email) = &spec.email else {
        return data;
    };
    let ingress = &cluster.spec.ingress;
    let public_url = email.public_url.clone().or_else(|| {
        let scheme = if ingress.tls_secret_name.is_some() {
            "https"
        } else {
            "http"
        };
        ingress
            .host
            .as_ref()
            .map(|host| format!("{scheme}://{host}"))
    });
    data.extend([
        ("NATTER_NOTIFY_EMAIL_ENABLED".into(), "true".into()),
        ("NATTER_NOTIFY_EMAIL_FROM".into(), email.from.clone()),
        (
            "NATTER_NOTIFY_EMAIL_DELAY_SECS".into(),
            (u64::from(email.delay_minutes) * 60).to_string(),
        ),
    ]);
    data.extend(public_url.map(|url| ("NATTER_NOTIFY_PUBLIC_URL".into(), url)));
    data.extend(
        email
            .url
            .clone()
            .map(|url| ("NATTER_NOTIFY_SMTP_URL".into(), url)),
    );
    data.extend(
        (email.smtp.vault_path.clone()).map(|path| ("NATTER_VAULT_SMTP_PATH".into(), path)),
    );
    data
}

/// A fingerprint of the settings, put on pod templates so a change rolls the pods.
pub fn settings_hash(cluster: &ChatCluster) -> String {
    let text = serde_json::to_string(&settings(cluster)).expect("settings serialise");
    let digest = Sha256::digest(text.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The generated Web Push key of an installation without Vault.
pub fn vapid_secret_name(cluster: &ChatCluster) -> String {
    format!("{}-vapid", cluster.name_any())
}

/// `NATTER_VAPID_KEY` for an installation without Vault: created once (a Secret of its
/// own, so installations from before Web Push get one too), never replaced — browsers'
/// subscriptions are bound to it.
pub fn generated_vapid_secret(cluster: &ChatCluster) -> Secret {
    let key = natter_core::push::VapidKey::generate();
    let name = vapid_secret_name(cluster);
    typed(json!({
        "metadata": metadata(cluster, &name, labels(cluster, None, None)),
        "type": "Opaque",
        "stringData": {"NATTER_VAPID_KEY": key.private_key()},
    }))
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
