//! kubectl for the e2e scenario: run, get, apply a file with substitutions, wait for a
//! condition, and port-forward to a pod.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::report;

/// kubectl in one namespace.
pub struct Kubectl {
    pub kubectl: PathBuf,
    pub namespace: String,
}

/// A `kubectl port-forward` to a pod's port 8080, stopped when dropped.
pub struct Forward {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
}

impl Drop for Forward {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Kubectl {
    /// The same kubectl in `namespace`.
    pub fn with_namespace(&self, namespace: &str) -> Self {
        Self {
            kubectl: self.kubectl.clone(),
            namespace: namespace.into(),
        }
    }

    pub fn run(&self, args: &[&str]) -> anyhow::Result<String> {
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

    /// `kubectl -n <namespace> <args>`.
    pub fn ns(&self, args: &[&str]) -> anyhow::Result<String> {
        self.run(&[&["-n", self.namespace.as_str()][..], args].concat())
    }

    pub fn get(&self, what: &str, format: &str) -> anyhow::Result<String> {
        self.ns(&["get", what, format])
    }

    /// A JSONPath of the ChatCluster `name`.
    pub fn cluster_field(&self, name: &str, path: &str) -> String {
        self.get(
            &format!("chatcluster/{name}"),
            &format!("-o=jsonpath={path}"),
        )
        .unwrap_or_default()
    }

    /// `type=status(reason)` for each condition of the ChatCluster `name`.
    pub fn conditions(&self, name: &str) -> String {
        self.cluster_field(
            name,
            "{range .status.conditions[*]}{.type}={.status}({.reason}) {end}",
        )
    }

    pub fn merge_patch(&self, name: &str, patch: &str) -> anyhow::Result<()> {
        self.ns(&["patch", "chatcluster", name, "--type=merge", "-p", patch])
            .map(drop)
    }

    /// Applies `file` with each `(from, to)` replaced; `extra` are more kubectl flags
    /// (`--dry-run=server`).
    pub fn apply_file(
        &self,
        file: &Path,
        replace: &[(&str, &str)],
        extra: &[&str],
    ) -> anyhow::Result<()> {
        let mut text = std::fs::read_to_string(file)?;
        for (from, to) in replace {
            text = text.replace(from, to);
        }
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("object.yaml");
        std::fs::write(&path, text)?;
        let path = path.to_string_lossy();
        self.ns(&[&["apply", "-f", path.as_ref()][..], extra].concat())
            .map(drop)
    }

    /// Polls `check` every 2 s for up to `limit`.
    pub fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        mut check: impl FnMut() -> anyhow::Result<bool>,
    ) -> anyhow::Result<Duration> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if check().unwrap_or(false) {
                let took = started.elapsed();
                report("ok", &format!("{what} after {took:.0?}"));
                return Ok(took);
            }
            std::thread::sleep(Duration::from_secs(2));
        }
        bail!("timed out after {limit:?} waiting for: {what}")
    }

    pub fn wait(
        &self,
        what: &str,
        check: impl FnMut() -> anyhow::Result<bool>,
    ) -> anyhow::Result<Duration> {
        self.wait_for(what, Duration::from_secs(300), check)
    }

    /// Names of the running pods matching `selector`.
    pub fn running_pods(&self, selector: &str) -> anyhow::Result<Vec<String>> {
        let names = self.ns(&[
            "get",
            "pods",
            "-l",
            selector,
            "--field-selector=status.phase=Running",
            "-o=jsonpath={.items[*].metadata.name}",
        ])?;
        Ok(names.split_whitespace().map(str::to_owned).collect())
    }

    /// Forwards a local port to `pod`'s 8080.
    pub fn forward(&self, pod: &str) -> anyhow::Result<Forward> {
        let mut child = Command::new(&self.kubectl)
            .args([
                "-n",
                &self.namespace,
                "port-forward",
                &format!("pod/{pod}"),
                ":8080",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting kubectl port-forward")?;
        let stdout = child.stdout.take().context("port-forward output")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        // "Forwarding from 127.0.0.1:41231 -> 8080"
        let port = line
            .split("127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .with_context(|| format!("no port in {line:?}"))?
            .to_owned();
        Ok(Forward {
            child,
            url: format!("http://127.0.0.1:{port}"),
        })
    }
}
