//! Chart and manifest checks: `helm lint`, `helm template` with default and full values,
//! every rendered object validated against the Kubernetes schemas, and the ChatCluster
//! examples validated against the generated CRD schema.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use crate::tools;

/// Runs every check; names the first that fails.
pub fn check(root: &Path) -> anyhow::Result<()> {
    let helm = tools::helm(root)?;
    let chart = root.join("charts/natter");
    let full = chart.join("ci/full-values.yaml");
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
        eprintln!(
            "xtask: chart renders and validates ({} values)",
            if values.is_some() { "full" } else { "default" }
        );
    }
    validate_kubernetes(&std::fs::read_to_string(
        root.join("manifests/install.yaml"),
    )?)?;
    for example in ["minimal.yaml", "full.yaml"] {
        let file = root.join("manifests/examples").join(example);
        let children = output(
            Command::new(crate::cargo_bin())
                .current_dir(root)
                .args(["run", "--quiet", "--package", "natter", "--", "render"])
                .arg(&file),
            "natter render",
        )?;
        validate_kubernetes(&children)?;
        eprintln!("xtask: the operator's children for {example} validate");
    }
    validate_examples(root)?;
    eprintln!("xtask: chart and manifests OK");
    Ok(())
}

/// Every object against the Kubernetes 1.33 schemas, unknown fields refused. Custom
/// resources are skipped by the tool; the examples are checked by [`validate_examples`].
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

/// minimal.yaml and full.yaml pass the CRD's schema; invalid.yaml fails it.
fn validate_examples(root: &Path) -> anyhow::Result<()> {
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
    print(path, "OK" if not errors else "INVALID: " + "; ".join(errors))
"#;
    let examples = root.join("manifests/examples");
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(root.join("manifests/crd.yaml"))
        .args(["minimal.yaml", "full.yaml", "invalid.yaml"].map(|f| examples.join(f)))
        .output()
        .context("running the example validation")?;
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "example validation failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for line in report.lines() {
        let ok = line.ends_with(" OK");
        if line.contains("invalid.yaml") == ok {
            bail!("example {line}");
        }
    }
    eprint!("{report}");
    Ok(())
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
