//! What the suite runs: labs, paths, tests, the scenarios they make and the options.

use super::*;

/// The three labs of the suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LabKind {
    OneNode,
    L2,
    Ipip,
}

impl LabKind {
    pub const ALL: [LabKind; 3] = [LabKind::OneNode, LabKind::L2, LabKind::Ipip];

    pub fn name(self) -> &'static str {
        match self {
            LabKind::OneNode => "one-node",
            LabKind::L2 => "l2",
            LabKind::Ipip => "ipip",
        }
    }

    /// Parses `one-node`, `l2` or `ipip`.
    pub fn parse(text: &str) -> Result<LabKind, String> {
        LabKind::ALL
            .into_iter()
            .find(|k| k.name() == text.trim())
            .ok_or_else(|| format!("invalid lab {text:?}: expected one-node, l2 or ipip"))
    }

    /// The paths measured in this lab, with the tests run over each.
    pub fn scenarios(self) -> Vec<Scenario> {
        use TestKind::*;
        let all = [Ping, IperfTcp, IperfUdp];
        // Pod to pod, what every lab measures: the streams a node carries at once, and UDP
        // while the node's CPUs are busy with other work (as on any real node).
        let pods = [
            Ping,
            IperfTcp,
            IperfTcp4,
            IperfUdp,
            IperfUdpHog,
            HttpAb,
            HttpWrk,
        ];
        let mut out = Vec::new();
        let mut add = |path: PathKind, tests: &[TestKind]| {
            out.extend(tests.iter().map(|&test| Scenario {
                lab: self,
                path,
                test,
            }))
        };
        match self {
            LabKind::OneNode => {
                add(PathKind::PodToPod, &pods);
                add(PathKind::PodToNode, &all);
            }
            LabKind::L2 => {
                add(PathKind::PodToPod, &pods);
                // Across nodes: a workload on node 1 to node 2's address.
                add(PathKind::PodToNode, &all);
                add(PathKind::NodeToNode, &all);
            }
            LabKind::Ipip => add(
                PathKind::PodToPod,
                &[Ping, IperfTcp, IperfTcp4, IperfUdp, IperfUdpHog],
            ),
        }
        out
    }
}

/// Who talks to whom.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PathKind {
    PodToPod,
    PodToNode,
    NodeToNode,
}

impl PathKind {
    pub fn name(self) -> &'static str {
        match self {
            PathKind::PodToPod => "pod-to-pod",
            PathKind::PodToNode => "pod-to-node",
            PathKind::NodeToNode => "node-to-node",
        }
    }
}

/// What is measured over a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TestKind {
    Ping,
    IperfTcp,
    /// iperf3 TCP with 4 parallel streams.
    #[serde(rename = "iperf-tcp-4")]
    IperfTcp4,
    IperfUdp,
    /// iperf3 UDP with a CPU hog (one busy process, unpinned) running for its duration.
    IperfUdpHog,
    HttpAb,
    HttpWrk,
}

impl TestKind {
    pub const ALL: [TestKind; 7] = [
        TestKind::Ping,
        TestKind::IperfTcp,
        TestKind::IperfTcp4,
        TestKind::IperfUdp,
        TestKind::IperfUdpHog,
        TestKind::HttpAb,
        TestKind::HttpWrk,
    ];

    pub fn name(self) -> &'static str {
        match self {
            TestKind::Ping => "ping",
            TestKind::IperfTcp => "iperf-tcp",
            TestKind::IperfTcp4 => "iperf-tcp-4",
            TestKind::IperfUdp => "iperf-udp",
            TestKind::IperfUdpHog => "iperf-udp-hog",
            TestKind::HttpAb => "http-ab",
            TestKind::HttpWrk => "http-wrk",
        }
    }

    pub fn parse(text: &str) -> Result<TestKind, String> {
        TestKind::ALL
            .into_iter()
            .find(|t| t.name() == text.trim())
            .ok_or_else(|| {
                let names: Vec<&str> = TestKind::ALL.iter().map(|t| t.name()).collect();
                format!(
                    "invalid test {text:?}: expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// One measurement: a test over a path of a lab.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Scenario {
    pub lab: LabKind,
    pub path: PathKind,
    pub test: TestKind,
}

impl Scenario {
    /// `one-node pod-to-pod ping`.
    pub fn label(&self) -> String {
        format!(
            "{} {} {}",
            self.lab.name(),
            self.path.name(),
            self.test.name()
        )
    }
}

#[derive(Clone, Debug)]
pub struct ScenarioOptions {
    /// Directory holding `brindle-node`.
    pub bin_dir: PathBuf,
    /// Scratch: node configs, sockets and logs, nginx's config and pid file.
    pub work_dir: PathBuf,
    pub labs: Vec<LabKind>,
    /// Only these tests (empty: all).
    pub tests: Vec<TestKind>,
    pub pings: u32,
    /// Seconds of each iperf3 run.
    pub iperf_secs: u32,
    /// The UDP test's offered rate, in Mbit/s.
    pub udp_mbit: u32,
    /// ab: requests and concurrency; ab stops at `http_secs` too.
    pub http_requests: u32,
    pub http_concurrency: u32,
    /// wrk's duration (and ab's time limit).
    pub http_secs: u32,
    /// brindle-node's worker mode: interrupt (default) or poll.
    pub node_mode: String,
    /// How brindle's side of every lab is wired (default: agent mode, brindle-cni).
    pub wiring: Wiring,
    /// Compiler of the kernel IPIP BPF program (kernels without the `ipip` driver).
    pub clang: String,
    pub quick: bool,
}

impl ScenarioOptions {
    /// The full run's defaults, or the short ones of `--quick`.
    pub fn defaults(bin_dir: PathBuf, work_dir: PathBuf, quick: bool) -> ScenarioOptions {
        ScenarioOptions {
            bin_dir,
            work_dir,
            labs: LabKind::ALL.to_vec(),
            tests: Vec::new(),
            pings: if quick { 50 } else { 500 },
            iperf_secs: if quick { 1 } else { 5 },
            udp_mbit: 1000,
            http_requests: if quick { 500 } else { 20_000 },
            http_concurrency: 8,
            http_secs: if quick { 1 } else { 5 },
            node_mode: "interrupt".into(),
            wiring: Wiring::BrindleCni,
            clang: "clang".into(),
            quick,
        }
    }

    /// Bounds on every count and time, so that a typo cannot start a run of days.
    pub fn validate(&self) -> Result<(), BenchError> {
        let check = |field: &'static str, value: u64, max: u64| {
            if value == 0 || value > max {
                Err(BenchError::Invalid {
                    field,
                    value: quoted(value.to_string()),
                    reason: format!("between 1 and {max}"),
                })
            } else {
                Ok(())
            }
        };
        check("pings", self.pings.into(), 100_000)?;
        check("iperf_secs", self.iperf_secs.into(), 600)?;
        check("udp_mbit", self.udp_mbit.into(), 100_000)?;
        check("http_requests", self.http_requests.into(), 10_000_000)?;
        check("http_concurrency", self.http_concurrency.into(), 1000)?;
        check("http_secs", self.http_secs.into(), 600)?;
        if self.http_concurrency > self.http_requests {
            return Err(BenchError::Invalid {
                field: "http_concurrency",
                value: quoted(self.http_concurrency.to_string()),
                reason: "more than http_requests".into(),
            });
        }
        if !["interrupt", "poll", "adaptive"].contains(&self.node_mode.as_str()) {
            return Err(BenchError::Invalid {
                field: "node_mode",
                value: quoted(self.node_mode.clone()),
                reason: "expected interrupt, poll or adaptive".into(),
            });
        }
        if self.labs.is_empty() {
            return Err(BenchError::Invalid {
                field: "labs",
                value: quoted(String::new()),
                reason: "at least one lab".into(),
            });
        }
        Ok(())
    }

    /// The scenarios this run measures, in order.
    pub fn scenarios(&self) -> Vec<Scenario> {
        self.labs
            .iter()
            .flat_map(|lab| lab.scenarios())
            .filter(|s| self.tests.is_empty() || self.tests.contains(&s.test))
            .collect()
    }

    pub(super) fn brindle_node(&self) -> PathBuf {
        self.bin_dir.join("brindle-node")
    }
}
