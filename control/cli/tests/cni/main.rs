//! `brindle-cni` and `brindle-ipam` run exactly as a container runtime runs them: the real
//! binaries in a `CNI_PATH` directory, `CNI_COMMAND`/`CNI_CONTAINERID`/`CNI_NETNS`/`CNI_IFNAME`
//! in the environment, the network configuration on stdin, against the embedded store (a temp
//! file) and a real etcd started by the test. Every scenario runs against both backends.
//! Root: the tests create network namespaces (named with the test and the process id) and
//! remove them, and the veths in them, when they end.

mod fixture;
mod lifecycle;
mod pools;
mod robustness;

use fixture::Cluster;
use lifecycle::*;
use pools::*;
use robustness::*;

/// Runs each scenario once per backend.
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod embedded {
            $( #[test] fn $scenario() { super::$scenario(super::Cluster::embedded(&format!("e-{}", &stringify!($scenario)[..8]))) } )*
        }
        mod etcd {
            $( #[test] fn $scenario() { super::$scenario(super::Cluster::etcd(&format!("d-{}", &stringify!($scenario)[..8]))) } )*
        }
    };
}

on_both_backends!(
    add_wires_the_workload_and_records_its_endpoint_and_profile,
    del_twice_releases_everything_and_del_of_an_unknown_container_succeeds,
    check_passes_after_add_and_fails_once_the_veth_is_gone,
    a_network_bound_to_a_custom_pool_hands_out_its_addresses,
    bad_netconf_and_exhausted_pools_are_cni_error_objects,
    a_failed_add_leaks_nothing,
    twenty_parallel_adds_get_twenty_distinct_addresses,
    containers_never_share_or_remove_each_others_interfaces,
    an_address_asked_for_in_cni_args_is_assigned_or_refused_by_name,
);
