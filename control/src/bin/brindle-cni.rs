//! `brindle-cni`: the CNI network plugin (Calico's `calico`). A container runtime runs it with
//! `CNI_COMMAND` and friends in the environment and the network configuration on stdin.

fn main() -> std::process::ExitCode {
    control::cni::entry::run(control::cni::plugin::handle)
}
