//! `brindle-cni`: the CNI network plugin (Calico's `calico`). A container runtime runs it with
//! `CNI_COMMAND` and friends in the environment and the network configuration on stdin.

fn main() -> std::process::ExitCode {
    cli::cni::entry::run(cli::cni::plugin::handle)
}
