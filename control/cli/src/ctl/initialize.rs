//! What calicoctl's writes do first (libcalico-go `EnsureInitialized`, which calicoctl calls
//! before every create, apply and replace): the built-in tiers exist, each created with
//! Calico's order and default action unless it is there already.

use resources::Resource;

use super::store::{self, ResourceError};

/// The tiers `EnsureInitialized` creates: `default` (order 1000000, Deny) and the two tiers of
/// Kubernetes' admin network policies, `kube-admin` (1000, Pass) and `kube-baseline`
/// (10000000, Pass).
const BUILT_IN_TIERS: &str = "\
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: default}
spec: {order: 1000000, defaultAction: Deny}
---
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: kube-admin}
spec: {order: 1000, defaultAction: Pass}
---
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: kube-baseline}
spec: {order: 10000000, defaultAction: Pass}
";

fn built_in_tiers() -> Vec<Resource> {
    resources::load_documents(BUILT_IN_TIERS).expect("the built-in tiers are valid")
}

/// Creates the built-in tiers that do not exist. As calicoctl, a failure here does not fail
/// the user's command (the write that follows reports any datastore problem); it is logged.
pub fn ensure_initialized(ds: &dyn datastore::Datastore) {
    for tier in built_in_tiers() {
        match store::create(ds, &tier) {
            Ok(_) | Err(ResourceError::AlreadyExists(_)) => {}
            Err(e) => {
                tracing::info!(error = %e, "unable to initialize the built-in tier {}", tier.name())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_built_in_tiers_load() {
        let names: Vec<String> = super::built_in_tiers()
            .iter()
            .map(|t| t.name().to_string())
            .collect();
        assert_eq!(names, ["default", "kube-admin", "kube-baseline"]);
    }
}
