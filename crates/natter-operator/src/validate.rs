//! Checks of a ChatCluster spec that its schema cannot express; a failure becomes a
//! Degraded condition and an Event, never a crash loop.

use crate::crd::ChatCluster;
use crate::resources::Component;

/// Every problem found, as sentences for the condition message.
pub fn problems(cluster: &ChatCluster) -> Vec<String> {
    let spec = &cluster.spec;
    let mut found = Vec::new();
    for component in Component::ALL {
        if let Some(scaling) = &component.spec(cluster).autoscaling
            && scaling.min_replicas > scaling.max_replicas
        {
            found.push(format!(
                "{}.autoscaling: minReplicas ({}) is above maxReplicas ({})",
                component.name(),
                scaling.min_replicas,
                scaling.max_replicas
            ));
        }
    }
    let email = spec.notifications.email.as_ref();
    let smtp = email.map(|e| ("notifications.email.smtp", &e.smtp));
    let sources = [("database", &spec.database), ("redis", &spec.redis)];
    for (name, source) in sources.into_iter().chain(smtp) {
        match (&source.secret_ref, &source.vault_path) {
            (Some(_), Some(_)) | (None, None) => {
                found.push(format!(
                    "{name}: set exactly one of secretRef and vaultPath"
                ));
            }
            (None, Some(_)) if spec.vault.is_none() => {
                found.push(format!("{name}.vaultPath needs spec.vault"));
            }
            _ => {}
        }
    }
    let leased = spec
        .vault
        .as_ref()
        .is_some_and(|v| v.database_role.is_some());
    if leased && spec.database.secret_ref.is_none() {
        found.push(
            "vault.databaseRole needs database.secretRef (the URL the leased credentials go into)"
                .into(),
        );
    }
    if let Some(email) = email {
        if email.from.parse::<lettre::message::Mailbox>().is_err() {
            found.push(format!(
                "notifications.email.from: `{}` is not an email address",
                email.from
            ));
        }
        if email.public_url.is_none() && spec.ingress.host.is_none() {
            found.push(
                "notifications.email needs publicUrl or ingress.host (digests link to it)".into(),
            );
        }
    }
    let ingress = &spec.ingress;
    if ingress.tls_secret_name.is_some() && ingress.host.is_none() {
        found.push("ingress.tlsSecretName needs ingress.host".into());
    }
    found
}
