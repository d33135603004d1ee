//! The `brindle-perf` command line: one subcommand per generator, sink and benchmark.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use perf::e2e_xdp;
use perf::options::TrafficArgs;

#[derive(Parser)]
#[command(
    name = "brindle-perf",
    about = "Traffic generator, sink and end-to-end benchmark"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Send UDP with sendmmsg for a while; prints {"sent", "secs", "refused_batches"}.
    UdpSend {
        #[arg(long)]
        dst: Ipv4Addr,
        #[arg(long)]
        port: u16,
        /// Ethernet frame size in bytes, FCS included (64 = 18 bytes of payload).
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// Seconds to send for (fractions allowed).
        #[arg(long, default_value_t = 5.0)]
        duration: f64,
        #[arg(long, default_value_t = 64)]
        batch: usize,
    },
    /// Receive UDP with recvmmsg for a while; prints {"received", "bytes", "secs"}.
    UdpSink {
        #[arg(long)]
        port: u16,
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Stop early once traffic has stopped for this many milliseconds.
        #[arg(long)]
        idle_ms: Option<u64>,
        /// File created once the socket is bound, so that a generator can wait for it.
        #[arg(long)]
        ready_file: Option<PathBuf>,
    },
    /// UDP pps between two workloads with 2 vs 2 + N idle workloads attached, per worker
    /// mode, in one lab; JSON + Markdown report with the ratio.
    Scale {
        #[arg(long)]
        brindle_node: PathBuf,
        /// Idle workloads attached in the "many" runs.
        #[arg(long, default_value_t = 500)]
        idle: usize,
        #[arg(long, value_delimiter = ',', default_value = "poll,interrupt")]
        modes: Vec<String>,
        #[arg(long, default_value_t = 1)]
        rounds: usize,
        #[arg(long, default_value_t = 5)]
        duration: u64,
        #[command(flatten)]
        traffic: TrafficArgs,
        #[arg(long, default_value = "perf/results/scale.json")]
        out: PathBuf,
        /// Instead of idle workloads: pps from outside through an uplink veth with each of
        /// these queue counts (e.g. 1,2), one worker per queue; written to --out, or
        /// perf/results/scale-queues.json when --out is left as it is.
        #[arg(long, value_delimiter = ',')]
        queues: Vec<u32>,
        /// Worker mode of the --queues runs.
        #[arg(long, default_value = "interrupt")]
        queue_mode: String,
    },
    /// Send stamped UDP frames on an AF_XDP socket of --dev (run inside the workload
    /// namespace); prints the XdpSendReport as JSON.
    XdpSend {
        #[arg(long, default_value = "eth0")]
        dev: String,
        #[arg(long)]
        dst: Ipv4Addr,
        #[arg(long)]
        port: u16,
        /// Ethernet frame size in bytes, FCS included (64..1518).
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// Seconds to send for (fractions allowed).
        #[arg(long, default_value_t = 5.0)]
        duration: f64,
        /// Stop after this many frames (0: only the duration bounds the run).
        #[arg(long, default_value_t = 0)]
        count: u64,
        /// Frames per second (0: flat out).
        #[arg(long, default_value_t = 0)]
        rate: u64,
        #[arg(long, default_value_t = 64)]
        batch: usize,
    },
    /// Receive stamped UDP frames on AF_XDP sockets of --dev (fastpath's XDP program sends
    /// every frame there; ARP for the interface's address is answered); prints the
    /// XdpSinkReport (loss, reordering, latency percentiles) as JSON.
    XdpSink {
        #[arg(long, default_value = "eth0")]
        dev: String,
        #[arg(long)]
        port: u16,
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Stop early once traffic has stopped for this many milliseconds.
        #[arg(long)]
        idle_ms: Option<u64>,
        /// Stop after this many stamped frames (0: no limit).
        #[arg(long, default_value_t = 0)]
        count: u64,
        /// File created once the sockets receive, so that a generator can wait for it.
        #[arg(long)]
        ready_file: Option<PathBuf>,
    },
    /// Kernel lab then brindle lab: UDP pps, ping RTT, busy cores; JSON + Markdown report.
    E2e {
        /// brindle-node binary; without it only the kernel side runs.
        #[arg(long)]
        brindle_node: Option<PathBuf>,
        #[arg(long, default_value_t = 5)]
        duration: u64,
        #[arg(long, default_value_t = 500)]
        pings: u32,
        #[arg(long, default_value = "perf/results/e2e.json")]
        out: PathBuf,
        #[command(flatten)]
        traffic: TrafficArgs,
        /// brindle-node worker mode: poll (busy, pinned to CPU 1) or interrupt.
        #[arg(long, default_value = "poll")]
        node_mode: String,
        /// Extra frame sizes (e.g. 64,512,1500): one more UDP run per size and side, in the
        /// same labs, for pps vs packet size.
        #[arg(long, value_delimiter = ',')]
        sizes: Vec<usize>,
        /// UDP generator and sink: socket (sendmmsg/recvmmsg) or xdp (AF_XDP, with loss and
        /// one-way latency percentiles).
        #[arg(long, default_value = "socket")]
        generator: e2e_xdp::Generator,
        /// dpdk-testpmd (Debian dpdk-dev, with librte-net-af-xdp23): a third side measures
        /// the raw AF_XDP ceiling on the same veths and core.
        #[arg(long)]
        testpmd: Option<PathBuf>,
        /// brindle's workloads get a TAP eth0 (whole 64 KiB TCP segments) instead of a veth.
        #[arg(long)]
        tap: bool,
    },
    /// Two nodes on one segment, a workload each: kernel plain, kernel IPIP, brindle plain,
    /// brindle IPIP, one after the other; UDP pps, ping RTT, busy cores, path proof; JSON +
    /// Markdown report with brindle/kernel ratios per encapsulation.
    Crossnode {
        #[arg(long, default_value = "target/release/brindle-node")]
        brindle_node: PathBuf,
        /// Seconds of UDP per side.
        #[arg(long, default_value_t = 3)]
        duration: u64,
        #[arg(long, default_value_t = 500)]
        pings: u32,
        #[arg(long, default_value = "perf/results/crossnode.json")]
        out: PathBuf,
        #[command(flatten)]
        traffic: TrafficArgs,
        /// brindle-node worker mode: interrupt (two nodes share the cores) or poll.
        #[arg(long, default_value = "interrupt")]
        node_mode: String,
        /// Worker cores of node 1 and node 2: one for both ("1"), one each ("1,0"), or
        /// "none" (unpinned, the default: lowest RTT at the same pps on two cores).
        #[arg(long, default_value = "none")]
        node_cpus: String,
        /// Compiler of the kernel IPIP BPF program (kernels without the ipip driver).
        #[arg(long, default_value = "clang")]
        clang: String,
        /// Interleaved rounds of the four sides; each side reports its medians.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// One node, two workloads, 1,000 ingress rules on the sink: the kernel with Calico-style
    /// iptables and ipsets versus brindle-node in agent mode with the same GlobalNetworkPolicy;
    /// UDP pps for a few flows and for a new flow per packet, interleaved rounds, medians;
    /// JSON + Markdown report with brindle/kernel ratios.
    Policy {
        /// Directory holding brindle-node, brindle-cni, brindle-ipam and brindlectl.
        #[arg(long, default_value = "target/release")]
        brindle_bin_dir: PathBuf,
        /// Seconds of UDP per side, traffic kind and round.
        #[arg(long, default_value_t = 3.0)]
        duration: f64,
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Rules in the policy; several (e.g. 10,100,1000,10000) sweep them in one run and
        /// write --sweep-out (pps vs number of rules); the report of 1000 rules, if among
        /// them, still goes to --out.
        #[arg(long, value_delimiter = ',', default_value = "1000")]
        rules: Vec<usize>,
        /// Where a sweep over several --rules counts writes its JSON (and Markdown beside it).
        #[arg(long, default_value = "perf/results/rules-sweep.json")]
        sweep_out: PathBuf,
        // --port is the first allowed destination port (the policy allows 1024 from it on).
        #[command(flatten)]
        traffic: TrafficArgs,
        /// brindle-node worker mode: poll (busy, pinned to CPU 1) or interrupt.
        #[arg(long, default_value = "poll")]
        node_mode: String,
        /// The kernel side's iptables backend: legacy or nft.
        #[arg(long, default_value = "legacy")]
        iptables: String,
        #[arg(long, default_value = "perf/results/policy.json")]
        out: PathBuf,
    },
    /// CNI ADD, ADD-to-forwarding and DEL latency of N workloads plugged into one node in
    /// agent mode; JSON + Markdown report.
    CniLatency {
        /// Directory holding brindle-node, brindle-cni and brindle-ipam.
        #[arg(long, default_value = "target/release")]
        brindle_bin_dir: PathBuf,
        #[arg(long, default_value_t = 200)]
        workloads: usize,
        /// etcdv3 (started by the bench in the node namespace) or embedded.
        #[arg(long, default_value = "etcdv3")]
        datastore: String,
        #[arg(long, default_value = "perf/results/cni-latency.json")]
        out: PathBuf,
    },
    /// Time for a node in agent mode to sync N WorkloadEndpoints of its own (whose interfaces
    /// do not exist); JSON + Markdown report.
    Resync {
        /// Directory holding brindle-node.
        #[arg(long, default_value = "target/release")]
        brindle_bin_dir: PathBuf,
        #[arg(long, default_value_t = 10_000)]
        endpoints: usize,
        /// etcdv3 (started by the bench in the node namespace) or embedded.
        #[arg(long, default_value = "etcdv3")]
        datastore: String,
        /// Parallel writers populating the datastore.
        #[arg(long, default_value_t = 4)]
        writers: usize,
        /// Skip the resync after a cut etcd connection.
        #[arg(long)]
        no_reconnect: bool,
        /// Seconds the node may take from start to every endpoint applied.
        #[arg(long, default_value_t = 120.0)]
        timeout: f64,
        #[arg(long, default_value = "perf/results/resync.json")]
        out: PathBuf,
    },
    /// The scenario suite: ping, iperf3 TCP/UDP and HTTP (nginx, ab, wrk) for pod-to-pod,
    /// pod-to-node and node-to-node in a one-node, an L2 and an IPIP lab, each through the
    /// kernel then brindle; JSON + Markdown report with brindle/kernel ratios.
    Scenarios {
        /// Directory holding brindle-node.
        #[arg(long, default_value = "target/release")]
        brindle_bin_dir: PathBuf,
        #[arg(long, default_value = "perf/results/scenarios.json")]
        out: PathBuf,
        /// Short counts and durations (a minute or two in all).
        #[arg(long)]
        quick: bool,
        /// Labs to run: one-node, l2, ipip [default: all].
        #[arg(long, value_delimiter = ',')]
        labs: Vec<String>,
        /// Tests to run: ping, iperf-tcp, iperf-udp, http-ab, http-wrk [default: all].
        #[arg(long, value_delimiter = ',')]
        tests: Vec<String>,
        #[arg(long)]
        pings: Option<u32>,
        /// Seconds per iperf3 run.
        #[arg(long)]
        iperf_secs: Option<u32>,
        /// Offered rate of the iperf3 UDP test, Mbit/s.
        #[arg(long)]
        udp_mbit: Option<u32>,
        /// ab's request count (ab also stops at --http-secs).
        #[arg(long)]
        http_requests: Option<u32>,
        #[arg(long)]
        http_concurrency: Option<u32>,
        /// wrk's duration and ab's time limit, seconds.
        #[arg(long)]
        http_secs: Option<u32>,
        /// brindle-node worker mode: interrupt or poll.
        #[arg(long, default_value = "interrupt")]
        node_mode: String,
        /// How brindle's side is wired: brindle-cni (agent mode, the default), lab (file
        /// mode, veth workloads) or lab-tap (file mode, TAP workloads).
        #[arg(long, default_value = "brindle-cni")]
        wiring: String,
        /// Compiler of the kernel IPIP BPF program (kernels without the ipip driver).
        #[arg(long, default_value = "clang")]
        clang: String,
    },
    /// IPAM allocations per second against etcd: N parallel clients against one client,
    /// alternating, in one run; JSON + Markdown report with the ratio.
    Ipam {
        /// etcd to use; without it a private etcd is started on loopback for the run.
        #[arg(long)]
        etcd: Option<String>,
        #[arg(long, default_value_t = 4)]
        clients: usize,
        /// Allocations per measurement (split between the clients).
        #[arg(long, default_value_t = 400)]
        allocs: usize,
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        #[arg(long, default_value = "perf/results/ipam-alloc.json")]
        out: PathBuf,
    },
    /// The worker process of the IPAM concurrency tests: allocates --count addresses one by
    /// one (one handle each) and prints {"kept", "released"} as JSON.
    IpamWorker {
        /// embedded:PATH or etcd:URL[,URL...].
        #[arg(long)]
        store: String,
        #[arg(long)]
        host: String,
        #[arg(long)]
        count: usize,
        #[arg(long)]
        handle_prefix: String,
        #[arg(long)]
        pool: String,
        #[arg(long, default_value_t = 26)]
        block_size: u8,
        /// Release every K-th allocation by handle right after taking it (0: never).
        #[arg(long, default_value_t = 0)]
        release_every: usize,
    },
    /// Time and peak memory to learn N prefixes from GoBGP: our BGP speaker against BIRD 2,
    /// in rounds from one loaded GoBGP; JSON + Markdown report with the median ratios.
    BgpLearn {
        #[arg(long, default_value_t = 1_000_000)]
        prefixes: u32,
        /// Each learner's limit, seconds.
        #[arg(long, default_value_t = 300)]
        timeout_secs: u64,
        #[arg(long, default_value_t = 1)]
        rounds: u32,
        /// BIRD first in odd rounds (ours first by default).
        #[arg(long)]
        bird_first: bool,
        /// GOGC for gobgpd ("off": no garbage collection) [default: Go's].
        #[arg(long, default_value = "")]
        gobgp_gogc: String,
        /// Both learners' route counts over time on stderr.
        #[arg(long)]
        trace: bool,
        #[arg(long, default_value = "perf/results/bgp-learn.json")]
        out: PathBuf,
    },
    /// The learner of bgp-learn: our speaker peering with GoBGP until it holds --prefixes
    /// routes; prints its figures as JSON (started by bgp-learn in its namespace).
    #[command(hide = true)]
    BgpLearnSpeaker {
        #[arg(long)]
        prefixes: u64,
        #[arg(long)]
        timeout_secs: u64,
        #[arg(long)]
        trace: bool,
    },
    /// Writes the MRT file bgp-learn loads GoBGP with, for loading a GoBGP by hand.
    #[command(hide = true)]
    BgpWriteMrt { path: PathBuf, prefixes: u32 },
    /// Adds the summary rows the report reads to results files written before benchmarks
    /// wrote them (their kind from their name: e2e*.json, crossnode*.json, ...).
    Summarise { files: Vec<PathBuf> },
    /// Markdown report and SVG/PNG plots from every results JSON in a directory: brindle vs
    /// kernel per benchmark with the ratio from the same run, CNI latency CDFs.
    Report {
        /// Directory whose *.json files are read.
        #[arg(long, default_value = "perf/results")]
        results: PathBuf,
        /// Markdown report [default: <results>/report.md].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Directory for the plots [default: <results>/plots].
        #[arg(long)]
        plots: Option<PathBuf>,
        /// TrueType font for the text in the plots [default: DejaVu Sans from fonts-dejavu-core].
        #[arg(long)]
        font: Option<PathBuf>,
    },
}
