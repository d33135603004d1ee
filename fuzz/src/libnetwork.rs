//! Docker's libnetwork remote driver and IPAM driver calls (moby/libnetwork `docs/remote.md`,
//! `docs/ipam.md`) as `brindle-node` answers them (`control/src/libnetwork`), against the real
//! embedded datastore (in memory, fresh for each input) with no dockerd behind the driver.
//!
//! Input: one call a line, `IpamDriver.RequestPool {"Pool": "10.1.0.0/24"}`, as dockerd
//! sends them in sequence (so that an address can be requested from a pool made by an earlier
//! line). `Join` and `Leave` are only decoded and checked: past their checks they create and
//! delete veths on the host.
//!
//! Holds for every input: an error is a message of bounded length; an address handed out is
//! an IPv4 address with its prefix length; a pool handed out has an id and a CIDR.

use std::sync::Arc;

use control::libnetwork::docker::DockerApi;
use control::libnetwork::types::{decode, docker_id, ipv4_address, EndpointRequest};
use control::libnetwork::{ipam, network, Driver};
use datastore::EmbeddedStore;
use serde_json::Value;

pub fn run(data: &[u8]) {
    let Ok(store) = EmbeddedStore::open_in_memory() else {
        panic!("the embedded store opens in memory");
    };
    let driver = Driver {
        store: Arc::new(store),
        node: "fuzz-node".into(),
        docker: DockerApi {
            socket: "/nonexistent/brindle-fuzz/docker.sock".into(),
        },
        mtu: 1500,
    };
    for line in data.split(|&b| b == b'\n') {
        let split = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
        let (call, body) = line.split_at(split);
        let Ok(call) = std::str::from_utf8(call) else {
            continue;
        };
        let answer = match call.split_once('.') {
            Some(("IpamDriver", call)) => ipam::handle(&driver, call, body),
            Some(("NetworkDriver", "Join" | "Leave")) => checked_only(body),
            Some(("NetworkDriver", call)) => network::handle(&driver, call, body),
            _ => continue,
        };
        match answer {
            Ok(value) => answer_holds(call, &value),
            Err(e) => {
                assert!(!e.0.is_empty());
                // The value quoted is cut (`shorten`); a decoding error quotes at most the
                // body.
                assert!(
                    e.0.len() <= body.len() + 512,
                    "{} bytes of error",
                    e.0.len()
                );
            }
        }
    }
}

/// What Join and Leave check before they touch the host.
fn checked_only(body: &[u8]) -> Result<Value, control::libnetwork::types::DriverError> {
    let req: EndpointRequest = decode("Join", body)?;
    docker_id("EndpointID", &req.endpoint_id)?;
    Ok(Value::Null)
}

fn answer_holds(call: &str, value: &Value) {
    match call {
        "IpamDriver.RequestAddress" => {
            let address = value["Address"].as_str().expect("an Address");
            assert!(address.contains('/'), "{address}");
            ipv4_address("Address", address).expect("an IPv4 address");
        }
        "IpamDriver.RequestPool" => {
            assert!(!value["PoolID"].as_str().expect("a PoolID").is_empty());
            assert!(value["Pool"].as_str().expect("a Pool").contains('/'));
        }
        _ => {}
    }
}
