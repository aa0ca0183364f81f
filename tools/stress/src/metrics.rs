//! What the client measures: per-task histograms and counts merged at the end, a shared
//! per-second time series, and the CPU time of the client's own threads.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bench_formats::stress::{Counts, LatencySummary, SecondSample};
use hdrhistogram::Histogram;

/// The run's time line: warm-up, measurement window, drain.
#[derive(Debug, Clone, Copy)]
pub struct Timeline {
    pub start: Instant,
    /// End of the warm-up, from `start`.
    pub warmup: Duration,
    /// End of the measurement window (no new sends after this), from `start`.
    pub end: Duration,
}

impl Timeline {
    pub fn at(&self, offset: Duration) -> Instant {
        self.start + offset
    }

    pub fn in_window(&self, t: Instant) -> bool {
        let since = t.saturating_duration_since(self.start);
        since >= self.warmup && since < self.end
    }

    pub fn window_seconds(&self) -> f64 {
        (self.end - self.warmup).as_secs_f64()
    }
}

/// Counts per second of the run, shared by all tasks (one atomic add per event).
pub struct Series {
    start: Instant,
    pub sent: Vec<AtomicU64>,
    pub acked: Vec<AtomicU64>,
    pub delivered: Vec<AtomicU64>,
    pub errors: Vec<AtomicU64>,
    /// Running totals, for the progress bar.
    pub total_sent: AtomicU64,
    pub total_acked: AtomicU64,
    pub total_errors: AtomicU64,
}

impl Series {
    pub fn new(start: Instant, seconds: usize) -> Series {
        let v = || (0..seconds).map(|_| AtomicU64::new(0)).collect();
        Series {
            start,
            sent: v(),
            acked: v(),
            delivered: v(),
            errors: v(),
            total_sent: AtomicU64::new(0),
            total_acked: AtomicU64::new(0),
            total_errors: AtomicU64::new(0),
        }
    }

    fn bump(&self, column: &[AtomicU64], at: Instant) {
        let second = at.saturating_duration_since(self.start).as_secs() as usize;
        if let Some(cell) = column.get(second) {
            cell.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn samples(&self, timeline: &Timeline) -> Vec<SecondSample> {
        let last = self
            .sent
            .iter()
            .zip(&self.acked)
            .zip(&self.delivered)
            .zip(&self.errors)
            .rposition(|(((s, a), d), e)| {
                s.load(Ordering::Relaxed)
                    + a.load(Ordering::Relaxed)
                    + d.load(Ordering::Relaxed)
                    + e.load(Ordering::Relaxed)
                    > 0
            })
            .map_or(0, |i| i + 1)
            .max(timeline.end.as_secs_f64().ceil() as usize);
        (0..last.min(self.sent.len()))
            .map(|i| {
                let t = Duration::from_secs(i as u64);
                SecondSample {
                    t: i as u32,
                    in_window: t >= timeline.warmup && t + Duration::from_secs(1) <= timeline.end,
                    sent: self.sent[i].load(Ordering::Relaxed),
                    acknowledged: self.acked[i].load(Ordering::Relaxed),
                    delivered: self.delivered[i].load(Ordering::Relaxed),
                    errors: self.errors[i].load(Ordering::Relaxed),
                }
            })
            .collect()
    }
}

/// What one task (a writer or a listener) measured; merged with the others at the end.
pub struct TaskStats {
    pub ack_latency: Histogram<u64>,
    pub fanout_latency: Histogram<u64>,
    pub totals: Counts,
    pub measured: Counts,
    pub errors: BTreeMap<String, u64>,
    /// Whether this task is the listener whose deliveries are reported.
    pub counts_deliveries: bool,
    /// `(writer, seq)` of every acknowledged message (writers) or of every message seen
    /// (the reporting listener), for the exact delivery check.
    pub acked_ids: Vec<(usize, u64)>,
    pub seen_ids: Option<std::collections::HashSet<(usize, u64)>>,
}

impl Default for TaskStats {
    fn default() -> Self {
        TaskStats::new()
    }
}

fn histogram() -> Histogram<u64> {
    // Microseconds from 1 µs to 10 minutes, 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3)
        .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!()))
}

impl TaskStats {
    pub fn new() -> TaskStats {
        TaskStats {
            ack_latency: histogram(),
            fanout_latency: histogram(),
            totals: Counts::default(),
            measured: Counts::default(),
            errors: BTreeMap::new(),
            counts_deliveries: false,
            acked_ids: Vec::new(),
            seen_ids: None,
        }
    }

    pub fn sent(&mut self, series: &Series, timeline: &Timeline, now: Instant) {
        self.totals.sent += 1;
        if timeline.in_window(now) {
            self.measured.sent += 1;
        }
        series.bump(&series.sent, now);
        series.total_sent.fetch_add(1, Ordering::Relaxed);
    }

    /// An acknowledged request: `origin` is when it was sent (or meant to be sent).
    pub fn acked(&mut self, series: &Series, timeline: &Timeline, origin: Instant, now: Instant) {
        self.totals.acknowledged += 1;
        if timeline.in_window(now) {
            self.measured.acknowledged += 1;
        }
        if timeline.in_window(origin) {
            record(&mut self.ack_latency, now.saturating_duration_since(origin));
        }
        series.bump(&series.acked, now);
        series.total_acked.fetch_add(1, Ordering::Relaxed);
    }

    pub fn failed(&mut self, series: &Series, timeline: &Timeline, kind: &str, now: Instant) {
        self.totals.failed += 1;
        if timeline.in_window(now) {
            self.measured.failed += 1;
        }
        *self.errors.entry(kind.to_string()).or_insert(0) += 1;
        series.bump(&series.errors, now);
        series.total_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// An error that is not about one request (a lost connection, a bad frame).
    pub fn error(&mut self, series: &Series, kind: &str, now: Instant) {
        *self.errors.entry(kind.to_string()).or_insert(0) += 1;
        series.bump(&series.errors, now);
        series.total_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub fn delivered(
        &mut self,
        series: &Series,
        timeline: &Timeline,
        origin: Instant,
        now: Instant,
    ) {
        self.totals.delivered_to_listener += 1;
        if timeline.in_window(now) {
            self.measured.delivered_to_listener += 1;
        }
        if timeline.in_window(origin) {
            record(
                &mut self.fanout_latency,
                now.saturating_duration_since(origin),
            );
        }
        if self.counts_deliveries {
            series.bump(&series.delivered, now);
        }
    }

    /// Adds another task's figures. Deliveries are taken only from the reporting listener.
    pub fn merge(&mut self, other: TaskStats) {
        let _ = self.ack_latency.add(&other.ack_latency);
        self.acked_ids.extend(other.acked_ids);
        if other.seen_ids.is_some() {
            self.seen_ids = other.seen_ids;
        }
        for (kind, n) in other.errors {
            *self.errors.entry(kind).or_insert(0) += n;
        }
        add_counts(&mut self.totals, &other.totals, other.counts_deliveries);
        add_counts(&mut self.measured, &other.measured, other.counts_deliveries);
        if other.counts_deliveries {
            let _ = self.fanout_latency.add(&other.fanout_latency);
        }
    }
}

fn add_counts(into: &mut Counts, from: &Counts, deliveries: bool) {
    into.sent += from.sent;
    into.acknowledged += from.acknowledged;
    into.failed += from.failed;
    if deliveries {
        into.delivered_to_listener += from.delivered_to_listener;
    }
}

fn record(h: &mut Histogram<u64>, d: Duration) {
    let us = (d.as_micros() as u64).clamp(1, h.high());
    let _ = h.record(us);
}

/// p50/p90/p99/p99.9/max of a histogram.
pub fn summarize(h: &Histogram<u64>) -> LatencySummary {
    if h.is_empty() {
        return LatencySummary::default();
    }
    LatencySummary {
        count: h.len(),
        min_us: h.min(),
        mean_us: (h.mean() * 10.0).round() / 10.0,
        p50_us: h.value_at_quantile(0.5),
        p90_us: h.value_at_quantile(0.9),
        p99_us: h.value_at_quantile(0.99),
        p999_us: h.value_at_quantile(0.999),
        max_us: h.max(),
    }
}

/// CPU time of a chosen set of threads: the client's runtime threads, so that a server
/// running in the same process (the no-op server of the headroom benchmark) is not counted.
///
/// Threads register their kernel thread id when they start and hand in their final CPU
/// time when they stop; a reading adds the live threads' CPU clocks to that.
#[derive(Clone, Default)]
pub struct CpuMeter {
    inner: Arc<Mutex<CpuThreads>>,
}

#[derive(Default)]
struct CpuThreads {
    live: Vec<i32>,
    retired_ns: u64,
}

fn clock_ns(clock: nix::time::ClockId) -> u64 {
    nix::time::clock_gettime(clock).map_or(0, |ts| {
        ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
    })
}

/// The calling thread's CPU time, nanoseconds.
fn own_cpu_ns() -> u64 {
    clock_ns(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
}

/// Linux's CPU-time clock of thread `tid` of this process: `(~tid << 3) | 6`
/// (per-thread, scheduler clock), what `pthread_getcpuclockid` returns.
fn thread_clock(tid: i32) -> nix::time::ClockId {
    nix::time::ClockId::from_raw((!tid << 3) | 6)
}

impl CpuMeter {
    /// Registers the calling thread (call from `on_thread_start`, or for the main thread).
    pub fn register_current(&self) {
        let me = nix::unistd::gettid().as_raw();
        if let Ok(mut t) = self.inner.lock() {
            t.live.push(me);
        }
    }

    /// Unregisters the calling thread, keeping its CPU time (call from `on_thread_stop`).
    pub fn retire_current(&self) {
        let me = nix::unistd::gettid().as_raw();
        let spent = own_cpu_ns();
        if let Ok(mut t) = self.inner.lock()
            && let Some(i) = t.live.iter().position(|&p| p == me)
        {
            t.live.swap_remove(i);
            t.retired_ns += spent;
        }
    }

    /// CPU nanoseconds used so far by the registered threads (live and stopped).
    pub fn read_ns(&self) -> u64 {
        let Ok(t) = self.inner.lock() else { return 0 };
        // Threads remove themselves (under this same lock) before they exit, so every
        // id here is a live thread of this process.
        t.retired_ns
            + t.live
                .iter()
                .map(|&tid| clock_ns(thread_clock(tid)))
                .sum::<u64>()
    }

    /// A tokio runtime whose threads this meter accounts for.
    pub fn runtime(&self, workers: usize) -> std::io::Result<tokio::runtime::Runtime> {
        let start = self.clone();
        let stop = self.clone();
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers.max(1))
            .thread_name("bench-stress-client")
            .enable_all()
            .on_thread_start(move || start.register_current())
            .on_thread_stop(move || stop.retire_current())
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_land_in_the_right_window_and_second() {
        let start = Instant::now();
        let timeline = Timeline {
            start,
            warmup: Duration::from_secs(1),
            end: Duration::from_secs(3),
        };
        let series = Series::new(start, 5);
        let mut stats = TaskStats::new();
        stats.counts_deliveries = true;
        let warm = start + Duration::from_millis(500);
        let inside = start + Duration::from_millis(1500);
        stats.sent(&series, &timeline, warm);
        stats.acked(&series, &timeline, warm, inside);
        stats.sent(&series, &timeline, inside);
        stats.acked(
            &series,
            &timeline,
            inside,
            inside + Duration::from_millis(2),
        );
        stats.delivered(
            &series,
            &timeline,
            inside,
            inside + Duration::from_millis(3),
        );
        stats.failed(
            &series,
            &timeline,
            "timeout",
            start + Duration::from_millis(3500),
        );
        assert_eq!(stats.totals.sent, 2);
        assert_eq!(stats.measured.sent, 1);
        assert_eq!(
            stats.measured.acknowledged, 2,
            "acks count when they arrive"
        );
        assert_eq!(
            stats.ack_latency.len(),
            1,
            "latency only for sends in the window"
        );
        assert_eq!(stats.measured.failed, 0);
        assert_eq!(stats.errors["timeout"], 1);
        let samples = series.samples(&timeline);
        assert_eq!(samples.len(), 4);
        assert_eq!(
            (samples[0].sent, samples[1].sent, samples[1].acknowledged),
            (1, 1, 2)
        );
        assert!(!samples[0].in_window && samples[1].in_window && samples[2].in_window);
        assert_eq!(samples[3].errors, 1);
        let mut merged = TaskStats::new();
        merged.merge(stats);
        assert_eq!(merged.totals.delivered_to_listener, 1);
        let s = summarize(&merged.ack_latency);
        assert!(s.p50_us >= 1900 && s.p50_us <= 2100, "{s:?}");
    }

    #[test]
    fn cpu_meter_sees_a_busy_runtime_thread() {
        let meter = CpuMeter::default();
        let rt = meter.runtime(1).unwrap();
        let before = meter.read_ns();
        rt.block_on(async {
            tokio::spawn(async {
                // Spin until this thread itself has used 50 ms of CPU (not wall time, so a
                // busy machine cannot make the test fail).
                let start = own_cpu_ns();
                let mut x = 0u64;
                while own_cpu_ns() - start < 50_000_000 {
                    x = x.wrapping_mul(31).wrapping_add(7);
                }
                std::hint::black_box(x);
            })
            .await
            .unwrap();
        });
        let used = meter.read_ns() - before;
        assert!(
            used >= 50_000_000,
            "a 50 ms busy loop was seen as {used} ns"
        );
        drop(rt);
        assert!(meter.read_ns() >= used, "stopped threads keep their time");
    }
}
