//! Putting back what is this node's own when the datastore comes back without it.
//!
//! Why: an etcd that lost its data (or a new cluster at the same address) holds none of the
//! cluster's records. Read as it is, it would tell the node it has no workloads: the dataplane
//! would drop their ports and routes, BGP would withdraw their blocks, and their addresses
//! could be handed out again. So the node keeps a copy of its own records, as it last read
//! them from a datastore it recognised, and writes them back when it finds the datastore
//! reset, before it reads the datastore again: the dataplane never sees them go.
//!
//! A reset datastore is recognised by ClusterInformation `default` (which every node creates
//! when missing, as calico-node does): gone, or holding another `clusterGUID` than the one the
//! copy was taken under; or, once another node has put that back, by this node's own Node
//! being gone. A datastore that is merely unreachable or read-only is not a reset: its reads
//! fail, and the node keeps its state and retries.
//!
//! What is the node's own: its Node; its WorkloadEndpoints and the profiles they name (its
//! brindle-cni created them); its IPAM block affinities, the blocks affine to it and the
//! handles their addresses are held under (so that a DEL still releases them and no other
//! node is given them); and, because those blocks mean nothing without them, the IP pools and
//! ClusterInformation, which the first node back writes and the others find there. Policies,
//! BGP configuration and peers belong to the cluster's administrator, who restores them.
//! Each record is created only where it is missing: a record someone wrote since wins.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use datastore::{keys, Datastore, DatastoreError, KeyValue};
use ipam::block::AllocationBlock;
use resources::Resource;

/// How stale the copy may be while the node's own records change.
pub const RETAKE_AFTER: Duration = Duration::from_secs(1);
/// How stale it may be at most: IPAM blocks are not watched, so an address released after
/// the last change the node saw is forgotten by then.
pub const REFRESH_EVERY: Duration = Duration::from_secs(30);

/// The node's own records as last read, by key.
#[derive(Debug, Default)]
pub struct OwnRecords {
    /// The `clusterGUID` the copy was taken under.
    guid: Option<String>,
    /// The key of the node's Node, when the copy holds it.
    node_key: Option<String>,
    records: BTreeMap<String, Vec<u8>>,
    taken_at: Option<Instant>,
    /// The node's records changed since the copy was taken.
    stale: bool,
}

impl OwnRecords {
    /// Marks the copy out of date; [`OwnRecords::retake_if_due`] takes it again.
    pub fn mark_stale(&mut self) {
        self.stale = true;
    }

    /// Takes the copy again if it is out of date and was not taken in the last
    /// [`RETAKE_AFTER`], or was taken [`REFRESH_EVERY`] ago. A failed read keeps the old
    /// copy.
    pub fn retake_if_due(&mut self, store: &dyn Datastore, node: &str) {
        let due = match self.taken_at {
            None => true,
            Some(t) if self.stale => t.elapsed() >= RETAKE_AFTER,
            Some(t) => t.elapsed() >= REFRESH_EVERY,
        };
        if !due {
            return;
        }
        if let Err(e) = self.take(store, node) {
            tracing::debug!(error = %e, "cannot copy the node's own records; keeping the last copy");
        }
    }

    /// Reads the node's own records. A datastore that looks reset (ClusterInformation missing
    /// or not the one of the last copy, or the node's Node gone) is not read: the copy of the
    /// cluster the node knew is kept, to be put back ([`OwnRecords::put_back_if_reset`]).
    pub fn take(&mut self, store: &dyn Datastore, node: &str) -> Result<(), DatastoreError> {
        let Some((info, guid)) = cluster_information(store)? else {
            return Ok(());
        };
        if self.guid.is_some() && self.guid != guid {
            return Ok(());
        }
        let node_kv = store.get(&keys::resource("nodes", None, node))?;
        if self.node_key.is_some() && node_kv.is_none() {
            // Reset, with the cluster information already put back by another node.
            return Ok(());
        }
        let mut records = BTreeMap::new();
        let mut add = |kv: KeyValue| {
            records.insert(kv.key, kv.value);
        };
        add(info);
        let (pools, _) = store.list(&keys::resource_prefix("ippools", None))?;
        pools.into_iter().for_each(&mut add);
        let node_key = node_kv.as_ref().map(|kv| kv.key.clone());
        node_kv.into_iter().for_each(&mut add);
        let mut profiles = BTreeSet::new();
        let (endpoints, _) = store.list(&keys::resource_prefix("workloadendpoints", None))?;
        for kv in endpoints {
            if let Ok(Resource::WorkloadEndpoint(wep)) = Resource::from_kv(&kv) {
                if wep.spec.node == node {
                    profiles.extend(wep.spec.profiles.iter().cloned());
                    add(kv);
                }
            }
        }
        for profile in profiles {
            if let Some(kv) = store.get(&keys::resource("profiles", None, &profile))? {
                add(kv);
            }
        }
        let mut handles = BTreeSet::new();
        let (affinities, _) = store.list(&keys::ipam_affinity_prefix(node))?;
        for affinity in affinities {
            let cidr = affinity
                .key
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned();
            add(affinity);
            if let Some(kv) = store.get(&keys::ipam_block(&cidr))? {
                if let Ok(block) = AllocationBlock::decode(&kv.value) {
                    let held = block.allocated().filter_map(|(_, a)| a.handle_id.clone());
                    handles.extend(held);
                }
                add(kv);
            }
        }
        for handle in handles {
            if let Some(kv) = store.get(&keys::ipam_handle(&handle))? {
                add(kv);
            }
        }
        self.guid = guid;
        self.node_key = node_key;
        self.records = records;
        self.taken_at = Some(Instant::now());
        self.stale = false;
        Ok(())
    }

    /// If the datastore was reset since the copy was taken (its ClusterInformation is not the
    /// copy's, or the node's own Node is gone), writes the copy back where its records are
    /// missing (ClusterInformation last, so that a node that fails half way still sees a
    /// reset and tries again). Returns how many records were written.
    pub fn put_back_if_reset(&mut self, store: &dyn Datastore) -> Result<usize, DatastoreError> {
        let Some(copied_guid) = &self.guid else {
            return Ok(0);
        };
        let now = cluster_information(store)?;
        let same_cluster = now
            .as_ref()
            .is_some_and(|(_, g)| g.as_ref() == Some(copied_guid));
        // Another node may have put the cluster information back already: this node's own
        // Node gone tells the reset apart then.
        let node_gone = match &self.node_key {
            Some(key) => store.get(key)?.is_none(),
            None => false,
        };
        if same_cluster && !node_gone {
            return Ok(0);
        }
        let info_key = keys::resource("clusterinformations", None, "default");
        let mut written = 0;
        let last = self.records.iter().filter(|(k, _)| **k == info_key);
        for (key, value) in self
            .records
            .iter()
            .filter(|(k, _)| **k != info_key)
            .chain(last)
        {
            if key == &info_key && now.is_some() {
                // Another cluster's information: the datastore is not ours to overwrite.
                continue;
            }
            match store.create(key, value) {
                Ok(_) => written += 1,
                Err(DatastoreError::AlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        // From now on the datastore as it is, under the information it has (ours, put back,
        // or the one a node restarted meanwhile created), is the one the copy follows.
        if let Some((_, guid)) = now {
            self.guid = guid;
        }
        self.stale = true;
        Ok(written)
    }
}

/// ClusterInformation `default` and its `clusterGUID`, if it exists.
fn cluster_information(
    store: &dyn Datastore,
) -> Result<Option<(KeyValue, Option<String>)>, DatastoreError> {
    let key = keys::resource("clusterinformations", None, "default");
    let Some(kv) = store.get(&key)? else {
        return Ok(None);
    };
    let guid = match Resource::from_kv(&kv) {
        Ok(Resource::ClusterInformation(info)) => info.spec.cluster_guid.clone(),
        _ => None,
    };
    Ok(Some((kv, guid)))
}

#[cfg(test)]
mod tests {
    use datastore::{keys, Datastore};
    use resources::{ClusterInformationSpec, Metadata, Resource};

    use super::OwnRecords;
    use crate::agent::fixtures::{embedded_store as store, endpoint, kv, node, pool};

    fn cluster_information(guid: &str) -> datastore::KeyValue {
        let spec = ClusterInformationSpec {
            cluster_guid: Some(guid.into()),
            ..ClusterInformationSpec::default()
        };
        kv(Resource::ClusterInformation(
            resources::ClusterInformation::new(Metadata::named("default"), spec),
        ))
    }

    fn write(store: &dyn Datastore, kvs: &[datastore::KeyValue]) {
        for kv in kvs {
            store.create(&kv.key, &kv.value).unwrap();
        }
    }

    fn wipe(store: &dyn Datastore) {
        let (all, _) = store.list("/").unwrap();
        for kv in all {
            store.delete(&kv.key, None).unwrap();
        }
    }

    fn keys_of(store: &dyn Datastore) -> Vec<String> {
        let (all, _) = store.list("/").unwrap();
        all.into_iter().map(|kv| kv.key).collect()
    }

    /// A store holding cluster information `guid-a` and n1's endpoint `w1`, and n1's copy of
    /// it.
    fn one_endpoint_copied(
        label: &str,
    ) -> (
        testkit::TempDir,
        std::sync::Arc<dyn Datastore>,
        datastore::KeyValue,
        OwnRecords,
    ) {
        let dir = testkit::TempDir::new(label);
        let store = store(dir.path());
        let mine = endpoint("n1", "w1", "10.0.0.1");
        write(
            store.as_ref(),
            &[cluster_information("guid-a"), mine.clone()],
        );
        let mut own = OwnRecords::default();
        own.take(store.as_ref(), "n1").unwrap();
        (dir, store, mine, own)
    }

    #[test]
    fn a_reset_store_gets_the_nodes_own_records_back_and_nothing_of_other_nodes() {
        let dir = testkit::TempDir::new("recovery-own");
        let store = store(dir.path());
        let mine = endpoint("n1", "w1", "10.0.0.1");
        let theirs = endpoint("n2", "w2", "10.0.1.1");
        let cluster = [
            cluster_information("guid-a"),
            pool("p", "10.0.0.0/16", resources::EncapMode::Never),
            node("n1", "10.99.0.1/24", None, &[], ""),
            node("n2", "10.99.0.2/24", None, &[], ""),
            mine.clone(),
            theirs.clone(),
        ];
        write(store.as_ref(), &cluster);
        let mut own = OwnRecords::default();
        own.take(store.as_ref(), "n1").unwrap();

        // Not reset: nothing is written.
        assert_eq!(own.put_back_if_reset(store.as_ref()).unwrap(), 0);

        wipe(store.as_ref());
        assert_eq!(own.put_back_if_reset(store.as_ref()).unwrap(), 4);
        let mut want = vec![
            cluster[0].key.clone(),
            cluster[1].key.clone(),
            cluster[2].key.clone(),
            mine.key.clone(),
        ];
        want.sort();
        assert_eq!(keys_of(store.as_ref()), want);
        assert_eq!(
            store.get(&mine.key).unwrap().unwrap().value,
            mine.value,
            "put back as it was"
        );
        // And once back, it is not reset any more.
        assert_eq!(own.put_back_if_reset(store.as_ref()).unwrap(), 0);
    }

    #[test]
    fn what_was_written_since_the_reset_wins_and_another_clusters_information_stays() {
        let (_dir, store, _, mut own) = one_endpoint_copied("recovery-wins");

        // Reset, and a node restarted meanwhile made a new cluster information and someone
        // wrote the endpoint again differently.
        wipe(store.as_ref());
        let newer = endpoint("n1", "w1", "10.0.0.9");
        write(
            store.as_ref(),
            &[cluster_information("guid-b"), newer.clone()],
        );
        assert_eq!(own.put_back_if_reset(store.as_ref()).unwrap(), 0);
        assert_eq!(store.get(&newer.key).unwrap().unwrap().value, newer.value);
        let info = keys::resource("clusterinformations", None, "default");
        assert_eq!(
            store.get(&info).unwrap().unwrap().value,
            cluster_information("guid-b").value
        );
        // The copy now follows guid-b: taken again, put back after the next reset.
        own.take(store.as_ref(), "n1").unwrap();
        wipe(store.as_ref());
        assert_eq!(own.put_back_if_reset(store.as_ref()).unwrap(), 2);
        assert_eq!(store.get(&newer.key).unwrap().unwrap().value, newer.value);
    }

    #[test]
    fn every_node_puts_its_own_back_after_the_first_has_put_the_cluster_information_back() {
        let dir = testkit::TempDir::new("recovery-two");
        let store = store(dir.path());
        let (w1, w2) = (
            endpoint("n1", "w1", "10.0.0.1"),
            endpoint("n2", "w2", "10.0.1.1"),
        );
        write(
            store.as_ref(),
            &[
                cluster_information("guid-a"),
                node("n1", "10.99.0.1/24", None, &[], ""),
                node("n2", "10.99.0.2/24", None, &[], ""),
                w1.clone(),
                w2.clone(),
            ],
        );
        let (mut one, mut two) = (OwnRecords::default(), OwnRecords::default());
        one.take(store.as_ref(), "n1").unwrap();
        two.take(store.as_ref(), "n2").unwrap();
        wipe(store.as_ref());
        assert_eq!(one.put_back_if_reset(store.as_ref()).unwrap(), 3);
        // n2 reads before it notices: the copy stays the one with its records.
        two.take(store.as_ref(), "n2").unwrap();
        assert_eq!(two.put_back_if_reset(store.as_ref()).unwrap(), 2);
        assert!(store.get(&w2.key).unwrap().is_some());
    }

    #[test]
    fn a_copy_is_never_taken_from_a_reset_store() {
        let (_dir, store, mine, mut own) = one_endpoint_copied("recovery-never");
        wipe(store.as_ref());
        // Read before the node notices the reset: the copy stays the old one.
        own.take(store.as_ref(), "n1").unwrap();
        assert_eq!(own.put_back_if_reset(store.as_ref()).unwrap(), 2);
        assert!(store.get(&mine.key).unwrap().is_some());
    }
}
