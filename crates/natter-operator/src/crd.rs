//! The `ChatCluster` custom resource (`natter.dev/v1alpha1`): one Natter installation.
//! The CRD YAML is generated from these types (`natter crd`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Desired state of a Natter installation.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "natter.dev",
    version = "v1alpha1",
    kind = "ChatCluster",
    namespaced,
    shortname = "chat",
    status = "ChatClusterStatus",
    doc = "A Natter chat installation: auth, website, chat and frontend services.",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Version","type":"string","jsonPath":".status.currentVersion"}"#,
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".status.url"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ChatClusterSpec {
    /// The Natter image every component runs.
    pub image: ImageSpec,
    /// The auth service.
    #[serde(default)]
    pub auth: ComponentSpec,
    /// The website service (rooms, members, history, JSON API).
    #[serde(default)]
    pub website: ComponentSpec,
    /// The chat service (WebSocket delivery).
    #[serde(default)]
    pub chat: ComponentSpec,
    /// The web frontend.
    #[serde(default)]
    pub frontend: ComponentSpec,
    /// PostgreSQL connection.
    pub database: ConnectionSource,
    /// Redis connection.
    pub redis: ConnectionSource,
    /// Vault settings; when set every service loads its secrets from Vault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault: Option<VaultSpec>,
    /// How clients reach the installation.
    #[serde(default)]
    pub ingress: IngressSpec,
    /// Logs, traces and metrics.
    #[serde(default)]
    pub telemetry: TelemetrySpec,
    /// Database migrations.
    #[serde(default)]
    pub migrations: MigrationsSpec,
    /// Web Push and email digests.
    #[serde(default)]
    pub notifications: NotificationsSpec,
}

/// The container image.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ImageSpec {
    /// Image repository.
    #[serde(default = "default_repository")]
    #[schemars(length(min = 1, max = 255))]
    pub repository: String,
    /// Image tag; it is the installation's version. Changing it runs the migrations of
    /// the new version first, then rolls the services.
    #[schemars(regex(pattern = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"))]
    pub tag: String,
    /// When to pull the image.
    #[serde(default)]
    pub pull_policy: PullPolicy,
    /// Names of image pull secrets in the namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pull_secrets: Vec<String>,
}

/// Kubernetes image pull policy.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Always pull.
    Always,
    /// Pull when not on the node.
    #[default]
    IfNotPresent,
    /// Never pull.
    Never,
}

/// One service's scale and resources.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ComponentSpec {
    /// Pods when autoscaling is off.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0, max = 100))]
    pub replicas: i32,
    /// CPU and memory requests and limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// A HorizontalPodAutoscaler on CPU instead of fixed replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<AutoscalingSpec>,
    /// Extra environment variables (see docs/configuration.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
}

/// CPU-based autoscaling.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AutoscalingSpec {
    /// Fewest pods.
    #[schemars(range(min = 1, max = 100))]
    pub min_replicas: i32,
    /// Most pods; must not be below `minReplicas`.
    #[schemars(range(min = 1, max = 100))]
    pub max_replicas: i32,
    /// Average CPU utilisation to aim for, in percent of the request (spelt as in the
    /// HorizontalPodAutoscaler v1 API, which users know).
    #[serde(
        default = "default_cpu_target",
        rename = "targetCPUUtilizationPercentage"
    )]
    #[schemars(range(min = 1, max = 100))]
    pub target_cpu_utilization_percentage: i32,
}

/// One environment variable.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct EnvVar {
    /// Name.
    #[schemars(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$"))]
    pub name: String,
    /// Value.
    #[serde(default)]
    pub value: String,
}

/// Where a connection URL comes from: a key of a Secret, or Vault.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.secretRef) != has(self.vaultPath)").message("set exactly one of secretRef and vaultPath"))]
pub struct ConnectionSource {
    /// A key of a Secret in the namespace holding the URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeyRef>,
    /// KV v2 path (under the Vault KV mount) of a secret `{"url": …}` or
    /// `{"username": …, "password": …}`; needs `spec.vault`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub vault_path: Option<String>,
}

/// A key of a Secret.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct SecretKeyRef {
    /// Secret name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key in the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// Vault connection of every service (docs/vault.md).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VaultSpec {
    /// Vault address.
    #[schemars(regex(pattern = r"^https?://.+"))]
    pub address: String,
    /// Login method: the service-account token through Vault's kubernetes or jwt method.
    #[serde(default)]
    pub auth_method: VaultAuthMethod,
    /// Mount path of that method; defaults to the method's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_mount: Option<String>,
    /// Vault role bound to the installation's service account.
    #[schemars(length(min = 1, max = 255))]
    pub role: String,
    /// KV v2 mount.
    #[serde(default = "default_kv_mount")]
    pub kv_mount: String,
    /// Path under the mount holding `jwt`, `cookie`, `database`, `redis`.
    #[serde(default = "default_kv_path")]
    pub kv_path: String,
    /// A role of Vault's database secrets engine: PostgreSQL credentials are leased from
    /// it (renewed, replaced before they expire) and put into the URL of
    /// `spec.database.secretRef`, which then names host and database only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub database_role: Option<String>,
    /// Mount of the database secrets engine; `database` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub database_mount: Option<String>,
}

/// Vault login method.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum VaultAuthMethod {
    /// Kubernetes auth (TokenReview).
    #[default]
    Kubernetes,
    /// JWT auth with the service-account token.
    Jwt,
}

/// Ingress routing `/` to the frontend, `/api` to the website (and auth), `/ws` to chat.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct IngressSpec {
    /// Whether to create the Ingress.
    #[serde(default)]
    pub enabled: bool,
    /// IngressClass name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_name: Option<String>,
    /// Host name; also the installation's URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"))]
    pub host: Option<String>,
    /// TLS Secret for the host; set means https.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_secret_name: Option<String>,
    /// Extra annotations (they override the WebSocket timeouts set by default).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Telemetry settings.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TelemetrySpec {
    /// OTLP/gRPC collector endpoint; traces are exported only when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://.+"))]
    pub otlp_endpoint: Option<String>,
    /// Fraction of new traces sampled.
    #[serde(default = "default_sampling")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub sampling_ratio: f64,
    /// Log level.
    #[serde(default)]
    pub log_level: LogLevel,
}

/// Log level.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warn,
    /// The default.
    #[default]
    Info,
    /// Verbose.
    Debug,
    /// Everything.
    Trace,
}

/// Notifications beyond the open page: Web Push and email digests.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct NotificationsSpec {
    /// Web Push to browsers that subscribed.
    #[serde(default)]
    pub push: PushSpec,
    /// Email digests of unread mentions and direct messages; none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailSpec>,
}

/// Web Push settings (the VAPID key is generated into a Secret without Vault, and read
/// from `<kvPath>/vapid` with it).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PushSpec {
    /// Send pushes.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// The contact push services are given with every push (a mailto: or https: URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(mailto:|https://).+"))]
    pub contact: Option<String>,
}

/// Email digests over SMTP.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EmailSpec {
    /// The SMTP server: a Secret key holding its whole URL
    /// (`smtps://user:password@host`), or a Vault path of `{"url": …}` or of
    /// `{"username": …, "password": …}` for `url`.
    pub smtp: ConnectionSource,
    /// The SMTP URL without credentials (smtp://, smtps://), when Vault holds only them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^smtps?://.+"))]
    pub url: Option<String>,
    /// The From address, e.g. `Natter <natter@example.com>`.
    #[schemars(length(min = 3, max = 320))]
    pub from: String,
    /// Minutes a mention or direct message stays unread before it goes into a digest
    /// (also the least time between two digests to one person).
    #[serde(default = "default_digest_minutes")]
    #[schemars(range(min = 1, max = 10080))]
    pub delay_minutes: u32,
    /// The address people open Natter at, for links in digests; default from the
    /// ingress host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://.+"))]
    pub public_url: Option<String>,
}

impl Default for PushSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            contact: None,
        }
    }
}

fn default_digest_minutes() -> u32 {
    60
}

/// Migration settings.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MigrationsSpec {
    /// Run `natter migrate` as a Job of the new version before moving the services to it.
    #[serde(default = "default_true")]
    pub run_on_version_change: bool,
}

/// Observed state.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ChatClusterStatus {
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Progressing, Degraded, MigrationsApplied.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Ready and desired pods per component.
    #[serde(default)]
    pub components: BTreeMap<String, ComponentStatus>,
    /// The version (image tag) the services run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_version: Option<String>,
    /// Where users reach the installation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The latest migration attempt: of the version being moved to, or of the current one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration: Option<MigrationStatus>,
}

/// One attempt at migrating to a version: each attempt is a Job of its own.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct MigrationStatus {
    /// The version (image tag) migrated to.
    pub version: String,
    /// 1 for the first Job, one more for each retry.
    pub attempt: u32,
    /// `metadata.generation` of the spec the attempt started from: a newer spec (say, a
    /// fixed database reference) retries a failed attempt at once.
    pub generation: i64,
}

/// Pods of one component.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ComponentStatus {
    /// Available pods of the current revision.
    pub ready_replicas: i32,
    /// Pods wanted.
    pub desired_replicas: i32,
    /// Pods running in all, older revisions included.
    #[serde(default)]
    pub replicas: i32,
    /// The Deployment controller has seen the latest spec, and exactly the wanted number
    /// of pods runs, all of the current revision and available.
    #[serde(default)]
    pub rolled_out: bool,
}

impl Default for ComponentSpec {
    fn default() -> Self {
        Self {
            replicas: default_replicas(),
            resources: None,
            autoscaling: None,
            env: Vec::new(),
        }
    }
}

impl Default for TelemetrySpec {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            sampling_ratio: default_sampling(),
            log_level: LogLevel::default(),
        }
    }
}

impl Default for MigrationsSpec {
    fn default() -> Self {
        Self {
            run_on_version_change: true,
        }
    }
}

impl LogLevel {
    /// The `RUST_LOG` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warn => "warn",
            Self::Info => "info",
            Self::Debug => "debug",
            Self::Trace => "trace",
        }
    }
}

fn default_repository() -> String {
    "ghcr.io/natter-chat/natter".into()
}

fn default_replicas() -> i32 {
    2
}

fn default_cpu_target() -> i32 {
    75
}

fn default_kv_mount() -> String {
    "secret".into()
}

fn default_kv_path() -> String {
    "natter".into()
}

fn default_sampling() -> f64 {
    1.0
}

fn default_true() -> bool {
    true
}
