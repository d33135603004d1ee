//! `ipam split NUMBER --cidr=CIDR | --name=POOL` (calicoctl's `commands/ipam/split.go`):
//! replaces an IPPool by NUMBER (a power of two) pools of equal size, `split-<pool>-<i>`, each a
//! copy of the pool with its part of the CIDR. As calicoctl: the datastore must be locked
//! (`datastore migrate lock`), the pool is disabled first, the new pools are created without
//! the overlap check (they overlap the old pool until it goes) and the old pool is deleted.
//! Unlike calicoctl, NUMBER and the new pools are checked before anything is written, so a
//! bad NUMBER does not leave the pool disabled.

use datastore::Datastore;
use ipnet::IpNet;
use resources::{IpPool, Kind, Resource};

use super::store::{self, Identity};
use super::{cluster_info, CtlError};

/// `number` parts of `net`, in address order; `number` must be a power of two above 1.
pub fn split_cidr(net: IpNet, number: u64) -> Result<Vec<IpNet>, String> {
    if number < 2 || !number.is_power_of_two() {
        return Err(format!(
            "number to split CIDR into is not a valid power of 2: {number}"
        ));
    }
    let bits = number.trailing_zeros() as u8;
    let new_len = net
        .prefix_len()
        .checked_add(bits)
        .filter(|l| *l <= net.max_prefix_len())
        .ok_or_else(|| {
            format!("the CIDR {net} is not large enough to be split into {number} parts")
        })?;
    net.trunc()
        .subnets(new_len)
        .map(|s| s.collect())
        .map_err(|e| e.to_string())
}

/// Parses NUMBER as calicoctl does (a decimal integer).
pub fn parse_number(arg: &str) -> Result<u64, CtlError> {
    arg.trim()
        .parse::<i64>()
        .ok()
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| {
            CtlError::new(format!(
                "error reading number to split IP pools into. {arg} is not a valid number"
            ))
        })
}

fn find_pool(
    ds: &dyn Datastore,
    cidr: Option<&str>,
    name: Option<&str>,
) -> Result<IpPool, CtlError> {
    if let Some(name) = name {
        let r = store::get_existing(ds, &Identity::new(Kind::IpPool, None, name))
            .map_err(|e| CtlError::new(format!("unable to find IP pool with name {name}: {e}")))?;
        return r
            .as_ip_pool()
            .cloned()
            .ok_or_else(|| CtlError::new(format!("unable to find IP pool with name {name}")));
    }
    let cidr = cidr.unwrap_or_default();
    let want: IpNet = cidr
        .trim()
        .parse()
        .map_err(|_| CtlError::new(format!("invalid --cidr '{cidr}': not a CIDR")))?;
    let (pools, _) = store::list(ds, Kind::IpPool, None).map_err(|_| {
        CtlError::new(format!(
            "unable to list IP pools to find the pool specified by {cidr}"
        ))
    })?;
    pools
        .iter()
        .filter_map(Resource::as_ip_pool)
        .find(|p| p.spec.network() == Some(want))
        .cloned()
        .ok_or_else(|| {
            CtlError::new(format!(
                "unable to find IP pool covering the specified CIDR {cidr}"
            ))
        })
}

pub fn split(
    ds: &dyn Datastore,
    number: &str,
    cidr: Option<&str>,
    name: Option<&str>,
    out: &mut String,
) -> Result<(), CtlError> {
    let number = parse_number(number)?;
    let (cidr, name) = (
        cidr.filter(|c| !c.is_empty()),
        name.filter(|n| !n.is_empty()),
    );
    if cidr.is_none() && name.is_none() {
        return Err(CtlError::new(
            "no name or CIDR provided. Provide a name or CIDR to denote the IP pool to split",
        ));
    }
    cluster_info::require_locked(ds, "in order split the IP pools")?;
    let old = find_pool(ds, cidr, name)?;
    let old_name = old.metadata.name.clone();
    let net = old.spec.network().ok_or_else(|| {
        CtlError::new(format!(
            "error reading CIDR {} before attempting to split it",
            old.spec.cidr
        ))
    })?;
    let split_err = |e: String| {
        CtlError::new(format!(
            "error splitting the CIDR {} into {number} CIDRs: {e}",
            old.spec.cidr
        ))
    };
    // A part smaller than a block would be an invalid pool; checking here also bounds how
    // many parts are ever computed.
    let block = old.spec.effective_block_size();
    let room = block.saturating_sub(u32::from(net.prefix_len()));
    if number.is_power_of_two() && room < 64 && number > 1u64 << room {
        return Err(split_err(format!(
            "each part would be smaller than the pool's blockSize /{block}"
        )));
    }
    let parts = split_cidr(net, number).map_err(split_err)?;
    let mut new_pools = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let mut p = old.clone();
        // calicoctl keeps the name within 253 characters by cutting the old one at 245.
        let base: String = old_name.chars().take(245).collect();
        p.metadata = resources::Metadata {
            name: format!("split-{base}-{i}"),
            resource_version: None,
            uid: None,
            creation_timestamp: None,
            ..old.metadata.clone()
        };
        p.spec.cidr = part.to_string();
        p.spec.disabled = None;
        let r = Resource::IpPool(p);
        r.validate().map_err(|e| split_err(e.to_string()))?;
        new_pools.push(r);
    }

    let mut disabled = old.clone();
    disabled.spec.disabled = Some(true);
    store::update(ds, &Resource::IpPool(disabled))
        .map_err(|e| CtlError::new(format!("error disabling IP pool {old_name}: {e}")))?;
    for r in &new_pools {
        let cidr = r.as_ip_pool().map_or("", |p| p.spec.cidr.as_str());
        store::create_unchecked(ds, r).map_err(|e| {
            CtlError::new(format!(
                "error using unsafe create to make split pool with cidr {cidr}: {e}"
            ))
        })?;
    }
    store::delete(ds, &Identity::new(Kind::IpPool, None, &old_name), None).map_err(|e| {
        CtlError::new(format!(
            "error removing the IP pool that was split {old_name}: {e}"
        ))
    })?;
    out.push_str(&format!(
        "IP Pool {old_name} was successfully split into {number} smaller pools.\n"
    ));
    for r in &new_pools {
        let cidr = r.as_ip_pool().map_or("", |p| p.spec.cidr.as_str());
        out.push_str(&format!("Created {} with CIDR {cidr}.\n", r.name()));
    }
    out.push_str("Please refer to the documentation for final steps.\n");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_into_powers_of_two() {
        let net: IpNet = "10.0.0.0/16".parse().unwrap();
        let parts: Vec<String> = split_cidr(net, 4)
            .unwrap()
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(
            parts,
            [
                "10.0.0.0/18",
                "10.0.64.0/18",
                "10.0.128.0/18",
                "10.0.192.0/18"
            ]
        );
        for bad in [0, 1, 3, 6] {
            assert_eq!(
                split_cidr(net, bad).unwrap_err(),
                format!("number to split CIDR into is not a valid power of 2: {bad}")
            );
        }
        let small: IpNet = "10.0.0.0/31".parse().unwrap();
        assert_eq!(
            split_cidr(small, 4).unwrap_err(),
            "the CIDR 10.0.0.0/31 is not large enough to be split into 4 parts"
        );
        let v6: IpNet = "fd00::/120".parse().unwrap();
        assert_eq!(split_cidr(v6, 2).unwrap()[1].to_string(), "fd00::80/121");
    }
}
