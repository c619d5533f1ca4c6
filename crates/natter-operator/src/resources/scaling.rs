//! Scale and availability: an HPA per autoscaled component, a PDB per component with more
//! than one pod.

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use serde_json::json;

use super::{Component, component_name, labels, metadata, selector, typed};
use crate::crd::ChatCluster;

/// A component's CPU autoscaler, when its spec asks for one.
pub fn autoscaler(cluster: &ChatCluster, component: Component) -> Option<HorizontalPodAutoscaler> {
    let scaling = component.spec(cluster).autoscaling.as_ref()?;
    let name = component_name(cluster, component);
    Some(typed(json!({
        "metadata": metadata(cluster, &name, labels(cluster, Some(component), None)),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                "type": "Utilization", "averageUtilization": scaling.target_cpu_utilization_percentage}}}],
        },
    })))
}

/// A component's disruption budget, when it runs more than one pod.
pub fn disruption_budget(
    cluster: &ChatCluster,
    component: Component,
) -> Option<PodDisruptionBudget> {
    let own = component.spec(cluster);
    let pods = own
        .autoscaling
        .as_ref()
        .map_or(own.replicas, |a| a.min_replicas);
    if pods <= 1 {
        return None;
    }
    let name = component_name(cluster, component);
    Some(typed(json!({
        "metadata": metadata(cluster, &name, labels(cluster, Some(component), None)),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(cluster, component)}},
    })))
}
