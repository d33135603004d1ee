//! The benchmark's namespaces: GoBGP joined by one veth pair to our speaker's namespace and
//! by another to BIRD's; daemons spawned in them, all removed by pid and name on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{BoxError, BIRD, GOBGP_TO_BIRD, GOBGP_TO_OURS, OURS, POLL};

/// Namespaces, files and daemons of one run; dropping it kills the daemons by pid and deletes
/// the namespaces by name.
pub(super) struct Lab {
    tag: String,
    pub(super) dir: PathBuf,
    pub(super) daemons: Vec<Child>,
}

impl Lab {
    fn ns(&self, role: &str) -> String {
        format!("{}-{role}", self.tag)
    }

    pub(super) fn new() -> Result<Lab, BoxError> {
        let pid = std::process::id();
        let tag = format!("blb{pid}");
        let dir = std::env::temp_dir().join(&tag);
        std::fs::create_dir_all(&dir)?;
        let lab = Lab {
            tag,
            dir,
            daemons: Vec::new(),
        };
        for role in ["gobgp", "ours", "bird"] {
            run(&["ip", "netns", "add", &lab.ns(role)])?;
            run(&["ip", "-n", &lab.ns(role), "link", "set", "lo", "up"])?;
        }
        let links = [
            ("ours", "o", OURS, GOBGP_TO_OURS),
            ("bird", "b", BIRD, GOBGP_TO_BIRD),
        ];
        for (role, c, learner, gobgp) in links {
            let (vl, vg) = (format!("{c}{pid}l"), format!("{c}{pid}g"));
            run(&[
                "ip",
                "link",
                "add",
                &vl,
                "netns",
                &lab.ns(role),
                "type",
                "veth",
                "peer",
                "name",
                &vg,
                "netns",
                &lab.ns("gobgp"),
            ])?;
            for (ns, dev, addr) in [(lab.ns(role), &vl, learner), (lab.ns("gobgp"), &vg, gobgp)] {
                run(&[
                    "ip",
                    "-n",
                    &ns,
                    "addr",
                    "add",
                    &format!("{addr}/24"),
                    "dev",
                    dev,
                ])?;
                run(&["ip", "-n", &ns, "link", "set", dev, "up"])?;
            }
        }
        Ok(lab)
    }

    /// Spawns `args` in namespace `role`; `ip netns exec` execs, so the child pid is the
    /// program's.
    pub(super) fn spawn(&mut self, role: &str, args: &[&str], out: Stdio) -> Result<u32, BoxError> {
        let log = std::fs::File::create(self.dir.join(format!("{role}.log")))?;
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(role)])
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(log)
            .spawn()?;
        let pid = child.id();
        self.daemons.push(child);
        Ok(pid)
    }

    pub(super) fn query(&self, role: &str, args: &[&str]) -> Result<String, BoxError> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns(role)])
            .args(args)
            .stdin(Stdio::null())
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.daemons {
            let _ = child.kill();
            let _ = child.wait();
        }
        for role in ["gobgp", "ours", "bird"] {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.ns(role)])
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(args: &[&str]) -> Result<(), BoxError> {
    let status = Command::new(args[0]).args(&args[1..]).status()?;
    if !status.success() {
        return Err(format!("{args:?} failed: {status}").into());
    }
    Ok(())
}

/// Polls `cond` every [`POLL`] until it holds or `within` passes.
pub(super) fn wait_for(
    within: Duration,
    mut cond: impl FnMut() -> Result<bool, BoxError>,
) -> Result<bool, BoxError> {
    let deadline = Instant::now() + within;
    loop {
        if cond()? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(POLL);
    }
}
