//! The status a reconcile reports: conditions from what it observed, keeping each
//! condition's transition time while its status holds, so an idle cluster's status is
//! byte-for-byte the same and never rewritten.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::crd::{ChatClusterStatus, ComponentStatus, MigrationStatus};

/// Where the migration of the desired version stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Migration {
    /// Nothing to migrate: the services already run the desired version.
    Done,
    /// Migrations are not managed (`runOnVersionChange: false`).
    NotManaged,
    /// Nothing was run: the spec is invalid.
    NotStarted,
    /// The Job of this attempt is running.
    Running(u32),
    /// The Job failed; the message says why and when the next attempt comes.
    Failed(String),
}

/// What one reconcile saw.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    /// `metadata.generation` of the spec.
    pub generation: Option<i64>,
    /// Problems with the spec (see `validate`).
    pub invalid: Vec<String>,
    /// Pods that cannot start, with why (a missing Secret, an image that cannot be
    /// pulled, a crash loop).
    pub blocked: Vec<String>,
    /// The migration of `desired_version`.
    pub migration: Migration,
    /// The latest migration attempt (of the desired version while it is moved to).
    pub attempt: Option<MigrationStatus>,
    /// The version the Deployments run.
    pub version: Option<String>,
    /// `spec.image.tag`.
    pub desired_version: String,
    /// Ready and desired pods per component.
    pub components: BTreeMap<String, ComponentStatus>,
    /// Where users reach the installation.
    pub url: Option<String>,
}

/// One condition's verdict.
struct Verdict {
    kind: &'static str,
    status: bool,
    reason: &'static str,
    message: String,
}

impl Observed {
    fn all_ready(&self) -> bool {
        !self.components.is_empty() && self.components.values().all(|c| c.rolled_out)
    }

    /// The components still rolling out, each with where it stands.
    fn rolling_out(&self) -> String {
        self.components
            .iter()
            .filter(|(_, c)| !c.rolled_out)
            .map(|(name, c)| {
                format!(
                    "{name} ({} of {} pods updated and available, {} running)",
                    c.ready_replicas, c.desired_replicas, c.replicas
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn verdicts(&self) -> [Verdict; 4] {
        let on_version = self.version.as_deref() == Some(self.desired_version.as_str());
        let failed = match &self.migration {
            Migration::Failed(why) => Some(why.clone()),
            _ => None,
        };
        let invalid = (!self.invalid.is_empty()).then(|| self.invalid.join("; "));
        let ready = invalid.is_none() && on_version && self.all_ready();
        let (ready_reason, ready_message) = match (&invalid, &failed, ready) {
            (Some(why), _, _) => ("InvalidSpec", why.clone()),
            (None, Some(why), _) => ("MigrationFailed", why.clone()),
            (None, None, true) => ("AllReplicasReady", "every component is ready".into()),
            (None, None, false) if !on_version => {
                ("Migrating", format!("moving to {}", self.desired_version))
            }
            (None, None, false) => ("RollingOut", format!("rolling out {}", self.rolling_out())),
        };
        let progressing = invalid.is_none() && failed.is_none() && !ready;
        let blocked = (!self.blocked.is_empty()).then(|| self.blocked.join("; "));
        let (degraded_reason, degraded) = match (&invalid, &failed, &blocked) {
            (Some(why), _, _) => ("InvalidSpec", Some(why)),
            (None, Some(why), _) => ("MigrationFailed", Some(why)),
            (None, None, Some(why)) => ("PodsBlocked", Some(why)),
            (None, None, None) => ("AsExpected", None),
        };
        let desired = &self.desired_version;
        let (migrated, migration_reason, migration_message) = match &self.migration {
            Migration::Done => (true, "Migrated", format!("migrations of {desired} applied")),
            Migration::NotManaged => (true, "NotManaged", "runOnVersionChange is off".into()),
            Migration::NotStarted => (false, "InvalidSpec", "not run: the spec is invalid".into()),
            Migration::Running(attempt) => (
                false,
                "Migrating",
                format!("migrating to {desired} (attempt {attempt})"),
            ),
            Migration::Failed(why) => (false, "MigrationFailed", why.clone()),
        };
        [
            Verdict {
                kind: "Ready",
                status: ready,
                reason: ready_reason,
                message: ready_message.clone(),
            },
            Verdict {
                kind: "Progressing",
                status: progressing,
                reason: if progressing { ready_reason } else { "Stable" },
                message: if progressing {
                    ready_message
                } else {
                    "nothing to do".into()
                },
            },
            Verdict {
                kind: "Degraded",
                status: degraded.is_some(),
                reason: degraded_reason,
                message: degraded.cloned().unwrap_or_else(|| "no problems".into()),
            },
            Verdict {
                kind: "MigrationsApplied",
                status: migrated,
                reason: migration_reason,
                message: migration_message,
            },
        ]
    }
}

/// The status for `observed`, keeping the transition times of `previous` conditions whose
/// status did not change.
pub fn status(
    previous: Option<&ChatClusterStatus>,
    observed: &Observed,
    now: Time,
) -> ChatClusterStatus {
    let old = |kind: &str| previous.and_then(|p| p.conditions.iter().find(|c| c.type_ == kind));
    let conditions = observed
        .verdicts()
        .into_iter()
        .map(|v| {
            let status = if v.status { "True" } else { "False" };
            let since = old(v.kind)
                .filter(|c| c.status == status)
                .map(|c| c.last_transition_time.clone())
                .unwrap_or_else(|| now.clone());
            Condition {
                type_: v.kind.into(),
                status: status.into(),
                reason: v.reason.into(),
                message: v.message,
                last_transition_time: since,
                observed_generation: observed.generation,
            }
        })
        .collect();
    ChatClusterStatus {
        observed_generation: observed.generation,
        conditions,
        components: observed.components.clone(),
        current_version: observed.version.clone(),
        url: observed.url.clone(),
        migration: observed.attempt.clone(),
    }
}

/// Conditions whose status changed from `previous` to `next`: (type, new status, reason,
/// message), for Events.
pub fn transitions(
    previous: Option<&ChatClusterStatus>,
    next: &ChatClusterStatus,
) -> Vec<(String, String, String, String)> {
    next.conditions
        .iter()
        .filter(|c| {
            let before = previous.and_then(|p| p.conditions.iter().find(|o| o.type_ == c.type_));
            before.map(|o| (&o.status, &o.reason)) != Some((&c.status, &c.reason))
        })
        .map(|c| {
            (
                c.type_.clone(),
                c.status.clone(),
                c.reason.clone(),
                c.message.clone(),
            )
        })
        .collect()
}
