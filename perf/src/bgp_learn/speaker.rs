//! The learner under test: our speaker, in its own process (`brindle-perf bgp-learn-speaker`,
//! started by the orchestrator in its namespace), peering with GoBGP until it holds every
//! route.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use bgp::fsm::State;
use bgp::speaker::{PeerSpec, Speaker, SpeakerConfig};

use super::process::{cpu_seconds, vm_hwm_kib};
use super::{BoxError, GOBGP_AS, GOBGP_TO_OURS, OURS, OUR_AS};

/// Starts the speaker, peers with GoBGP, returns (after printing JSON) once the peer's
/// Adj-RIB-In holds `want` routes, or fails at `timeout`. `trace` prints the route count
/// over time to stderr.
pub fn speaker(want: u64, timeout: Duration, trace: bool) -> Result<(), BoxError> {
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let config = SpeakerConfig::new(OUR_AS, OURS, SocketAddr::from((OURS, 0)));
        let speaker = Speaker::start(config).await?;
        // The dataplane would consume these; drain them so they are not queued unbounded.
        if let Some(mut fib) = speaker.fib_changes() {
            tokio::spawn(async move { while fib.recv().await.is_some() {} });
        }
        let mut peer = PeerSpec::new(GOBGP_TO_OURS, GOBGP_AS);
        peer.hold_time = 90;
        speaker.add_peer(peer)?;
        let mut established = None;
        let mut first_route = None;
        loop {
            let status = speaker.status();
            let row = status.first();
            if established.is_none() && row.is_some_and(|r| r.state == State::Established) {
                established = Some(started.elapsed());
            }
            let held = row.map_or(0, |r| r.routes_received);
            if first_route.is_none() && held > 0 {
                first_route = Some(started.elapsed());
            }
            if trace {
                eprintln!("trace {:.3} {held}", started.elapsed().as_secs_f64());
            }
            if held >= want {
                let learned = started.elapsed();
                let hwm = vm_hwm_kib(Path::new("/proc/self/status")).unwrap_or(0);
                let cpu = cpu_seconds(Path::new("/proc/self/stat")).unwrap_or(0.0);
                println!(
                    "{{\"routes\":{held},\"established_s\":{:.3},\"first_route_s\":{:.3},\"learned_s\":{:.3},\"vm_hwm_kib\":{hwm},\"cpu_s\":{cpu:.3}}}",
                    established.unwrap_or(learned).as_secs_f64(),
                    first_route.unwrap_or(learned).as_secs_f64(),
                    learned.as_secs_f64()
                );
                speaker.shutdown();
                return Ok(());
            }
            if started.elapsed() > timeout {
                return Err(format!("timeout: {held} of {want} routes; {status:?}").into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
}
