//! `cargo xtask e2e`: the operator on a real cluster (KUBECONFIG). Installs the chart,
//! applies the examples, waits for children and conditions, changes replicas and version,
//! deletes a child and the ChatCluster, and reports what it saw. Not part of CI.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::tools;

struct Cluster {
    kubectl: PathBuf,
    namespace: String,
}

/// Runs the scenario; prints one line per observation.
pub fn run(root: &Path, repository: &str, tag: &str) -> anyhow::Result<()> {
    if std::env::var_os("KUBECONFIG").is_none() {
        bail!("set KUBECONFIG to the cluster to test against (this task is not part of CI)");
    }
    let helm = tools::helm(root)?;
    let kubectl = helm
        .parent()
        .and_then(Path::parent)
        .map(|t| t.join("kubectl/kubectl"));
    let kubectl = tools::on_path("kubectl")
        .or(kubectl)
        .context("kubectl not found")?;
    let namespace = format!("natter-e2e-{}", std::process::id());
    let k = Cluster {
        kubectl,
        namespace: namespace.clone(),
    };
    let result = scenario(root, &helm, &k, repository, tag);
    report(
        "cleanup",
        "uninstalling the chart and deleting the test namespace",
    );
    let _ = k.run(&["delete", "namespace", &namespace, "--wait=false"]);
    let _ = Command::new(&helm)
        .args(["uninstall", "natter-e2e", "-n", "natter-system"])
        .status();
    result
}

fn scenario(
    root: &Path,
    helm: &Path,
    k: &Cluster,
    repository: &str,
    tag: &str,
) -> anyhow::Result<()> {
    let status = Command::new(helm)
        .args(["upgrade", "--install", "natter-e2e"])
        .arg(root.join("charts/natter"))
        .args([
            "-n",
            "natter-system",
            "--create-namespace",
            "--wait",
            "--timeout",
            "5m",
        ])
        .args([
            "--set",
            &format!("image.repository={repository}"),
            "--set",
            &format!("image.tag={tag}"),
        ])
        .status()?;
    if !status.success() {
        bail!("helm install failed");
    }
    report("install", "chart installed; operator Deployment rolled out");
    k.run(&["create", "namespace", &k.namespace])?;
    for (name, url) in [
        ("natter-db", "E2E_DATABASE_URL"),
        ("natter-redis", "E2E_REDIS_URL"),
    ] {
        let url = std::env::var(url).unwrap_or_else(|_| format!("{name}://unset"));
        k.run(&[
            "-n",
            &k.namespace,
            "create",
            "secret",
            "generic",
            name,
            &format!("--from-literal=url={url}"),
        ])?;
    }
    let examples = root.join("manifests/examples");
    let refused = k.apply_file(&examples.join("invalid.yaml"), &[]);
    match refused {
        Err(error) => report(
            "invalid",
            &format!("the API server refused invalid.yaml: {error}"),
        ),
        Ok(()) => bail!("the API server accepted invalid.yaml"),
    }
    let image = format!("  image:\n    repository: {repository}\n");
    let version = format!("\"{tag}\"");
    k.apply_file(
        &examples.join("minimal.yaml"),
        &[("\"0.1.0\"", &version), ("  image:\n", &image)],
    )?;
    let deployments = "natter-auth natter-website natter-chat natter-frontend";
    k.wait("migration Job created", || {
        Ok(k.get("jobs", "-o=name")?.contains("natter-migrate-"))
    })?;
    k.wait("conditions reported", || {
        Ok(k.get(
            "chatcluster/natter",
            "-o=jsonpath={.status.conditions[*].type}",
        )?
        .contains("MigrationsApplied"))
    })?;
    report(
        "conditions",
        &k.get(
            "chatcluster/natter",
            "-o=jsonpath={range .status.conditions[*]}{.type}={.status}({.reason}) {end}",
        )?,
    );
    k.wait(
        "Deployments created (after the migration Job succeeded)",
        || {
            let names = k.get("deployments", "-o=jsonpath={.items[*].metadata.name}")?;
            Ok(deployments.split(' ').all(|d| names.contains(d)))
        },
    )?;
    k.patch_cluster(r#"{"spec":{"chat":{"replicas":3}}}"#)?;
    k.wait("chat scaled to 3", || {
        Ok(k.get("deployment/natter-chat", "-o=jsonpath={.spec.replicas}")? == "3")
    })?;
    k.run(&["-n", &k.namespace, "delete", "deployment", "natter-website"])?;
    k.wait("deleted Deployment recreated", || {
        Ok(k.get("deployment/natter-website", "-o=name")
            .is_ok_and(|n| !n.is_empty()))
    })?;
    let next = format!("{tag}-e2e");
    let patch = format!(r#"{{"spec":{{"image":{{"tag":"{next}"}}}}}}"#);
    k.patch_cluster(&patch)?;
    k.wait("new version's migration Job created", || {
        Ok(k.get("jobs", "-o=name")?.lines().count() >= 2)
    })?;
    report("version", &k.get("chatcluster/natter", "-o=jsonpath={.status.currentVersion} {range .status.conditions[*]}{.type}={.status}({.reason}) {end}")?);
    k.run(&[
        "-n",
        &k.namespace,
        "delete",
        "chatcluster",
        "natter",
        "--wait=true",
    ])?;
    k.wait("children garbage-collected", || {
        Ok(k.get("deployments", "-o=name")?.trim().is_empty())
    })?;
    report("done", "every step observed");
    Ok(())
}

impl Cluster {
    fn run(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new(&self.kubectl).args(args).output()?;
        if !out.status.success() {
            bail!(
                "kubectl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn patch_cluster(&self, merge_patch: &str) -> anyhow::Result<()> {
        let args = [
            "patch",
            "chatcluster",
            "natter",
            "--type=merge",
            "-p",
            merge_patch,
        ];
        self.run(&[&["-n", &self.namespace][..], &args].concat())
            .map(drop)
    }

    fn get(&self, what: &str, format: &str) -> anyhow::Result<String> {
        self.run(&["-n", &self.namespace, "get", what, format])
    }

    fn apply_file(&self, file: &Path, replace: &[(&str, &str)]) -> anyhow::Result<()> {
        let mut text = std::fs::read_to_string(file)?;
        for (from, to) in replace {
            text = text.replace(from, to);
        }
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("object.yaml");
        std::fs::write(&path, text)?;
        self.run(&[
            "-n",
            &self.namespace,
            "apply",
            "-f",
            &path.to_string_lossy(),
        ])
        .map(drop)
    }

    fn wait(
        &self,
        what: &str,
        mut check: impl FnMut() -> anyhow::Result<bool>,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(300) {
            if check().unwrap_or(false) {
                report("ok", &format!("{what} after {:.0?}", started.elapsed()));
                return Ok(());
            }
            std::thread::sleep(Duration::from_secs(2));
        }
        bail!("timed out waiting for: {what}")
    }
}

fn report(step: &str, what: &str) {
    println!("e2e {step:>10}: {what}");
}
