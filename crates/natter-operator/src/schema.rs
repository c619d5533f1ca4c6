//! A ChatCluster document checked against the generated CRD schema the way the API
//! server's strict field validation does: a field the schema does not know is refused
//! (with its path), instead of being dropped and its default silently used.

use kube::CustomResourceExt;
use serde_json::Value;

use crate::crd::ChatCluster;

/// Paths (`spec.chat.autoscaling.targetCpu…`) of the fields in `document` that the
/// ChatCluster schema does not know. `apiVersion`, `kind` and `metadata` are the API
/// server's own and are not looked into.
pub fn unknown_fields(document: &Value) -> Vec<String> {
    let crd = ChatCluster::crd();
    let schema = crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .map(|s| serde_json::to_value(s).expect("schemas serialise"))
        .unwrap_or_default();
    let mut found = Vec::new();
    let Some(fields) = document.as_object() else {
        return found;
    };
    for (name, value) in fields {
        if matches!(name.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        match schema["properties"].get(name) {
            Some(inner) => walk(value, inner, name, &mut found),
            None => found.push(name.clone()),
        }
    }
    found
}

fn walk(value: &Value, schema: &Value, path: &str, found: &mut Vec<String>) {
    if schema["x-kubernetes-preserve-unknown-fields"] == Value::Bool(true) {
        return;
    }
    match value {
        Value::Object(fields) => {
            for (name, inner) in fields {
                let here = format!("{path}.{name}");
                match (
                    schema["properties"].get(name),
                    schema.get("additionalProperties"),
                ) {
                    (Some(known), _) => walk(inner, known, &here, found),
                    (None, Some(each)) if each.is_object() => walk(inner, each, &here, found),
                    (None, Some(Value::Bool(true))) => {}
                    _ => found.push(here),
                }
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                walk(item, &schema["items"], &format!("{path}[{index}]"), found);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_are_named_by_path_and_known_ones_pass() {
        let document = json!({
            "apiVersion": "natter.dev/v1alpha1", "kind": "ChatCluster",
            "metadata": {"name": "x", "labels": {"anything": "goes"}},
            "spec": {
                "image": {"tag": "1", "pullSecrets": ["registry"]},
                "website": {"env": [{"name": "A", "value": "1"}, {"name": "B", "valeu": "2"}]},
                "chat": {"autoscaling": {"minReplicas": 1, "maxReplicas": 2,
                          "targetCpuUtilizationPercentage": 70, "targetCPUUtilizationPercentage": 70}},
                "ingress": {"annotations": {"free": "form"}},
                "database": {"secretRef": {"name": "db", "key": "url"}},
                "redis": {"secretRef": {"name": "r", "key": "url"}},
                "colour": "blue",
            },
        });
        assert_eq!(
            unknown_fields(&document),
            [
                "spec.chat.autoscaling.targetCpuUtilizationPercentage",
                "spec.colour",
                "spec.website.env[1].valeu",
            ]
        );
    }
}
