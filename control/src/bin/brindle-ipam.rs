//! `brindle-ipam`: the CNI IPAM plugin (Calico's `calico-ipam`), usually run by `brindle-cni`.

fn main() -> std::process::ExitCode {
    control::cni::entry::run(control::cni::ipam_plugin::handle)
}
