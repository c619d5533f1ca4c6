//! Chart and manifest checks: `helm lint`, `helm template` with default and full values,
//! every rendered object validated against the Kubernetes schemas, and every ChatCluster
//! the project ships (examples, the chart's) checked against the generated CRD schema and
//! `natter render`, each with the outcome it is meant to show.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use crate::tools;

/// What a shipped ChatCluster must get: from the CRD's OpenAPI schema (types, ranges,
/// enums; CEL rules are not evaluated here) and from `natter render` (unknown fields, as
/// the API server's strict decoding, and the operator's own checks).
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Accepted, and its children validate against the Kubernetes schemas.
    Valid,
    /// Refused by the schema.
    SchemaRefuses,
    /// Valid by the schema; `natter render` refuses it with a message containing this.
    RenderRefuses(&'static str),
}

/// Every example in manifests/examples and what it shows.
const EXAMPLES: &[(&str, Expect)] = &[
    ("minimal.yaml", Expect::Valid),
    ("full.yaml", Expect::Valid),
    ("invalid-schema.yaml", Expect::SchemaRefuses),
    (
        "invalid-unknown-field.yaml",
        Expect::RenderRefuses("unknown field"),
    ),
    (
        "invalid-cel.yaml",
        Expect::RenderRefuses("exactly one of secretRef and vaultPath"),
    ),
    (
        "invalid-spec.yaml",
        Expect::RenderRefuses("minReplicas (8) is above maxReplicas (2)"),
    ),
];

/// Runs every check; names the first that fails.
pub fn check(root: &Path) -> anyhow::Result<()> {
    let helm = tools::helm(root)?;
    let chart = root.join("charts/natter");
    let full = chart.join("ci/full-values.yaml");
    let dir = tempfile::tempdir()?;
    let mut shipped: Vec<(PathBuf, Expect)> = EXAMPLES
        .iter()
        .map(|(file, expect)| (root.join("manifests/examples").join(file), *expect))
        .collect();
    for values in [None, Some(&full)] {
        let mut lint = Command::new(&helm);
        lint.args(["lint", "--strict"]).arg(&chart);
        if let Some(values) = values {
            lint.arg("--values").arg(values);
        }
        run_quiet(&mut lint, "helm lint")?;
        let mut template = Command::new(&helm);
        template
            .args(["template", "natter"])
            .arg(&chart)
            .args(["--namespace", "natter-system"]);
        if let Some(values) = values {
            template.arg("--values").arg(values);
        }
        let rendered = output(&mut template, "helm template")?;
        validate_kubernetes(&rendered)?;
        for (index, cluster) in chat_clusters(&rendered).into_iter().enumerate() {
            let file = dir
                .path()
                .join(format!("chart-{}-{index}.yaml", shipped.len()));
            std::fs::write(&file, cluster)?;
            shipped.push((file, Expect::Valid));
        }
        eprintln!(
            "xtask: chart renders and validates ({} values)",
            if values.is_some() { "full" } else { "default" }
        );
    }
    validate_kubernetes(&std::fs::read_to_string(
        root.join("manifests/install.yaml"),
    )?)?;
    check_releases_coexist(&helm, &chart)?;
    check_chat_clusters(root, &shipped)?;
    eprintln!("xtask: chart and manifests OK");
    Ok(())
}

/// Every object against the Kubernetes 1.33 schemas, unknown fields refused. Custom
/// resources are skipped by the tool; ChatClusters are checked by [`check_chat_clusters`].
fn validate_kubernetes(yaml: &str) -> anyhow::Result<()> {
    let validator = tools::kubernetes_validate()?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("rendered.yaml");
    std::fs::write(&file, yaml)?;
    let out = Command::new(validator)
        .args(["--strict", "--kubernetes-version", "1.33"])
        .arg(&file)
        .output()
        .context("running kubernetes-validate")?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || text.contains("ERROR") {
        bail!("kubernetes-validate refused the rendered chart:\n{text}");
    }
    Ok(())
}

/// Two releases of the same name in two namespaces share no cluster-scoped object name
/// (Helm would refuse the second: the objects belong to the first).
fn check_releases_coexist(helm: &Path, chart: &Path) -> anyhow::Result<()> {
    let mut names = Vec::new();
    for namespace in ["natter-system", "natter-x"] {
        let rendered = output(
            Command::new(helm)
                .args(["template", "natter"])
                .arg(chart)
                .args(["--namespace", namespace]),
            "helm template",
        )?;
        let cluster_scoped: Vec<String> = rendered
            .split("\n---")
            .filter(|doc| {
                doc.lines()
                    .any(|l| l == "kind: ClusterRole" || l == "kind: ClusterRoleBinding")
            })
            .filter_map(|doc| doc.lines().find_map(|l| l.strip_prefix("  name: ")))
            .map(str::to_owned)
            .collect();
        if cluster_scoped.is_empty() {
            bail!("no cluster-scoped objects rendered for {namespace}");
        }
        names.push(cluster_scoped);
    }
    if let Some(shared) = names[0].iter().find(|name| names[1].contains(name)) {
        bail!("releases in two namespaces would both own the cluster-scoped {shared}");
    }
    eprintln!("xtask: releases in two namespaces share no cluster-scoped name");
    Ok(())
}

/// The ChatCluster documents of a multi-document YAML stream.
fn chat_clusters(stream: &str) -> Vec<&str> {
    stream
        .split("\n---")
        .filter(|doc| doc.lines().any(|line| line == "kind: ChatCluster"))
        .collect()
}

/// Every ChatCluster the project ships (examples, the chart's) gets what it must.
fn check_chat_clusters(root: &Path, shipped: &[(PathBuf, Expect)]) -> anyhow::Result<()> {
    let paths: Vec<&Path> = shipped.iter().map(|(path, _)| path.as_path()).collect();
    let verdicts = schema_verdicts(root, &paths)?;
    for ((path, expect), schema_error) in shipped.iter().zip(verdicts) {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        match (expect, schema_error) {
            (Expect::SchemaRefuses, Some(_)) => {}
            (Expect::SchemaRefuses, None) => bail!("{name}: the schema accepted it"),
            (_, Some(error)) => bail!("{name}: the schema refused it: {error}"),
            (Expect::Valid, None) => validate_kubernetes(&render(root, path)?)?,
            (Expect::RenderRefuses(needle), None) => match render(root, path) {
                Ok(_) => bail!("{name}: natter render accepted it"),
                Err(error) if format!("{error:#}").contains(needle) => {}
                Err(error) => bail!("{name}: refused for another reason: {error:#}"),
            },
        }
        eprintln!("xtask: ChatCluster {name}: {expect:?} as expected");
    }
    Ok(())
}

/// `natter render <file>`: the operator's children for it, or why it refused.
fn render(root: &Path, file: &Path) -> anyhow::Result<String> {
    output(
        Command::new(crate::cargo_bin())
            .current_dir(root)
            .args(["run", "--quiet", "--package", "natter", "--", "render"])
            .arg(file),
        "natter render",
    )
}

/// Each file validated against the generated CRD's OpenAPI schema: `None` when valid,
/// else the errors.
fn schema_verdicts(root: &Path, files: &[&Path]) -> anyhow::Result<Vec<Option<String>>> {
    let script = r#"
import sys, yaml, jsonschema
crd = yaml.safe_load(open(sys.argv[1]).read().split("\n", 1)[1])
schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
def allow_null(node):
    if isinstance(node, dict):
        if node.pop("nullable", False) and "type" in node:
            node["type"] = [node["type"], "null"]
        for value in node.values(): allow_null(value)
    elif isinstance(node, list):
        for value in node: allow_null(value)
allow_null(schema)
validator = jsonschema.Draft7Validator(schema)
for path in sys.argv[2:]:
    errors = sorted(e.message for e in validator.iter_errors(yaml.safe_load(open(path))))
    print("OK" if not errors else "INVALID: " + "; ".join(errors))
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(root.join("manifests/crd.yaml"))
        .args(files)
        .output()
        .context("running the schema validation")?;
    if !out.status.success() {
        bail!(
            "schema validation failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let report = String::from_utf8_lossy(&out.stdout);
    let verdicts: Vec<Option<String>> = report
        .lines()
        .map(|line| (line != "OK").then(|| line.to_owned()))
        .collect();
    if verdicts.len() != files.len() {
        bail!(
            "schema validation answered {} of {} files",
            verdicts.len(),
            files.len()
        );
    }
    Ok(verdicts)
}

fn run_quiet(command: &mut Command, what: &str) -> anyhow::Result<()> {
    output(command, what).map(drop)
}

fn output(command: &mut Command, what: &str) -> anyhow::Result<String> {
    let out = command
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}
