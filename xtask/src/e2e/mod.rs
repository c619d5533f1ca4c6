//! `cargo xtask e2e`: the operator on a real cluster (KUBECONFIG), as a platform engineer
//! uses it. Each step checks one promise (and fails on the bug a real cluster once
//! showed): the examples get exactly their documented outcome, a second release beside
//! the first installs, an invalid spec claims nothing, a missing Secret is reported at
//! once, a failed migration is retried, Ready waits for rollouts, users chat across two
//! chat pods, Events carry real reasons, the leader hands over at once on SIGTERM, the
//! image is small, and deleting the ChatCluster collects its children. Not part of CI.

mod kubectl;
mod users;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;

use kubectl::Kubectl;

/// The operator's namespace.
const SYSTEM: &str = "natter-system";
/// The chart's release name (both releases).
const RELEASE: &str = "natter-e2e";
/// Components, as their Deployments are suffixed.
const COMPONENTS: [&str; 4] = ["auth", "website", "chat", "frontend"];
/// Largest image accepted (the release binary with line tables made it ~250 MB).
const IMAGE_LIMIT_BYTES: u64 = 100 * 1024 * 1024;

/// What the scenario works with.
struct Scenario<'a> {
    root: &'a Path,
    helm: &'a Path,
    k: Kubectl,
    repository: &'a str,
    tag: &'a str,
    database_url: String,
    redis_url: String,
}

/// Runs the scenario; prints one line per observation.
pub fn run(root: &Path, repository: &str, tag: &str) -> anyhow::Result<()> {
    if std::env::var_os("KUBECONFIG").is_none() {
        bail!("set KUBECONFIG to the cluster to test against (this task is not part of CI)");
    }
    let need = |name: &str| {
        std::env::var(name).with_context(|| {
            format!("set {name}: a URL the cluster's pods can reach (the installation must become Ready)")
        })
    };
    let (database_url, redis_url) = (need("E2E_DATABASE_URL")?, need("E2E_REDIS_URL")?);
    let helm = crate::tools::helm(root)?;
    let kubectl = helm
        .parent()
        .and_then(Path::parent)
        .map(|t| t.join("kubectl/kubectl"));
    let kubectl = crate::tools::on_path("kubectl")
        .or(kubectl)
        .context("kubectl not found")?;
    let namespace = format!("natter-e2e-{}", std::process::id());
    let scenario = Scenario {
        root,
        helm: &helm,
        k: Kubectl {
            kubectl,
            namespace: namespace.clone(),
        },
        repository,
        tag,
        database_url,
        redis_url,
    };
    let result = scenario.run();
    report(
        "cleanup",
        "uninstalling the chart and deleting the test namespaces",
    );
    let _ = scenario
        .k
        .run(&["delete", "namespace", &namespace, "--wait=false"]);
    let _ = Command::new(&helm)
        .args(["uninstall", RELEASE, "-n", SYSTEM])
        .status();
    result
}

impl Scenario<'_> {
    fn run(&self) -> anyhow::Result<()> {
        self.install(SYSTEM, &self.k.namespace)?;
        self.second_release()?;
        self.k.run(&["create", "namespace", &self.k.namespace])?;
        self.examples()?;
        self.invalid_spec()?;
        self.missing_secret()?;
        self.failed_migration_is_retried()?;
        self.ready()?;
        self.chat_across_pods()?;
        self.ready_waits_for_rollouts()?;
        self.drift_and_scale()?;
        self.version_change_and_events()?;
        self.leader_hands_over()?;
        self.image_size()?;
        self.delete()?;
        report("done", "every step observed");
        Ok(())
    }

    fn examples_dir(&self) -> std::path::PathBuf {
        self.root.join("manifests/examples")
    }

    /// The chart in `namespace`, managing ChatClusters of `watch`, two operator replicas.
    fn install(&self, namespace: &str, watch: &str) -> anyhow::Result<()> {
        let status = Command::new(self.helm)
            .args(["upgrade", "--install", RELEASE])
            .arg(self.root.join("charts/natter"))
            .args([
                "-n",
                namespace,
                "--create-namespace",
                "--wait",
                "--timeout",
                "5m",
            ])
            .args(["--set", &format!("image.repository={}", self.repository)])
            .args(["--set", &format!("image.tag={}", self.tag)])
            .args(["--set", "replicaCount=2"])
            .args(["--set", &format!("watchNamespaces={{{watch}}}")])
            .status()?;
        if !status.success() {
            bail!("helm install in {namespace} failed");
        }
        report(
            "install",
            &format!("chart installed in {namespace}, watching {watch}"),
        );
        Ok(())
    }

    /// A release of the same name in another namespace installs beside the first.
    fn second_release(&self) -> anyhow::Result<()> {
        let other = format!("{}-b", self.k.namespace);
        let installed = self.install(&other, &other);
        let _ = Command::new(self.helm)
            .args(["uninstall", RELEASE, "-n", &other])
            .status();
        let _ = self.k.run(&["delete", "namespace", &other, "--wait=false"]);
        installed.context("a second release in another namespace must install")?;
        report(
            "releases",
            "a second release installed beside the first, then removed",
        );
        Ok(())
    }

    /// full.yaml is accepted by the API server's strict validation; each invalid example
    /// is refused for its own reason.
    fn examples(&self) -> anyhow::Result<()> {
        let dir = self.examples_dir();
        self.k
            .apply_file(&dir.join("full.yaml"), &[], &["--dry-run=server"])
            .context("full.yaml must be accepted")?;
        for (file, expected) in [
            ("invalid-schema.yaml", "replicas"),
            ("invalid-unknown-field.yaml", "unknown field"),
            (
                "invalid-cel.yaml",
                "set exactly one of secretRef and vaultPath",
            ),
        ] {
            match self
                .k
                .apply_file(&dir.join(file), &[], &["--dry-run=server"])
            {
                Ok(()) => bail!("the API server accepted {file}"),
                Err(error) if error.to_string().contains(expected) => {
                    report("examples", &format!("{file} refused: {expected}"))
                }
                Err(error) => bail!("{file} refused for another reason: {error}"),
            }
        }
        Ok(())
    }

    /// An invalid spec is Degraded and claims no migration and no version.
    fn invalid_spec(&self) -> anyhow::Result<()> {
        let k = &self.k;
        k.apply_file(&self.examples_dir().join("invalid-spec.yaml"), &[], &[])?;
        k.wait("invalid spec reported", || {
            Ok(k.conditions("upside-down")
                .contains("Degraded=True(InvalidSpec)"))
        })?;
        let conditions = k.conditions("upside-down");
        if !conditions.contains("MigrationsApplied=False(InvalidSpec)") {
            bail!("an invalid spec claims migrations: {conditions}");
        }
        if !k
            .cluster_field("upside-down", "{.status.currentVersion}")
            .is_empty()
        {
            bail!("an invalid spec reports a current version");
        }
        k.ns(&["delete", "chatcluster", "upside-down", "--wait=true"])?;
        Ok(())
    }

    fn apply_minimal(&self) -> anyhow::Result<()> {
        let image = format!("  image:\n    repository: {}\n", self.repository);
        let version = format!("\"{}\"", self.tag);
        self.k.apply_file(
            &self.examples_dir().join("minimal.yaml"),
            &[("\"0.1.0\"", &version), ("  image:\n", &image)],
            &[],
        )
    }

    /// Applied before its Secrets exist: Degraded=True naming the Secret, within a minute.
    fn missing_secret(&self) -> anyhow::Result<()> {
        let k = &self.k;
        self.apply_minimal()?;
        k.wait_for(
            "the missing Secret reported",
            Duration::from_secs(90),
            || {
                let conditions = k.conditions("natter");
                let message = k.cluster_field(
                    "natter",
                    "{.status.conditions[?(@.type==\"Degraded\")].message}",
                );
                Ok(conditions.contains("Degraded=True(PodsBlocked)")
                    && message.contains("natter-db"))
            },
        )?;
        Ok(())
    }

    fn set_secret(&self, name: &str, url: &str) -> anyhow::Result<()> {
        let yaml = self.k.ns(&[
            "create",
            "secret",
            "generic",
            name,
            &format!("--from-literal=url={url}"),
            "--dry-run=client",
            "-o=yaml",
        ])?;
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("secret.yaml");
        std::fs::write(&file, yaml)?;
        self.k
            .ns(&["apply", "-f", &file.to_string_lossy()])
            .map(drop)
    }

    /// A database nobody listens on fails the migration; once fixed, a later attempt
    /// succeeds without anyone deleting the Job.
    fn failed_migration_is_retried(&self) -> anyhow::Result<()> {
        let k = &self.k;
        self.set_secret("natter-db", "postgres://natter:x@127.0.0.1:1/natter")?;
        self.set_secret("natter-redis", &self.redis_url)?;
        k.wait("the failed migration reported", || {
            Ok(k.conditions("natter")
                .contains("Degraded=True(MigrationFailed)"))
        })?;
        self.set_secret("natter-db", &self.database_url)?;
        k.wait("a later migration attempt succeeded", || {
            let attempt = k.cluster_field("natter", "{.status.migration.attempt}");
            Ok(k.conditions("natter")
                .contains("MigrationsApplied=True(Migrated)")
                && attempt.parse::<u32>().unwrap_or(0) >= 2)
        })?;
        Ok(())
    }

    /// Ready=True, and then every component's pods run and its Deployment rolled out.
    fn ready(&self) -> anyhow::Result<()> {
        let k = &self.k;
        k.wait("Ready=True", || {
            Ok(k.conditions("natter").contains("Ready=True"))
        })?;
        self.assert_rolled_out()?;
        for component in COMPONENTS {
            let selector = format!(
                "app.kubernetes.io/instance=natter,app.kubernetes.io/component={component}"
            );
            if k.running_pods(&selector)?.is_empty() {
                bail!("Ready=True with no running {component} pod");
            }
        }
        Ok(())
    }

    fn assert_rolled_out(&self) -> anyhow::Result<()> {
        for component in COMPONENTS {
            let deployment = format!("deployment/natter-{component}");
            self.k
                .ns(&["rollout", "status", &deployment, "--timeout=1s"])
                .with_context(|| format!("Ready=True while {deployment} is still rolling out"))?;
        }
        Ok(())
    }

    /// Register, log in, create and join a room, and exchange a message between two
    /// chat pods.
    fn chat_across_pods(&self) -> anyhow::Result<()> {
        let k = &self.k;
        let pod = |component: &str| -> anyhow::Result<Vec<String>> {
            k.running_pods(&format!(
                "app.kubernetes.io/instance=natter,app.kubernetes.io/component={component}"
            ))
        };
        let chats = pod("chat")?;
        let [one, two, ..] = chats.as_slice() else {
            bail!("need two running chat pods, found {chats:?}");
        };
        let auth = k.forward(pod("auth")?.first().context("no auth pod")?)?;
        let website = k.forward(pod("website")?.first().context("no website pod")?)?;
        let (chat_a, chat_b) = (k.forward(one)?, k.forward(two)?);
        let suffix = std::process::id();
        let alice = users::sign_up(&auth.url, &format!("alice{suffix}"))?;
        let bob = users::sign_up(&auth.url, &format!("bob{suffix}"))?;
        let room = json!({"kind": "public", "name": format!("e2e {suffix}")});
        let (status, room) =
            users::call(&website.url, "POST", "/api/v1/rooms", Some(&alice), &room)?;
        let room = room["id"]
            .as_str()
            .with_context(|| format!("create room: {status} {room}"))?;
        let join = format!("/api/v1/rooms/{room}/join");
        let (status, body) = users::call(
            &website.url,
            "POST",
            &join,
            Some(&bob),
            &serde_json::Value::Null,
        )?;
        if !(200..300).contains(&status) {
            bail!("join: {status} {body}");
        }
        let seq = users::exchange(&chat_a.url, &chat_b.url, (&alice, &bob), room)?;
        report(
            "chat",
            &format!("message {seq} sent on {one}, delivered on {two}"),
        );
        Ok(())
    }

    /// An env change on every component: whenever the ChatCluster says Ready=True,
    /// every Deployment must have rolled out.
    fn ready_waits_for_rollouts(&self) -> anyhow::Result<()> {
        let env = json!([{"name": "NATTER_E2E_ROLL", "value": std::process::id().to_string()}]);
        let spec: serde_json::Map<String, serde_json::Value> = COMPONENTS
            .iter()
            .map(|c| (c.to_string(), json!({"env": env})))
            .collect();
        self.k
            .merge_patch("natter", &json!({"spec": spec}).to_string())?;
        let started = Instant::now();
        let mut saw_not_ready = false;
        while started.elapsed() < Duration::from_secs(300) {
            std::thread::sleep(Duration::from_secs(1));
            let ready = self.k.conditions("natter").contains("Ready=True");
            if !ready {
                saw_not_ready = true;
                continue;
            }
            if saw_not_ready {
                self.assert_rolled_out()?;
                report(
                    "rollout",
                    &format!(
                        "Ready=True only once rolled out, after {:.0?}",
                        started.elapsed()
                    ),
                );
                return Ok(());
            }
        }
        bail!("the env change never took the ChatCluster out of Ready and back")
    }

    fn drift_and_scale(&self) -> anyhow::Result<()> {
        let k = &self.k;
        k.merge_patch("natter", r#"{"spec":{"chat":{"replicas":3}}}"#)?;
        k.wait("chat scaled to 3", || {
            Ok(k.get("deployment/natter-chat", "-o=jsonpath={.spec.replicas}")? == "3")
        })?;
        k.ns(&["delete", "deployment", "natter-website"])?;
        k.wait("deleted Deployment recreated", || {
            Ok(k.get("deployment/natter-website", "-o=name")
                .is_ok_and(|n| !n.is_empty()))
        })?;
        Ok(())
    }

    /// A tag the registry does not have: its migration pod cannot pull, which is
    /// reported; the Events carry the conditions' reasons, not `<Condition><Status>`.
    fn version_change_and_events(&self) -> anyhow::Result<()> {
        let k = &self.k;
        let next = format!("{}-e2e-missing", self.tag);
        k.merge_patch(
            "natter",
            &format!(r#"{{"spec":{{"image":{{"tag":"{next}"}}}}}}"#),
        )?;
        k.wait("the unpullable migration image reported", || {
            Ok(k.conditions("natter")
                .contains("Degraded=True(PodsBlocked)"))
        })?;
        if k.cluster_field("natter", "{.status.currentVersion}") != self.tag {
            bail!("the old version must keep running while the new one cannot migrate");
        }
        let events = k.ns(&[
            "get",
            "events",
            "--field-selector=involvedObject.kind=ChatCluster,involvedObject.name=natter",
            "-o=jsonpath={range .items[*]}{.reason}|{.message}{\"\\n\"}{end}",
        ])?;
        let old_style = ["Ready", "Progressing", "Degraded", "MigrationsApplied"]
            .iter()
            .flat_map(|c| [format!("{c}True|"), format!("{c}False|")]);
        for stale in old_style {
            if events.lines().any(|l| l.starts_with(&stale)) {
                bail!("an Event reason is a condition name: {events}");
            }
        }
        if !events
            .lines()
            .any(|l| l.starts_with("Migrated|") && l.contains(self.tag))
        {
            bail!("no Migrated Event naming {}: {events}", self.tag);
        }
        report(
            "events",
            &format!(
                "{} Events, each with its condition's reason",
                events.lines().count()
            ),
        );
        k.merge_patch(
            "natter",
            &format!(r#"{{"spec":{{"image":{{"tag":"{}"}}}}}}"#, self.tag),
        )?;
        Ok(())
    }

    /// Deleting the leading operator pod hands the Lease over well before it expires.
    fn leader_hands_over(&self) -> anyhow::Result<()> {
        let system = self.k.with_namespace(SYSTEM);
        let holder = || {
            system
                .get(
                    "lease/natter-operator",
                    "-o=jsonpath={.spec.holderIdentity}",
                )
                .unwrap_or_default()
        };
        let leader = holder();
        if leader.is_empty() {
            bail!("no operator holds the Lease");
        }
        system.ns(&["delete", "pod", &leader, "--wait=false"])?;
        let took = system.wait_for("another replica leads", Duration::from_secs(60), || {
            let now = holder();
            Ok(!now.is_empty() && now != leader)
        })?;
        if took >= Duration::from_secs(15) {
            bail!("the new leader took {took:?}: the Lease was not released on SIGTERM");
        }
        Ok(())
    }

    /// The image as the node pulled it.
    fn image_size(&self) -> anyhow::Result<()> {
        let images = self.k.run(&[
            "get",
            "nodes",
            "-o=jsonpath={range .items[*].status.images[*]}{.sizeBytes} {.names}{\"\\n\"}{end}",
        ])?;
        let wanted = format!("{}:{}", self.repository, self.tag);
        let size: u64 = images
            .lines()
            .find(|line| line.contains(&wanted))
            .and_then(|line| line.split_whitespace().next()?.parse().ok())
            .with_context(|| format!("no node reports the image {wanted}"))?;
        report("image", &format!("{wanted}: {:.1} MB", size as f64 / 1e6));
        if size > IMAGE_LIMIT_BYTES {
            bail!("the image is {size} bytes, over {IMAGE_LIMIT_BYTES}");
        }
        Ok(())
    }

    fn delete(&self) -> anyhow::Result<()> {
        let k = &self.k;
        k.ns(&["delete", "chatcluster", "natter", "--wait=true"])?;
        k.wait("children garbage-collected", || {
            Ok(k.get("deployments", "-o=name")?.trim().is_empty())
        })?;
        Ok(())
    }
}

fn report(step: &str, what: &str) {
    println!("e2e {step:>10}: {what}");
}
