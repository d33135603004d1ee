//! STATUS (CNI spec 1.1.0, "STATUS: Check plugin status"): the plugins can serve ADD when the
//! datastore answers and holds an IP pool to allocate from; otherwise error 50, "plugin not
//! available", with what is missing. A plugin that delegates asks its IPAM plugin too.

use super::cluster::{open_datastore, read_pools};
use super::spec::{code, CniError, NetConf};

pub fn ready(conf: &NetConf) -> Result<(), CniError> {
    let unavailable =
        |msg: &str, e: CniError| CniError::new(code::PLUGIN_NOT_AVAILABLE, msg).with_details(e);
    let store =
        open_datastore(conf).map_err(|e| unavailable("the datastore cannot be opened", e))?;
    let pools = read_pools(&*store).map_err(|e| unavailable("the datastore does not answer", e))?;
    if !pools.iter().any(|p| !p.spec.is_disabled()) {
        return Err(CniError::new(
            code::PLUGIN_NOT_AVAILABLE,
            "no enabled IP pool to allocate from: create one (brindlectl apply) or start brindle-node, which creates the default pool",
        ));
    }
    Ok(())
}
