//! `brindle-cni` and `brindle-ipam` run exactly as a container runtime runs them: the real
//! binaries in a `CNI_PATH` directory, `CNI_COMMAND`/`CNI_CONTAINERID`/`CNI_NETNS`/`CNI_IFNAME`
//! in the environment, the network configuration on stdin, against the embedded store (a temp
//! file) and a real etcd started by the test. Every scenario runs against both backends.
//! Root: the tests create network namespaces (named with the test and the process id) and
//! remove them, and the veths in them, when they end.

mod bandwidth;
mod fixture;
mod gc_status;
mod interrupted;
mod lifecycle;
mod nsenter;
mod pools;
mod robustness;
mod tap;

use bandwidth::*;
use fixture::Cluster;
use gc_status::*;
use interrupted::*;
use lifecycle::*;
use pools::*;
use robustness::*;
use tap::*;

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
    tap_workloads_are_wired_registered_checked_and_removed,
    tap_adds_that_fail_leak_nothing_and_registrations_stay_their_containers,
    gc_releases_what_the_runtime_no_longer_lists_and_nothing_else,
    status_is_ready_with_a_pool_and_error_50_without_one_or_a_datastore,
    a_plugin_killed_mid_add_or_del_leaks_nothing_once_the_runtime_repairs,
    names_and_paths_from_the_runtime_are_checked_before_use,
    bandwidth_limits_land_in_the_endpoint_and_check_verifies_them,
    bad_bandwidth_limits_are_refused_before_anything_is_allocated,
    a_locked_datastore_makes_add_and_del_try_again_later,
);

#[test]
fn under_nsenter_the_host_end_is_found_checked_and_removed_in_the_callers_namespace() {
    nsenter::under_nsenter_the_host_end_is_found_checked_and_removed_in_the_callers_namespace(
        Cluster::embedded("e-nsenter"),
    )
}
