//! The load driver: concurrent workers sending requests until a budget is spent.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::time::Instant;

use crate::options::Budget;
use crate::server::{cpu_of, cpu_secs};

pub(crate) struct Load {
    /// Latency of each successful request, ms.
    pub(crate) lat: Vec<f64>,
    wall: f64,
    pub(crate) errors: usize,
    pub(crate) first_error: Option<String>,
    /// Units of work done (requests, rows, calls...), summed over successful requests.
    units: u64,
    pub(crate) server_cpu: f64,
    pub(crate) client_cpu: f64,
}

impl Load {
    pub(crate) fn pct(&self, p: f64) -> Option<f64> {
        pct(&self.lat, p)
    }
    pub(crate) fn rate(&self) -> Option<f64> {
        (self.units > 0 && self.wall > 0.0).then(|| self.units as f64 / self.wall)
    }
}

pub(crate) fn pct(samples: &[f64], p: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1])
}

/// Runs `op(i)` from `conc` concurrent workers until the budget is spent; each call returns
/// the units of work it did.
pub(crate) async fn drive<F, Fut>(pids: &[u32], conc: usize, budget: Budget, op: F) -> Load
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<u64, String>>,
{
    let issued = Cell::new(0usize);
    let out = RefCell::new(Load {
        lat: Vec::new(),
        wall: 0.0,
        errors: 0,
        first_error: None,
        units: 0,
        server_cpu: 0.0,
        client_cpu: 0.0,
    });
    let (server0, client0) = (cpu_of(pids), cpu_secs("self"));
    let start = Instant::now();
    let worker = |_| async {
        loop {
            let i = issued.get();
            if i >= budget.max || (i >= budget.min && start.elapsed() >= budget.time) {
                break;
            }
            issued.set(i + 1);
            let t = Instant::now();
            let result = op(i).await;
            let ms = t.elapsed().as_secs_f64() * 1e3;
            let mut o = out.borrow_mut();
            match result {
                Ok(units) => {
                    o.lat.push(ms);
                    o.units += units;
                }
                Err(e) => {
                    o.errors += 1;
                    o.first_error.get_or_insert(e);
                }
            }
        }
    };
    futures_util::future::join_all((0..conc).map(worker)).await;
    let mut o = out.into_inner();
    o.wall = start.elapsed().as_secs_f64();
    o.server_cpu = cpu_of(pids) - server0;
    o.client_cpu = cpu_secs("self") - client0;
    o
}
