//! Calico's etcd key layout (libcalico-go's `backend/model` paths), shared by every user of
//! the datastore so that the same data can be read by calicoctl-minded tools.

/// Prefix of every v3 resource.
pub const RESOURCES: &str = "/calico/resources/v3/projectcalico.org/";

/// `/calico/resources/v3/projectcalico.org/<plural>/[<namespace>/]<name>`
pub fn resource(plural: &str, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{RESOURCES}{plural}/{ns}/{name}"),
        None => format!("{RESOURCES}{plural}/{name}"),
    }
}

/// Prefix for listing resources of a kind, optionally within one namespace.
pub fn resource_prefix(plural: &str, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) => format!("{RESOURCES}{plural}/{ns}/"),
        None => format!("{RESOURCES}{plural}/"),
    }
}

/// IPAM block `a.b.c.d/NN` -> `/calico/ipam/v2/assignment/ipv4/block/a.b.c.d-NN`.
pub fn ipam_block(cidr: &str) -> String {
    format!(
        "/calico/ipam/v2/assignment/ipv4/block/{}",
        cidr.replace('/', "-")
    )
}

pub const IPAM_BLOCKS: &str = "/calico/ipam/v2/assignment/ipv4/block/";

/// Block affinity of `node` -> `/calico/ipam/v2/host/<node>/ipv4/block/a.b.c.d-NN`.
pub fn ipam_affinity(node: &str, cidr: &str) -> String {
    format!(
        "/calico/ipam/v2/host/{node}/ipv4/block/{}",
        cidr.replace('/', "-")
    )
}

pub fn ipam_affinity_prefix(node: &str) -> String {
    format!("/calico/ipam/v2/host/{node}/ipv4/block/")
}

pub const IPAM_HOSTS: &str = "/calico/ipam/v2/host/";

/// IPAM handle -> `/calico/ipam/v2/handle/<id>`.
pub fn ipam_handle(id: &str) -> String {
    format!("/calico/ipam/v2/handle/{id}")
}

pub const IPAM_HANDLES: &str = "/calico/ipam/v2/handle/";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_calicos_layout() {
        assert_eq!(
            resource("ippools", None, "default-ipv4-ippool"),
            "/calico/resources/v3/projectcalico.org/ippools/default-ipv4-ippool"
        );
        assert_eq!(
            resource("networkpolicies", Some("ns1"), "p"),
            "/calico/resources/v3/projectcalico.org/networkpolicies/ns1/p"
        );
        assert_eq!(
            ipam_block("192.168.0.0/26"),
            "/calico/ipam/v2/assignment/ipv4/block/192.168.0.0-26"
        );
        assert_eq!(
            ipam_affinity("node1", "192.168.0.0/26"),
            "/calico/ipam/v2/host/node1/ipv4/block/192.168.0.0-26"
        );
        assert_eq!(
            ipam_handle("k8s-pod-network.abc"),
            "/calico/ipam/v2/handle/k8s-pod-network.abc"
        );
    }
}
