//! A CNI invocation (CNI spec 1.1, "Execution protocol"): the runtime's environment
//! (`CNI_COMMAND`, `CNI_CONTAINERID`, `CNI_NETNS`, `CNI_IFNAME`, `CNI_ARGS`, `CNI_PATH`) and
//! the network configuration on stdin, read by `brindle-cni`'s entry point, then named as ADD
//! names the workload before it touches the datastore or the host (`Attachment::of`, the
//! endpoint's validation).
//!
//! Input: `NAME=value` lines, an empty line, then stdin. Without an empty line the whole input
//! is stdin, under an ADD with Kubernetes' CNI_ARGS (so that plain configurations from the
//! tests are seeds as they are).
//!
//! Holds for every input: an error carries a CNI error code and a message and serializes as
//! the spec's error object; a workload endpoint that validates has a datastore key made of
//! plain segments (no `..`, no empty segment) and a host interface Linux can name.

use std::collections::BTreeMap;
use std::io::Cursor;

use cli::cni::entry::serve;
use cli::cni::plugin::Attachment;
use cli::cni::spec::CniError;
use resources::Resource;
use serde_json::Value;

const DEFAULT_ENV: [(&str, &str); 5] = [
    ("CNI_COMMAND", "ADD"),
    ("CNI_CONTAINERID", "3f9b2c7a1d44"),
    ("CNI_NETNS", "/var/run/netns/fuzz"),
    ("CNI_IFNAME", "eth0"),
    (
        "CNI_ARGS",
        "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0",
    ),
];

pub fn run(data: &[u8]) {
    let (env, stdin) = split(data);
    let result = serve(
        |name| env.get(name).cloned(),
        &mut Cursor::new(stdin),
        name_workload,
    );
    if let Err(e) = result {
        assert!(e.code > 0, "{e:?}");
        assert!(!e.msg.is_empty(), "{e:?}");
        let printed = serde_json::to_value(&e).expect("a CNI error serializes");
        assert_eq!(printed["code"], Value::from(e.code));
    }
}

/// ADD's steps before the datastore: the attachment's names, then the endpoint's validation.
fn name_workload(req: &cli::cni::entry::Request) -> Result<Value, CniError> {
    let at = Attachment::of(req)?;
    let endpoint = Resource::from(at.endpoint(None, ""));
    if endpoint.validate().is_err() {
        return Ok(Value::Null);
    }
    let key = endpoint.key();
    let path = key
        .strip_prefix("/calico/resources/v3/projectcalico.org/")
        .unwrap_or_else(|| panic!("key {key:?}"));
    for segment in path.split('/') {
        assert!(
            !segment.is_empty() && segment != "." && segment != "..",
            "{key:?} for {:?}",
            req.invocation
        );
    }
    let ifname = &at.host_interface;
    assert!(
        ifname.len() <= 15
            && ifname.starts_with("cali")
            && ifname.bytes().all(|b| b.is_ascii_alphanumeric()),
        "host interface {ifname:?}"
    );
    Ok(Value::Null)
}

/// The environment and stdin of an input.
fn split(data: &[u8]) -> (BTreeMap<String, String>, &[u8]) {
    let blank = data.windows(2).position(|w| w == b"\n\n");
    let Some(at) = blank else {
        let env = DEFAULT_ENV
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        return (env, data);
    };
    let env = String::from_utf8_lossy(&data[..at])
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    (env, &data[at + 2..])
}
