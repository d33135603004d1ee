//! `brindle-ipam`: the CNI IPAM plugin (Calico's `calico-ipam`), usually run by `brindle-cni`.

fn main() -> std::process::ExitCode {
    cli::cni::entry::run(cli::cni::ipam_plugin::handle)
}
