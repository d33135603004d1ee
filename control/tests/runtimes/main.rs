//! brindle-cni driven by the real container runtimes of this machine (RUNTIMES.md): podman
//! with its CNI backend and containerd's `ctr run --cni`, each inside a node namespace with
//! brindle-node serving the workloads. Root: namespaces, mounts, the runtimes' daemons.

mod containerd;
mod podman;
mod support;

#[test]
fn podman_containers_get_addresses_reach_each_other_and_release_them_on_rm() {
    podman::podman_containers_get_addresses_reach_each_other_and_release_them_on_rm();
}

#[test]
fn podman_chains_the_reference_tuning_plugin_after_brindle_cni() {
    podman::podman_chains_the_reference_tuning_plugin_after_brindle_cni();
}

#[test]
fn ctr_run_cni_containers_get_addresses_reach_each_other_and_release_them_with_the_task() {
    containerd::ctr_run_cni_containers_get_addresses_reach_each_other_and_release_them_with_the_task();
}
