//! The node's network policy: the datastore's policy resources in a [`PolicyModel`], each
//! local workload's programs compiled for the fastpath, and the address sets published to the
//! workers in place.
//!
//! Recompiling is off the hot path and per endpoint: only the endpoints the model reports
//! dirty are rendered and compiled again, and their new programs reach the workers with the
//! next table snapshot. Address set membership (selectors in rules) changes through the
//! workers' [`IpSetsWriter`] without any recompilation.

use std::collections::{BTreeMap, BTreeSet};

use datastore::{keys, KeyValue, WatchEvent};
use fastpath::classifier::{ClassifierBuilder, EndpointRules, IpSetId, IpSetsWriter};
use fastpath::hostpath::FailsafePort;
use fastpath::policy::{EndpointPolicy, HostPolicy, StagePrograms};
use resources::{EndpointToHostAction, Kind, Resource};

use super::failsafe::{self, Failsafe};
use crate::dataplane::{EndpointPolicyHandle, HostEndpointState, HostPolicyHandle};
use crate::policy::{apply_ipset_deltas, Direction, EndpointKey, PolicyModel, PolicyStage};

/// The kinds the policy model holds, with the datastore prefixes the agent watches for them.
const POLICY_KINDS: [Kind; 8] = [
    Kind::Tier,
    Kind::NetworkPolicy,
    Kind::GlobalNetworkPolicy,
    Kind::Profile,
    Kind::NetworkSet,
    Kind::GlobalNetworkSet,
    Kind::WorkloadEndpoint,
    Kind::HostEndpoint,
];

/// The datastore prefixes of the policy kinds (workload endpoints included: rule selectors
/// match endpoints of every node), and of FelixConfiguration (`defaultEndpointToHostAction`).
pub fn watched_prefixes() -> impl Iterator<Item = String> {
    POLICY_KINDS
        .iter()
        .map(|k| keys::resource_prefix(k.plural(), None))
        .chain(std::iter::once(keys::resource_prefix(
            Kind::FelixConfiguration.plural(),
            None,
        )))
}

/// Felix's environment variable for `defaultEndpointToHostAction`; it wins over the datastore.
pub const ENDPOINT_TO_HOST_ENV: &str = "FELIX_DEFAULTENDPOINTTOHOSTACTION";

/// Whether workloads may reach their host: `Accept` and `Return` (no host endpoints here,
/// so nothing further applies) let them, `Drop` (Felix's default) does not.
pub fn endpoint_to_host_allowed(action: EndpointToHostAction) -> bool {
    !matches!(action, EndpointToHostAction::Drop)
}

/// `FELIX_DEFAULTENDPOINTTOHOSTACTION`'s value (any case, as Felix reads it).
pub fn parse_endpoint_to_host(value: &str) -> Result<EndpointToHostAction, String> {
    match value.to_ascii_lowercase().as_str() {
        "drop" => Ok(EndpointToHostAction::Drop),
        "accept" => Ok(EndpointToHostAction::Accept),
        "return" => Ok(EndpointToHostAction::Return),
        _ => Err(format!(
            "{ENDPOINT_TO_HOST_ENV}={value:?}: expected Drop, Accept or Return"
        )),
    }
}

/// The model, the compiled programs of the local endpoints, and the workers' address sets.
pub struct NodePolicy {
    node: String,
    model: PolicyModel,
    builder: ClassifierBuilder,
    /// Local workload endpoints' programs by interface name.
    programs: BTreeMap<String, EndpointPolicyHandle>,
    /// Local host endpoints' programs by interface name (`*`: all interfaces).
    host_programs: BTreeMap<String, HostPolicyHandle>,
    /// The interface of each local endpoint (to drop its program when it goes).
    interfaces: BTreeMap<EndpointKey, String>,
    /// Where the workers read address sets; `None` until the dataplane hands it over.
    sets: Option<IpSetsWriter>,
    /// The set ids the writer holds, to clear them on a resync.
    published: BTreeSet<IpSetId>,
    generation: u32,
    /// `defaultEndpointToHostAction` from the environment (wins) and from FelixConfiguration
    /// `default`.
    to_host_env: Option<EndpointToHostAction>,
    to_host_config: Option<EndpointToHostAction>,
    /// Failsafe ports from the environment (win) and from FelixConfiguration `default`.
    failsafe_env: Failsafe,
    failsafe_config: Failsafe,
}

impl NodePolicy {
    /// `to_host_env`: `defaultEndpointToHostAction` set in the node's environment.
    pub fn new(node: &str, to_host_env: Option<EndpointToHostAction>) -> NodePolicy {
        NodePolicy {
            node: node.to_owned(),
            model: PolicyModel::new(node),
            builder: ClassifierBuilder::default(),
            programs: BTreeMap::new(),
            host_programs: BTreeMap::new(),
            failsafe_env: Failsafe::from_env(),
            failsafe_config: Failsafe::default(),
            interfaces: BTreeMap::new(),
            sets: None,
            published: BTreeSet::new(),
            generation: 0,
            to_host_env,
            to_host_config: None,
        }
    }

    /// Whether workloads may reach their host (see [`endpoint_to_host_allowed`]).
    fn to_host(&self) -> bool {
        endpoint_to_host_allowed(
            self.to_host_env
                .or(self.to_host_config)
                .unwrap_or(EndpointToHostAction::Drop),
        )
    }

    /// Takes the workers' address sets and fills them from the model.
    pub fn attach_sets(&mut self, writer: IpSetsWriter) {
        self.sets = Some(writer);
        self.republish_sets();
    }

    /// Replaces the model with a full listing (a resync); every program is compiled again.
    pub fn reset(&mut self, listing: &[KeyValue]) {
        self.model = PolicyModel::new(self.node.clone());
        self.to_host_config = None;
        self.failsafe_config = Failsafe::default();
        for kv in listing {
            self.put(kv);
        }
        self.republish_sets();
        self.programs.clear();
        self.host_programs.clear();
        self.interfaces.clear();
        self.recompile(
            self.model
                .local_endpoints()
                .into_iter()
                .map(|(k, _)| k)
                .collect(),
        );
    }

    /// Applies one watch event; true if a program or an address set changed.
    pub fn apply(&mut self, event: &WatchEvent) -> bool {
        let to_host = self.to_host();
        match event {
            WatchEvent::Put(kv) => self.put(kv),
            WatchEvent::Delete { key, .. } => self.delete(key),
            WatchEvent::Compacted { .. } | WatchEvent::Disconnected { .. } => return false,
        }
        if self.to_host() != to_host {
            // Every program carries the setting.
            self.programs.clear();
            self.host_programs.clear();
            self.interfaces.clear();
            self.recompile(
                self.model
                    .local_endpoints()
                    .into_iter()
                    .map(|(k, _)| k)
                    .collect(),
            );
            return true;
        }
        let deltas = self.model.take_ipset_deltas();
        let sets_changed = !deltas.is_empty();
        if let Some(writer) = self.sets.as_mut() {
            if sets_changed {
                apply_ipset_deltas(writer, &deltas);
                self.published.extend(deltas.iter().map(|d| d.set));
                writer.publish();
            }
        }
        let dirty = self.model.dirty_endpoints();
        let recompiled = !dirty.is_empty();
        self.recompile(dirty);
        sets_changed || recompiled
    }

    /// The policy resources as the node holds them (read-only, for metrics).
    pub fn model(&self) -> &PolicyModel {
        &self.model
    }

    /// The compiled programs of the local workload endpoints, by interface name.
    pub fn programs(&self) -> &BTreeMap<String, EndpointPolicyHandle> {
        &self.programs
    }

    /// The host endpoint enforced on `uplink`: one of this node's HostEndpoints naming it,
    /// or else one with `interfaceName: "*"` (the only interface the vRouter fronts is the
    /// uplink, so that is where "all interfaces" applies), with the failsafe ports.
    pub fn host_endpoint(&self, uplink: &str) -> Option<HostEndpointState> {
        let policy = self
            .host_programs
            .get(uplink)
            .or_else(|| self.host_programs.get("*"))?;
        let (inbound, outbound) = self.failsafe_ports();
        Some(HostEndpointState {
            policy: policy.clone(),
            failsafe_inbound: inbound,
            failsafe_outbound: outbound,
        })
    }

    /// Felix's failsafe ports: the environment's, else FelixConfiguration's, else Calico's
    /// defaults; each direction on its own.
    pub fn failsafe_ports(&self) -> (Vec<FailsafePort>, Vec<FailsafePort>) {
        let inbound = self
            .failsafe_env
            .inbound
            .clone()
            .or_else(|| self.failsafe_config.inbound.clone());
        let outbound = self
            .failsafe_env
            .outbound
            .clone()
            .or_else(|| self.failsafe_config.outbound.clone());
        (
            inbound.unwrap_or_else(failsafe::default_inbound),
            outbound.unwrap_or_else(failsafe::default_outbound),
        )
    }

    fn put(&mut self, kv: &KeyValue) {
        if kv.key == felix_default_key() {
            (self.to_host_config, self.failsafe_config) = match Resource::from_kv(kv) {
                Ok(Resource::FelixConfiguration(c)) => (
                    c.spec.default_endpoint_to_host_action,
                    Failsafe::from_config(&c.spec),
                ),
                _ => {
                    tracing::warn!(key = %kv.key, "ignoring a FelixConfiguration that does not decode");
                    (None, Failsafe::default())
                }
            };
            return;
        }
        if !is_policy_key(&kv.key) {
            return;
        }
        match Resource::from_kv(kv) {
            Ok(resource) => {
                if let Err(e) = self.model.upsert(&resource) {
                    tracing::warn!(key = %kv.key, error = %e, "policy resource not taken; its previous version stays");
                }
            }
            Err(e) => {
                tracing::warn!(key = %kv.key, error = %e, "ignoring a policy resource that does not decode")
            }
        }
    }

    fn delete(&mut self, key: &str) {
        if key == felix_default_key() {
            self.to_host_config = None;
            self.failsafe_config = Failsafe::default();
            return;
        }
        let Some((kind, namespace, name)) = parse_key(key) else {
            return;
        };
        self.model.remove(kind, namespace, name);
    }

    /// Renders and compiles `endpoints` (both directions). An endpoint that cannot be
    /// compiled gets a program that denies everything: failing closed, and logged.
    fn recompile(&mut self, endpoints: Vec<EndpointKey>) {
        let interfaces: BTreeMap<EndpointKey, String> =
            self.model.local_endpoints().into_iter().collect();
        for key in endpoints {
            let host = matches!(key, EndpointKey::Host { .. });
            if let Some(old) = self.interfaces.remove(&key) {
                if host {
                    self.host_programs.remove(&old);
                } else {
                    self.programs.remove(&old);
                }
            }
            let Some(interface) = interfaces.get(&key) else {
                continue;
            };
            self.generation = self.generation.wrapping_add(1);
            if host {
                let policy = self.compile_host(&key);
                tracing::debug!(endpoint = %key, %interface, generation = self.generation, "host endpoint policy compiled");
                self.host_programs
                    .insert(interface.clone(), HostPolicyHandle::new(policy));
                self.interfaces.insert(key, interface.clone());
                continue;
            }
            let to_host = self.to_host();
            let policy = match (
                self.compile(&key, Direction::Ingress),
                self.compile(&key, Direction::Egress),
            ) {
                (Ok(ingress), Ok(egress)) => EndpointPolicy {
                    ingress,
                    egress,
                    generation: self.generation,
                    to_host,
                },
                (Err(e), _) | (_, Err(e)) => {
                    tracing::error!(endpoint = %key, error = %e, "cannot compile the endpoint's policy; denying its traffic");
                    let deny = || {
                        self.builder
                            .compile(&EndpointRules::default())
                            .expect("no rules always compile")
                    };
                    EndpointPolicy {
                        ingress: deny(),
                        egress: deny(),
                        generation: self.generation,
                        to_host: false,
                    }
                }
            };
            tracing::debug!(endpoint = %key, %interface, generation = self.generation, "policy compiled");
            self.programs
                .insert(interface.clone(), EndpointPolicyHandle::new(policy));
            self.interfaces.insert(key, interface.clone());
        }
    }

    fn compile(
        &self,
        key: &EndpointKey,
        direction: Direction,
    ) -> Result<fastpath::classifier::PolicyProgram, String> {
        self.compile_stage(key, direction, PolicyStage::Normal)
    }

    fn compile_stage(
        &self,
        key: &EndpointKey,
        direction: Direction,
        stage: PolicyStage,
    ) -> Result<fastpath::classifier::PolicyProgram, String> {
        let rules = self
            .model
            .endpoint_rules_in(key, direction, stage)
            .map_err(|e| e.to_string())?;
        self.builder.compile(&rules).map_err(|e| e.to_string())
    }

    /// A host endpoint's stages; a stage no policy applies to is left out (nothing to ask).
    /// One that cannot be compiled denies everything but failsafe traffic, logged.
    fn compile_host(&self, key: &EndpointKey) -> HostPolicy {
        let applies_in = |direction, stage| {
            self.model
                .endpoint_rules_in(key, direction, stage)
                .is_ok_and(|r| !r.tiers.is_empty())
        };
        let stage_applies =
            |stage| applies_in(Direction::Ingress, stage) || applies_in(Direction::Egress, stage);
        // Forwarded traffic: a direction no applyOnForward policy covers passes.
        let forward = |direction| -> Result<Option<_>, String> {
            if applies_in(direction, PolicyStage::Forward) {
                Ok(Some(self.compile_stage(
                    key,
                    direction,
                    PolicyStage::Forward,
                )?))
            } else {
                Ok(None)
            }
        };
        let compiled = (|| -> Result<HostPolicy, String> {
            let normal = EndpointPolicy {
                ingress: self.compile(key, Direction::Ingress)?,
                egress: self.compile(key, Direction::Egress)?,
                generation: self.generation,
                to_host: true,
            };
            let untracked = if stage_applies(PolicyStage::Untracked) {
                Some(StagePrograms {
                    ingress: self.compile_stage(key, Direction::Ingress, PolicyStage::Untracked)?,
                    egress: self.compile_stage(key, Direction::Egress, PolicyStage::Untracked)?,
                })
            } else {
                None
            };
            let pre_dnat = if stage_applies(PolicyStage::PreDnat) {
                Some(self.compile_stage(key, Direction::Ingress, PolicyStage::PreDnat)?)
            } else {
                None
            };
            let forward_ingress = forward(Direction::Ingress)?;
            let forward_egress = forward(Direction::Egress)?;
            Ok(HostPolicy {
                normal,
                untracked,
                pre_dnat,
                forward_ingress,
                forward_egress,
            })
        })();
        compiled.unwrap_or_else(|e| {
            tracing::error!(endpoint = %key, error = %e, "cannot compile the host endpoint's policy; denying all but failsafe traffic");
            let deny = || self.builder.compile(&EndpointRules::default()).expect("no rules always compile");
            HostPolicy {
                normal: EndpointPolicy { ingress: deny(), egress: deny(), generation: self.generation, to_host: false },
                untracked: None,
                pre_dnat: None,
                forward_ingress: None,
                forward_egress: None,
            }
        })
    }

    /// Writes every set of the model into the workers' sets (after a resync or at attach).
    fn republish_sets(&mut self) {
        let _ = self.model.take_ipset_deltas();
        let Some(writer) = self.sets.as_mut() else {
            return;
        };
        for id in std::mem::take(&mut self.published) {
            writer.remove_set(id);
        }
        for (id, _) in self.model.ipsets() {
            writer.replace_set(id, self.model.ipset_members(id));
            self.published.insert(id);
        }
        writer.publish();
    }
}

fn felix_default_key() -> String {
    keys::resource(Kind::FelixConfiguration.plural(), None, "default")
}

fn is_policy_key(key: &str) -> bool {
    parse_key(key).is_some()
}

/// `/calico/resources/v3/projectcalico.org/<plural>/[<namespace>/]<name>` of a policy kind.
fn parse_key(key: &str) -> Option<(Kind, Option<&str>, &str)> {
    let rest = key.strip_prefix(keys::RESOURCES)?;
    let (plural, rest) = rest.split_once('/')?;
    let kind = POLICY_KINDS.into_iter().find(|k| k.plural() == plural)?;
    if kind.namespaced() {
        let (namespace, name) = rest.split_once('/')?;
        Some((kind, Some(namespace), name))
    } else {
        Some((kind, None, rest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_keys_name_their_kind_namespace_and_name() {
        let key = keys::resource("networkpolicies", Some("prod"), "allow-web");
        assert_eq!(
            parse_key(&key),
            Some((Kind::NetworkPolicy, Some("prod"), "allow-web"))
        );
        let key = keys::resource("globalnetworksets", None, "blocked");
        assert_eq!(
            parse_key(&key),
            Some((Kind::GlobalNetworkSet, None, "blocked"))
        );
        assert_eq!(
            parse_key(&keys::resource("ippools", None, "p")),
            None,
            "not a policy kind"
        );
        assert_eq!(
            parse_key("/calico/ipam/v2/host/n1/ipv4/block/10.0.0.0-26"),
            None
        );
    }

    #[test]
    fn endpoint_to_host_action_reads_as_felix_does() {
        assert_eq!(
            parse_endpoint_to_host("ACCEPT"),
            Ok(EndpointToHostAction::Accept)
        );
        assert_eq!(
            parse_endpoint_to_host("Return"),
            Ok(EndpointToHostAction::Return)
        );
        assert_eq!(
            parse_endpoint_to_host("drop"),
            Ok(EndpointToHostAction::Drop)
        );
        let err = parse_endpoint_to_host("allow").unwrap_err();
        assert!(
            err.contains(ENDPOINT_TO_HOST_ENV) && err.contains("allow"),
            "{err}"
        );
        assert!(!endpoint_to_host_allowed(EndpointToHostAction::Drop));
        assert!(
            endpoint_to_host_allowed(EndpointToHostAction::Accept)
                && endpoint_to_host_allowed(EndpointToHostAction::Return)
        );
        // Felix's default, and the environment over the datastore.
        let mut policy = NodePolicy::new("n1", None);
        assert!(!policy.to_host());
        policy.to_host_config = Some(EndpointToHostAction::Accept);
        assert!(policy.to_host());
        policy.to_host_env = Some(EndpointToHostAction::Drop);
        assert!(!policy.to_host());
    }
}
