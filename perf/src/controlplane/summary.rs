//! Which datastore runs, and the summary of a series of timings.

use super::*;

/// Which datastore the node and the CNI plugin use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// etcd v3 started by the bench on the node namespace's loopback.
    Etcd,
    /// The embedded store in a file of the bench's work directory.
    Embedded,
}

impl std::str::FromStr for StoreKind {
    type Err = BenchError;
    fn from_str(s: &str) -> Result<StoreKind> {
        match s {
            "etcd" | "etcdv3" => Ok(StoreKind::Etcd),
            "embedded" => Ok(StoreKind::Embedded),
            other => Err(BenchError::Invalid {
                field: "datastore",
                value: quoted(other),
                reason: "expected etcdv3 or embedded".into(),
            }),
        }
    }
}

/// Percentiles of a set of durations, in milliseconds (nearest-rank, exact: the sets are small).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Summary {
    pub fn of(samples: &[Duration]) -> Summary {
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        let rank = |q: f64| -> f64 {
            if ms.is_empty() {
                return 0.0;
            }
            // Nearest rank: the smallest sample with at least q of the samples at or below it.
            let idx = ((q * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1;
            ms[idx]
        };
        let mean = if ms.is_empty() {
            0.0
        } else {
            ms.iter().sum::<f64>() / ms.len() as f64
        };
        Summary {
            count: ms.len(),
            p50_ms: round3(rank(0.50)),
            p99_ms: round3(rank(0.99)),
            max_ms: round3(ms.last().copied().unwrap_or(0.0)),
            mean_ms: round3(mean),
        }
    }
}

pub(super) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
