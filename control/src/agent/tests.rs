//! The agent against a real (embedded) datastore: what it reads besides the datastore.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cli::tap_registry::{self, TapRegistration};
use resources::Resource;

use super::env::{NodeAddress, NodeEnv};
use super::fixtures::{embedded_store, endpoint};
use super::{Agent, Identity};
use crate::config::TapWorkload;

pub(super) struct Dir(pub(super) PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(super) fn agent_on_embedded_store(
    dir: &Path,
) -> (Agent, std::sync::Arc<dyn datastore::Datastore>) {
    let store = embedded_store(dir);
    let address = (Ipv4Addr::new(10, 99, 0, 1), 24);
    let env = NodeEnv {
        node_name: "n1".into(),
        address: NodeAddress::Static(address.0, address.1),
        as_number: None,
        default_pool: None,
    };
    let identity = Identity {
        node_name: "n1".into(),
        address,
        uplink: "eth0".into(),
    };
    let agent = Agent::start(store.clone(), &env, identity, dir.join("taps")).unwrap();
    (agent, store)
}

/// Polls until the agent reports a change (the embedded store's watch is asynchronous).
fn poll_until_changed(agent: &mut Agent) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if agent.poll() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
fn a_tap_registered_just_before_its_endpoint_is_its_port_and_a_registration_gone_is_seen_unprompted(
) {
    let dir = Dir(std::env::temp_dir().join(format!("brindle-agent-taps-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir.0);
    std::fs::create_dir_all(&dir.0).unwrap();
    let (mut agent, store) = agent_on_embedded_store(&dir.0);
    assert!(agent.desired().workloads.is_empty());

    // brindle-cni's order: the registration, then the endpoint.
    let Ok(Resource::WorkloadEndpoint(mut wep)) =
        Resource::from_kv(&endpoint("n1", "a", "10.1.0.1"))
    else {
        unreachable!()
    };
    wep.spec.container_id = "c1".into();
    let registration = TapRegistration {
        netns: "/run/netns/c1".into(),
        ifname: "eth0".into(),
        container_id: "c1".into(),
    };
    tap_registry::write(&dir.0.join("taps"), "calia", &registration).unwrap();
    let wep = Resource::WorkloadEndpoint(wep);
    store.put(&wep.key(), &wep.to_stored_json()).unwrap();
    assert!(poll_until_changed(&mut agent), "the endpoint never arrived");
    let desired = agent.desired();
    assert_eq!(desired.workloads.len(), 1);
    assert_eq!(
        desired.workloads[0].tap,
        Some(TapWorkload {
            netns: "/run/netns/c1".into(),
            ifname: "eth0".into(),
        }),
        "the registration was not read with its endpoint"
    );

    // No datastore change: the registration going is noticed all the same.
    std::fs::remove_file(dir.0.join("taps").join("calia.json")).unwrap();
    assert!(poll_until_changed(&mut agent));
    assert_eq!(agent.desired().workloads[0].tap, None);
}
