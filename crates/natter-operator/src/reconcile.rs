//! One reconcile of a ChatCluster: apply its children with server-side apply, gate a
//! version change on the migration Job, and report status and Events on transitions.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{Job, JobCondition};
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::crd::{ChatCluster, ChatClusterStatus, ComponentStatus, MigrationStatus};
use crate::metrics::Metrics;
use crate::resources::{self, Component};
use crate::status::{self, Migration, Observed};
use crate::validate;

/// The field manager of every server-side apply.
pub const MANAGER: &str = "natter-operator";
/// Requeue while something is moving.
const BUSY: Duration = Duration::from_secs(10);
/// Requeue when all is well (drift is also caught by the watches).
const IDLE: Duration = Duration::from_secs(300);

/// What every reconcile shares.
#[derive(Clone)]
pub struct Context {
    /// The API client.
    pub client: Client,
    /// Publishes Events.
    pub recorder: Recorder,
    /// Reconcile counters.
    pub metrics: Metrics,
    /// Consecutive failures per cluster, for the error backoff.
    failures: Arc<Mutex<BTreeMap<String, u32>>>,
}

impl Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").finish_non_exhaustive()
    }
}

/// A reconcile failure; it is retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server refused or failed a call.
    #[error("{what}: {source}")]
    Kube {
        /// Which call.
        what: String,
        /// The client error.
        source: kube::Error,
    },
}

impl Context {
    /// A context over `client`.
    pub fn new(client: Client, recorder: Recorder, metrics: Metrics) -> Self {
        Self {
            client,
            recorder,
            metrics,
            failures: Arc::default(),
        }
    }
}

/// Reconciles one ChatCluster.
#[tracing::instrument(name = "reconcile", skip_all, fields(k8s.namespace.name = cluster.namespace(), chatcluster = %cluster.name_any()))]
pub async fn reconcile(cluster: Arc<ChatCluster>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let result = reconcile_inner(&cluster, &ctx).await;
    ctx.metrics.observe(started.elapsed(), result.is_ok());
    if result.is_ok() {
        ctx.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key(&cluster));
    }
    result
}

/// After a failed reconcile: requeue with exponential backoff (5 s doubling to 5 min).
pub fn error_policy(cluster: Arc<ChatCluster>, error: &Error, ctx: Arc<Context>) -> Action {
    let mut failures = ctx.failures.lock().unwrap_or_else(|e| e.into_inner());
    let count = failures.entry(key(&cluster)).or_insert(0);
    *count += 1;
    let delay = Duration::from_secs(5 << (*count - 1).min(6)).min(IDLE);
    tracing::warn!(cluster = %key(&cluster), %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

fn key(cluster: &ChatCluster) -> String {
    format!(
        "{}/{}",
        cluster.namespace().unwrap_or_default(),
        cluster.name_any()
    )
}

async fn reconcile_inner(cluster: &ChatCluster, ctx: &Context) -> Result<Action, Error> {
    let ns = cluster.namespace().unwrap_or_else(|| "default".into());
    let kube = Kube {
        client: &ctx.client,
        ns: &ns,
    };
    let previous = cluster.status.as_ref();
    let invalid = validate::problems(cluster);
    let mut observed = Observed {
        generation: cluster.metadata.generation,
        invalid: invalid.clone(),
        blocked: Vec::new(),
        migration: Migration::NotStarted,
        attempt: None,
        version: previous.and_then(|s| s.current_version.clone()),
        desired_version: cluster.spec.image.tag.clone(),
        components: previous.map(|s| s.components.clone()).unwrap_or_default(),
        url: resources::url(cluster),
    };
    if invalid.is_empty() {
        apply_shared(cluster, &kube).await?;
        let plan = version_to_run(cluster, &kube).await?;
        observed.migration = plan.migration;
        observed.attempt = plan.attempt;
        observed.version = plan.version.clone();
        if let Some(version) = plan.version {
            observed.components = apply_components(cluster, &kube, &version).await?;
        }
        observed.blocked = blocked_pods(cluster, &kube).await?;
    }
    let next = status::status(previous, &observed, Time(Timestamp::now()));
    report(cluster, ctx, &kube, previous, &next).await?;
    let settled = next
        .conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    Ok(Action::requeue(if settled || !invalid.is_empty() {
        IDLE
    } else {
        BUSY
    }))
}

/// Children that do not depend on the version: identity, settings, secrets, Services and
/// the Ingress.
async fn apply_shared(cluster: &ChatCluster, kube: &Kube<'_>) -> Result<(), Error> {
    kube.apply(&resources::service_account(cluster)).await?;
    kube.apply(&resources::config_map(cluster)).await?;
    if cluster.spec.vault.is_none() {
        kube.create_once(&resources::generated_secrets(cluster))
            .await?;
        kube.create_once(&resources::generated_vapid_secret(cluster))
            .await?;
    }
    for component in Component::ALL {
        kube.apply(&resources::service(cluster, component)).await?;
    }
    match cluster.spec.ingress.enabled {
        true => kube.apply(&resources::ingress(cluster)).await.map(drop),
        false => kube.remove::<Ingress>(&cluster.name_any()).await,
    }
}

/// What the Deployments should run and where the migration to the desired version stands.
struct Plan {
    version: Option<String>,
    migration: Migration,
    attempt: Option<MigrationStatus>,
}

/// The version the Deployments should run: the desired one once its migrations succeeded
/// (or when migrations are not managed), else the current one. A failed migration Job is
/// retried by a new Job (the next attempt) once it has been failed for the backoff, or at
/// once when the spec changed since the attempt began.
async fn version_to_run(cluster: &ChatCluster, kube: &Kube<'_>) -> Result<Plan, Error> {
    let desired = cluster.spec.image.tag.clone();
    let previous = cluster.status.as_ref();
    let current = previous.and_then(|s| s.current_version.clone());
    let last_attempt = previous.and_then(|s| s.migration.clone());
    if !cluster.spec.migrations.run_on_version_change {
        return Ok(Plan {
            version: Some(desired),
            migration: Migration::NotManaged,
            attempt: last_attempt,
        });
    }
    if current.as_deref() == Some(desired.as_str()) {
        return Ok(Plan {
            version: current,
            migration: Migration::Done,
            attempt: last_attempt,
        });
    }
    let generation = cluster.metadata.generation.unwrap_or(0);
    let mut attempt = last_attempt
        .filter(|m| m.version == desired)
        .unwrap_or(MigrationStatus {
            version: desired.clone(),
            attempt: 1,
            generation,
        });
    let job = kube.job(cluster, &attempt).await?;
    let status = job.status.unwrap_or_default();
    let migration = if status.succeeded.unwrap_or(0) > 0 {
        Migration::Done
    } else if let Some(failed) = failed_condition(status.conditions) {
        let since = failed
            .last_transition_time
            .map_or_else(Timestamp::now, |t| t.0);
        let retry_at = since + retry_backoff(attempt.attempt);
        if generation != attempt.generation || Timestamp::now() >= retry_at {
            attempt = MigrationStatus {
                attempt: attempt.attempt + 1,
                generation,
                ..attempt
            };
            kube.job(cluster, &attempt).await?;
            Migration::Running(attempt.attempt)
        } else {
            Migration::Failed(format!(
                "migration Job {} failed ({}): {}; {} keeps running; attempt {} at {} (or at once when the spec changes)",
                job.metadata.name.unwrap_or_default(),
                failed.reason.unwrap_or_default(),
                failed.message.unwrap_or_default(),
                current.as_deref().unwrap_or("nothing"),
                attempt.attempt + 1,
                retry_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            ))
        }
    } else {
        Migration::Running(attempt.attempt)
    };
    let version = match migration {
        Migration::Done => Some(desired),
        _ => current,
    };
    Ok(Plan {
        version,
        migration,
        attempt: Some(attempt),
    })
}

/// The Job's `Failed=True` condition, if it failed.
fn failed_condition(conditions: Option<Vec<JobCondition>>) -> Option<JobCondition> {
    conditions
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Failed" && c.status == "True")
}

/// How long a failed migration attempt waits before the next: 30 s doubling, at most
/// 10 minutes.
pub fn retry_backoff(attempt: u32) -> SignedDuration {
    let seconds = 30_i64 << attempt.saturating_sub(1).min(5);
    SignedDuration::from_secs(seconds.min(600))
}

/// Waiting reasons of a container that will not start by itself.
const BLOCKING: [&str; 6] = [
    "CreateContainerConfigError",
    "CreateContainerError",
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CrashLoopBackOff",
];

/// The installation's pods (migration Jobs' included) whose containers cannot start, with
/// the kubelet's reason and message (e.g. `secret "natter-db" not found`), at most five.
async fn blocked_pods(cluster: &ChatCluster, kube: &Kube<'_>) -> Result<Vec<String>, Error> {
    let selector = format!(
        "app.kubernetes.io/name=natter,app.kubernetes.io/instance={}",
        cluster.name_any()
    );
    let pods = kube
        .api::<Pod>()
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(kube.fail::<Pod>("list", &selector))?;
    let mut blocked: Vec<String> = pods
        .items
        .iter()
        .flat_map(|pod| {
            let status = pod.status.clone().unwrap_or_default();
            let containers = status.init_container_statuses.into_iter().flatten();
            let containers = containers.chain(status.container_statuses.into_iter().flatten());
            let name = pod.name_any();
            containers.filter_map(move |c| {
                let waiting = c.state?.waiting?;
                let reason = waiting.reason.filter(|r| BLOCKING.contains(&r.as_str()))?;
                let message = waiting.message.unwrap_or_default();
                Some(format!("pod {name}: {reason}: {message}"))
            })
        })
        .collect();
    blocked.sort();
    blocked.truncate(5);
    Ok(blocked)
}

/// Deployments at `version`, with their autoscalers and disruption budgets.
async fn apply_components(
    cluster: &ChatCluster,
    kube: &Kube<'_>,
    version: &str,
) -> Result<BTreeMap<String, ComponentStatus>, Error> {
    let mut components = BTreeMap::new();
    for component in Component::ALL {
        let name = resources::component_name(cluster, component);
        let applied = kube
            .apply(&resources::deployment(cluster, component, version))
            .await?;
        match resources::autoscaler(cluster, component) {
            Some(hpa) => kube.apply(&hpa).await.map(drop)?,
            None => kube.remove::<HorizontalPodAutoscaler>(&name).await?,
        }
        match resources::disruption_budget(cluster, component) {
            Some(pdb) => kube.apply(&pdb).await.map(drop)?,
            None => kube.remove::<PodDisruptionBudget>(&name).await?,
        }
        components.insert(component.name().to_owned(), replicas(&applied));
    }
    Ok(components)
}

/// Where the Deployment's rollout stands: it is rolled out when its controller observed
/// the latest generation and runs exactly the wanted pods, all updated and available
/// (what `kubectl rollout status` waits for; old pods still running do not count).
fn replicas(deployment: &Deployment) -> ComponentStatus {
    let desired = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let status = deployment.status.clone().unwrap_or_default();
    let observed =
        status.observed_generation.unwrap_or(0) >= deployment.metadata.generation.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    let running = status.replicas.unwrap_or(0);
    ComponentStatus {
        ready_replicas: available.min(updated),
        desired_replicas: desired,
        replicas: running,
        rolled_out: observed && updated == desired && running == desired && available == desired,
    }
}

/// Writes the status when it changed and publishes an Event per condition transition.
async fn report(
    cluster: &ChatCluster,
    ctx: &Context,
    kube: &Kube<'_>,
    previous: Option<&ChatClusterStatus>,
    next: &ChatClusterStatus,
) -> Result<(), Error> {
    if previous == Some(next) {
        return Ok(());
    }
    let api: Api<ChatCluster> = Api::namespaced(kube.client.clone(), kube.ns);
    api.patch_status(
        &cluster.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({"status": next})),
    )
    .await
    .map_err(|source| Error::Kube {
        what: format!("status of {}", key(cluster)),
        source,
    })?;
    publish_events(cluster, ctx, previous, next).await;
    Ok(())
}

/// One Event per reason among the conditions that changed: the reason is the
/// condition's (`MigrationFailed`, `InvalidSpec`, …), the note says which conditions
/// moved and why. Events about a migration are related to its Job, so each attempt
/// gets Events of its own (the recorder merges Events by reason and related object,
/// keeping the first note).
async fn publish_events(
    cluster: &ChatCluster,
    ctx: &Context,
    previous: Option<&ChatClusterStatus>,
    next: &ChatClusterStatus,
) {
    let mut by_reason: BTreeMap<String, (Vec<String>, String)> = BTreeMap::new();
    for (kind, status, reason, message) in status::transitions(previous, next) {
        let entry = by_reason
            .entry(reason)
            .or_insert_with(|| (Vec::new(), message));
        entry.0.push(format!("{kind}={status}"));
    }
    for (reason, (conditions, message)) in by_reason {
        let trouble = matches!(
            reason.as_str(),
            "InvalidSpec" | "MigrationFailed" | "PodsBlocked"
        );
        let job = next
            .migration
            .as_ref()
            .filter(|_| reason.starts_with("Migrat"))
            .map(|attempt| job_reference(cluster, attempt));
        let event = Event {
            type_: if trouble {
                EventType::Warning
            } else {
                EventType::Normal
            },
            note: Some(format!("{}: {message}", conditions.join(", "))),
            reason,
            action: "Reconcile".into(),
            secondary: job,
        };
        if let Err(error) = ctx.recorder.publish(&event, &cluster.object_ref(&())).await {
            tracing::warn!(%error, "could not publish an Event");
        }
    }
}

/// A reference to the migration Job of `attempt`.
fn job_reference(cluster: &ChatCluster, attempt: &MigrationStatus) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("Job".into()),
        name: Some(resources::migration_job_name(
            cluster,
            &attempt.version,
            attempt.attempt,
        )),
        namespace: cluster.namespace(),
        ..ObjectReference::default()
    }
}

/// Namespaced API calls with errors that name the object.
struct Kube<'a> {
    client: &'a Client,
    ns: &'a str,
}

trait Child:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
{
}
impl<K> Child for K where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned
{
}

impl Kube<'_> {
    fn api<K: Child>(&self) -> Api<K> {
        Api::namespaced(self.client.clone(), self.ns)
    }

    fn fail<K: Child>(&self, verb: &str, name: &str) -> impl FnOnce(kube::Error) -> Error {
        let what = format!("{verb} {}/{} in {}", K::kind(&()), name, self.ns);
        move |source| Error::Kube { what, source }
    }

    /// Server-side apply under [`MANAGER`], taking fields over from anyone who edited them.
    async fn apply<K: Child>(&self, object: &K) -> Result<K, Error> {
        let name = object.name_any();
        let params = PatchParams::apply(MANAGER).force();
        self.api::<K>()
            .patch(&name, &params, &Patch::Apply(object))
            .await
            .map_err(self.fail::<K>("apply", &name))
    }

    /// Creates `object` unless it exists (generated secrets are never replaced).
    async fn create_once<K: Child>(&self, object: &K) -> Result<(), Error> {
        let name = object.name_any();
        match self.api::<K>().create(&PostParams::default(), object).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
            Err(e) => Err(self.fail::<K>("create", &name)(e)),
        }
    }

    /// The migration Job of `attempt`, created when it does not exist yet.
    async fn job(&self, cluster: &ChatCluster, attempt: &MigrationStatus) -> Result<Job, Error> {
        let name = resources::migration_job_name(cluster, &attempt.version, attempt.attempt);
        match self.get::<Job>(&name).await? {
            Some(job) => Ok(job),
            None => {
                let job = resources::migration_job(cluster, &attempt.version, attempt.attempt);
                self.apply(&job).await
            }
        }
    }

    async fn get<K: Child>(&self, name: &str) -> Result<Option<K>, Error> {
        self.api::<K>()
            .get_opt(name)
            .await
            .map_err(self.fail::<K>("get", name))
    }

    /// Deletes `name` if it exists.
    async fn remove<K: Child>(&self, name: &str) -> Result<(), Error> {
        match self
            .api::<K>()
            .delete(name, &DeleteParams::background())
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(e) => Err(self.fail::<K>("delete", name)(e)),
        }
    }
}
