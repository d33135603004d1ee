//! The network plugin's side of the TAP registry (`crate::tap_registry`): ADD registers a
//! TAP workload before its endpoint is written, so that the node finds the TAP when the
//! endpoint arrives; DEL removes the TAP and the registration, only ever this container's;
//! CHECK verifies both; and a live registration under a workload's name makes that name
//! taken, as an existing host interface does.

use std::path::Path;

use super::plugin::Attachment;
use super::plumbing;
use super::spec::{code, CniError, NetConf, WorkloadInterface};
use crate::tap_registry::{self, RegistryError, Release, TapRegistration};

fn registry_error(what: &str, e: RegistryError) -> CniError {
    CniError::new(code::IO_FAILURE, what.to_owned()).with_details(e)
}

/// Why `at`'s name cannot be taken by this ADD: a registration of a TAP whose namespace
/// still exists. One whose namespace is gone is stale (the TAP went with it), and an
/// unreadable one is of use to nobody: ADD replaces either.
pub fn taken_by(conf: &NetConf, at: &Attachment) -> Result<Option<String>, CniError> {
    match tap_registry::read(conf.tap_dir(), &at.host_interface) {
        Ok(Some(r)) if Path::new(&r.netns).exists() => {
            let who = if r.container_id == at.container_id {
                format!(
                    "this container ({}) is attached already: DEL it first",
                    r.container_id
                )
            } else {
                format!(
                    "it is container {}'s (DEL that container first)",
                    r.container_id
                )
            };
            Ok(Some(format!(
                "interface {} is registered as the TAP {} in {}: {who}",
                at.host_interface,
                r.ifname,
                r.netns.display()
            )))
        }
        Ok(Some(r)) => {
            tracing::warn!(interface = %at.host_interface, owner = %r.container_id, netns = %r.netns.display(), "replacing a TAP registration whose namespace is gone");
            Ok(None)
        }
        Ok(None) => Ok(None),
        Err(e @ RegistryError::Malformed { .. }) => {
            tracing::warn!(error = %e, "replacing an unreadable TAP registration");
            Ok(None)
        }
        Err(e) => Err(registry_error("cannot read the TAP registry", e)),
    }
}

/// Tells the node where `at`'s TAP is.
pub fn register(conf: &NetConf, at: &Attachment, netns: &str) -> Result<(), CniError> {
    let registration = TapRegistration {
        netns: netns.into(),
        ifname: at.ifname.clone(),
        container_id: at.container_id.clone(),
    };
    tap_registry::write(conf.tap_dir(), &at.host_interface, &registration)
        .map_err(|e| registry_error("cannot register the workload's TAP for the node", e))
}

/// DEL: removes this container's TAP and then its registration (in that order, so that a DEL
/// that fails half way still knows where the TAP is when it is retried). The TAP is looked
/// for when the netconf says TAP or this container registered one; it is in the container's
/// own namespace (`CNI_NETNS`, else the registered one), so it is never another container's.
/// Another container's registration under the same name (a pod's next sandbox) stays.
pub fn release(conf: &NetConf, at: &Attachment, netns: &str) -> Result<(), CniError> {
    let dir = conf.tap_dir();
    let ours = match tap_registry::read(dir, &at.host_interface) {
        Ok(Some(r)) if r.container_id == at.container_id => Some(r),
        Ok(_) | Err(RegistryError::Malformed { .. }) => None,
        Err(e) => return Err(registry_error("cannot read the TAP registry", e)),
    };
    if conf.workload_interface == WorkloadInterface::Tap || ours.is_some() {
        let (netns, ifname) = match &ours {
            Some(r) if netns.is_empty() => (r.netns.display().to_string(), r.ifname.clone()),
            _ => (netns.to_owned(), at.ifname.clone()),
        };
        plumbing::tap::unwire(&netns, &ifname).map_err(|e| {
            CniError::new(code::PLUMBING, "cannot remove the workload's TAP").with_details(e)
        })?;
    }
    match tap_registry::release(dir, &at.host_interface, &at.container_id) {
        Ok(Release::Kept { owner }) => {
            tracing::warn!(interface = %at.host_interface, %owner, "TAP registration belongs to another container; left alone");
            Ok(())
        }
        Ok(Release::Absent | Release::Removed(_)) => Ok(()),
        Err(e) => Err(registry_error("cannot remove the TAP registration", e)),
    }
}

/// CHECK: the registration is this container's and names its namespace and interface.
pub fn check(conf: &NetConf, at: &Attachment, netns: &str) -> Result<(), CniError> {
    let mismatch = |msg: String| CniError::new(code::PLUMBING, msg);
    let r = tap_registry::read(conf.tap_dir(), &at.host_interface)
        .map_err(|e| mismatch(e.to_string()))?
        .ok_or_else(|| {
            mismatch(format!(
                "no TAP registration for {} in {}",
                at.host_interface,
                conf.tap_dir().display()
            ))
        })?;
    if r.container_id != at.container_id || r.netns != Path::new(netns) || r.ifname != at.ifname {
        return Err(mismatch(format!(
            "the TAP registration for {} is container {}'s {} in {}, not {}'s {} in {netns}",
            at.host_interface,
            r.container_id,
            r.ifname,
            r.netns.display(),
            at.container_id,
            at.ifname
        )));
    }
    Ok(())
}
