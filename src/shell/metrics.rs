//! What a request costs on the platform's meters that the runtime does not report per request:
//! Durable Object storage rows read and written, Durable Object calls (and their wall time,
//! which Durable Object duration bills), KV reads, writes and lists, fleet index (D1) statements. Counted where the calls
//! are made ([`super::storage`], [`super::rpc`], [`super::kv`]) and reported only for the
//! benchmark: with the var `BENCH_METRICS = "true"` every response carries the counts of its
//! request in the `x-edgemdm-metrics` header (JSON).
//!
//! The counters are per isolate. Local workerd runs the Worker and its objects in one isolate,
//! so a request's counts include the storage of the objects it called, exactly when requests
//! do not overlap (the benchmark sends them one at a time). Rows are counted as the key-value
//! storage API touches keys: a `get` reads one row, a `list` one per key returned, each key
//! put or deleted writes one.

use serde::Serialize;
use std::cell::Cell;

pub const HEADER: &str = "x-edgemdm-metrics";
/// The isolate's counts since it started: work that runs after a response (`waitUntil`, such
/// as the fleet index writes) shows in the difference between two requests' totals.
pub const TOTAL_HEADER: &str = "x-edgemdm-metrics-total";
pub const VAR: &str = "BENCH_METRICS";

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Counts {
    pub rows_read: u64,
    pub rows_written: u64,
    pub do_calls: u64,
    pub do_ms: f64,
    pub kv_reads: u64,
    pub kv_writes: u64,
    pub kv_lists: u64,
    /// Fleet index (D1) statements run.
    pub index_reads: u64,
    pub index_writes: u64,
    /// Rows D1 reports it read and wrote (what it bills).
    pub index_rows_read: u64,
    pub index_rows_written: u64,
}

/// Whether this deployment reports the counts (the var `BENCH_METRICS` is "true"). Counts the
/// runtime must be asked for (D1's result metadata) are read only then.
pub fn reporting(env: &worker::Env) -> bool {
    env.var(VAR).is_ok_and(|v| v.to_string() == "true")
}

thread_local! {
    static COUNTS: Cell<Counts> = Cell::new(Counts::default());
}

/// Adds to the isolate's counters.
pub fn add(f: impl FnOnce(&mut Counts)) {
    COUNTS.with(|c| {
        let mut v = c.get();
        f(&mut v);
        c.set(v);
    });
}

pub fn snapshot() -> Counts {
    COUNTS.with(Cell::get)
}

impl Counts {
    /// What was counted since `before`.
    pub fn since(self, before: Counts) -> Counts {
        Counts {
            rows_read: self.rows_read - before.rows_read,
            rows_written: self.rows_written - before.rows_written,
            do_calls: self.do_calls - before.do_calls,
            do_ms: self.do_ms - before.do_ms,
            kv_reads: self.kv_reads - before.kv_reads,
            kv_writes: self.kv_writes - before.kv_writes,
            kv_lists: self.kv_lists - before.kv_lists,
            index_reads: self.index_reads - before.index_reads,
            index_writes: self.index_writes - before.index_writes,
            index_rows_read: self.index_rows_read - before.index_rows_read,
            index_rows_written: self.index_rows_written - before.index_rows_written,
        }
    }
}
