//! One reconcile of a ChatCluster: apply its children with server-side apply, gate a
//! version change on the migration Job, and report status and Events on transitions.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::crd::{ChatCluster, ChatClusterStatus, ComponentStatus};
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
        migration: Migration::Done,
        version: previous.and_then(|s| s.current_version.clone()),
        desired_version: cluster.spec.image.tag.clone(),
        components: previous.map(|s| s.components.clone()).unwrap_or_default(),
        url: resources::url(cluster),
    };
    if invalid.is_empty() {
        apply_shared(cluster, &kube).await?;
        let (version, migration) = version_to_run(cluster, &kube).await?;
        observed.migration = migration;
        observed.version = version.clone();
        if let Some(version) = version {
            observed.components = apply_components(cluster, &kube, &version).await?;
        }
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
    }
    for component in Component::ALL {
        kube.apply(&resources::service(cluster, component)).await?;
    }
    match cluster.spec.ingress.enabled {
        true => kube.apply(&resources::ingress(cluster)).await.map(drop),
        false => kube.remove::<Ingress>(&cluster.name_any()).await,
    }
}

/// The version the Deployments should run: the desired one once its migrations succeeded
/// (or when migrations are not managed), else the current one.
async fn version_to_run(
    cluster: &ChatCluster,
    kube: &Kube<'_>,
) -> Result<(Option<String>, Migration), Error> {
    let desired = cluster.spec.image.tag.clone();
    let current = cluster
        .status
        .as_ref()
        .and_then(|s| s.current_version.clone());
    if !cluster.spec.migrations.run_on_version_change {
        return Ok((Some(desired), Migration::NotManaged));
    }
    if current.as_deref() == Some(desired.as_str()) {
        return Ok((current, Migration::Done));
    }
    let name = resources::migration_job_name(cluster, &desired);
    let job = match kube.get::<Job>(&name).await? {
        Some(job) => job,
        None => {
            kube.apply(&resources::migration_job(cluster, &desired))
                .await?
        }
    };
    let status = job.status.unwrap_or_default();
    if status.succeeded.unwrap_or(0) > 0 {
        return Ok((Some(desired), Migration::Done));
    }
    let failed = status
        .conditions
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Failed" && c.status == "True");
    Ok(match failed {
        Some(c) => {
            let why = format!(
                "migration Job {name} failed ({}): {}; {} keeps running",
                c.reason.unwrap_or_default(),
                c.message.unwrap_or_default(),
                current.as_deref().unwrap_or("nothing")
            );
            (current, Migration::Failed(why))
        }
        None => (current, Migration::Running),
    })
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

/// Ready pods of the Deployment's current revision, and pods wanted.
fn replicas(deployment: &Deployment) -> ComponentStatus {
    let desired = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let status = deployment.status.clone().unwrap_or_default();
    let ready = status
        .ready_replicas
        .unwrap_or(0)
        .min(status.updated_replicas.unwrap_or(0));
    ComponentStatus {
        ready_replicas: ready,
        desired_replicas: desired,
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
    for (kind, status, reason, message) in status::transitions(previous, next) {
        let trouble = matches!(
            reason.as_str(),
            "InvalidSpec" | "MigrationFailed" | "Failed"
        );
        let event = Event {
            type_: if trouble {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: format!("{kind}{status}"),
            note: Some(format!("{reason}: {message}")),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(error) = ctx.recorder.publish(&event, &cluster.object_ref(&())).await {
            tracing::warn!(%error, "could not publish an Event");
        }
    }
    Ok(())
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
