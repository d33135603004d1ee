//! Felix-style iptables, the policy of the benchmarks' kernel baselines: the same chain
//! layout, accept mark and conntrack handling as Calico's Felix renders for the kernel
//! dataplane, as text for `iptables-restore --noflush`.
//!
//! Felix's structure, which [`Iptables`] builds from:
//! - the built-in chain jumps to its `cali-` twin (`-A FORWARD -j cali-FORWARD`);
//! - `cali-FORWARD` clears the accept mark, dispatches traffic from a workload to its
//!   from-workload chain `cali-fw-<if>` and to a workload to its to-workload chain
//!   `cali-tw-<if>`, and accepts what comes back marked;
//! - an endpoint chain accepts ESTABLISHED/RELATED, drops INVALID, jumps to its policy or
//!   profile chain, returns on the mark and drops the rest;
//! - an Allow rule sets the accept mark and the next rule returns on it.

/// Calico's accept mark bit (Felix's default `IptablesMarkMask` starts with it).
pub const ACCEPT_MARK: &str = "0x10000";

/// ipset name of a `has(<label>)` selector (Calico names its selector sets `cali40s:<hash>`).
pub fn ipset_name(label: &str) -> String {
    format!("cali40s:{label}")
}

/// `cali-fw-<interface>`: traffic from the workload behind `interface`.
pub fn from_workload_chain(interface: &str) -> String {
    format!("cali-fw-{interface}")
}

/// `cali-tw-<interface>`: traffic to the workload behind `interface`.
pub fn to_workload_chain(interface: &str) -> String {
    format!("cali-tw-{interface}")
}

/// `cali-pri-<profile>` (ingress) or `cali-pro-<profile>` (egress), `direction` `pri`/`pro`.
pub fn profile_chain(direction: &str, profile: &str) -> String {
    format!("cali-{direction}-{profile}")
}

/// `cali-pi-<policy>`: a policy's ingress rules.
pub fn policy_chain(policy: &str) -> String {
    format!("cali-pi-{policy}")
}

/// Which way `cali-FORWARD` sends a workload interface's traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dispatch<'a> {
    /// `-i <if>`: from the workload, to `cali-fw-<if>`.
    From(&'a str),
    /// `-o <if>`: to the workload, to `cali-tw-<if>`.
    To(&'a str),
}

/// How an endpoint chain ends (see [`Iptables::endpoint_chain`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct ChainEnd<'a> {
    /// Clear the accept mark before the policy (to-workload chains do; Felix's from-workload
    /// chains do too, where the bench's do not need it).
    pub clear_mark: bool,
    /// Comment on the final drop, whose counter proves denials.
    pub drop_comment: Option<&'a str>,
}

/// The `filter` table being rendered: declared chains, then rules in order.
#[derive(Clone, Debug, Default)]
pub struct Iptables {
    chains: Vec<String>,
    rules: Vec<String>,
}

impl Iptables {
    /// A table creating `chains` (in order).
    pub fn new<S: Into<String>>(chains: impl IntoIterator<Item = S>) -> Iptables {
        Iptables {
            chains: chains.into_iter().map(Into::into).collect(),
            rules: Vec::new(),
        }
    }

    /// `-A <chain> <spec>`.
    pub fn rule(&mut self, chain: &str, spec: &str) {
        self.rules.push(format!("-A {chain} {spec}"));
    }

    /// `-A <builtin> -j cali-<builtin>`.
    pub fn hook(&mut self, builtin: &str) {
        self.rule(builtin, &format!("-j cali-{builtin}"));
    }

    /// `-j MARK --set-xmark 0x0/<mark>`: clears the accept mark.
    pub fn clear_mark(&mut self, chain: &str) {
        self.rule(chain, &clear_mark());
    }

    /// `cali-FORWARD`: clear the mark, dispatch each interface in `order`, accept on the mark.
    pub fn forward(&mut self, order: &[Dispatch]) {
        self.clear_mark("cali-FORWARD");
        for dispatch in order {
            let spec = match dispatch {
                Dispatch::From(i) => format!("-i {i} -j {}", from_workload_chain(i)),
                Dispatch::To(i) => format!("-o {i} -j {}", to_workload_chain(i)),
            };
            self.rule("cali-FORWARD", &spec);
        }
        self.rule(
            "cali-FORWARD",
            &format!("-m mark --mark {} -j ACCEPT", mark()),
        );
    }

    /// An endpoint chain: conntrack RELATED,ESTABLISHED accept, INVALID drop, (mark cleared,)
    /// a jump to `target`, return on the mark, else drop.
    pub fn endpoint_chain(&mut self, chain: &str, target: &str, tail: ChainEnd) {
        self.rule(
            chain,
            "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        );
        self.rule(chain, "-m conntrack --ctstate INVALID -j DROP");
        if tail.clear_mark {
            self.clear_mark(chain);
        }
        self.rule(chain, &format!("-j {target}"));
        self.return_on_mark(chain);
        match tail.drop_comment {
            Some(comment) => self.rule(chain, &format!("-m comment --comment {comment} -j DROP")),
            None => self.rule(chain, "-j DROP"),
        }
    }

    /// An Allow rule: traffic matching `matches` (empty: all) gets the accept mark, and the
    /// chain returns on it.
    pub fn allow(&mut self, chain: &str, matches: &str) {
        let set = format!("-j MARK --set-xmark {}", mark());
        if matches.is_empty() {
            self.rule(chain, &set);
        } else {
            self.rule(chain, &format!("{matches} {set}"));
        }
        self.return_on_mark(chain);
    }

    /// `-m mark --mark <mark> -j RETURN`.
    pub fn return_on_mark(&mut self, chain: &str) {
        self.rule(chain, &format!("-m mark --mark {} -j RETURN", mark()));
    }

    /// The `iptables-restore` text.
    pub fn render(&self) -> String {
        let mut text = String::from("*filter\n");
        for chain in &self.chains {
            text.push_str(&format!(":{chain} - [0:0]\n"));
        }
        for rule in &self.rules {
            text.push_str(rule);
            text.push('\n');
        }
        text.push_str("COMMIT\n");
        text
    }
}

/// `<mark>/<mark>`: the accept mark bit, as `--mark` and `--set-xmark` take it.
pub fn mark() -> String {
    format!("{ACCEPT_MARK}/{ACCEPT_MARK}")
}

fn clear_mark() -> String {
    format!("-j MARK --set-xmark 0x0/{ACCEPT_MARK}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workload_pair_renders_felixs_layout() {
        let mut t = Iptables::new(["cali-FORWARD", "cali-fw-a", "cali-tw-b", "cali-pro-p"]);
        t.hook("FORWARD");
        t.forward(&[Dispatch::From("a"), Dispatch::To("b")]);
        t.endpoint_chain("cali-fw-a", "cali-pro-p", ChainEnd::default());
        t.allow("cali-pro-p", "");
        t.endpoint_chain(
            "cali-tw-b",
            "cali-pro-p",
            ChainEnd {
                clear_mark: true,
                drop_comment: Some("end"),
            },
        );
        let text = t.render();
        let expected = "*filter
:cali-FORWARD - [0:0]
:cali-fw-a - [0:0]
:cali-tw-b - [0:0]
:cali-pro-p - [0:0]
-A FORWARD -j cali-FORWARD
-A cali-FORWARD -j MARK --set-xmark 0x0/0x10000
-A cali-FORWARD -i a -j cali-fw-a
-A cali-FORWARD -o b -j cali-tw-b
-A cali-FORWARD -m mark --mark 0x10000/0x10000 -j ACCEPT
-A cali-fw-a -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A cali-fw-a -m conntrack --ctstate INVALID -j DROP
-A cali-fw-a -j cali-pro-p
-A cali-fw-a -m mark --mark 0x10000/0x10000 -j RETURN
-A cali-fw-a -j DROP
-A cali-pro-p -j MARK --set-xmark 0x10000/0x10000
-A cali-pro-p -m mark --mark 0x10000/0x10000 -j RETURN
-A cali-tw-b -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A cali-tw-b -m conntrack --ctstate INVALID -j DROP
-A cali-tw-b -j MARK --set-xmark 0x0/0x10000
-A cali-tw-b -j cali-pro-p
-A cali-tw-b -m mark --mark 0x10000/0x10000 -j RETURN
-A cali-tw-b -m comment --comment end -j DROP
COMMIT
";
        assert_eq!(text, expected);
        assert_eq!(ipset_name("net"), "cali40s:net");
        assert_eq!(profile_chain("pri", "net"), "cali-pri-net");
        assert_eq!(policy_chain("p"), "cali-pi-p");
    }
}
