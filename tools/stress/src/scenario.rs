//! The scenarios, shared by every backend: `stress` (closed loop, bounded in-flight),
//! `realistic` (human cadence) and `rate` (open loop at a fixed rate).

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use rand_xoshiro::SplitMix64;
use rand_xoshiro::rand_core::{Rng as _, SeedableRng as _};
use serde::{Deserialize, Serialize};

use crate::backend::{Backend, Committed, Listener, Marker, Outcome, Writer};
use crate::metrics::{CpuMeter, Series, TaskStats, Timeline};

/// Which load shape to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// N writers flat out, each with the same bounded number of requests in flight.
    Stress,
    /// M users sending at human cadence (every 5–15 s, jittered) plus listeners.
    Realistic,
    /// Open loop at a fixed total rate; latency counts from the intended send time.
    Rate,
}

impl Scenario {
    pub fn as_str(self) -> &'static str {
        match self {
            Scenario::Stress => "stress",
            Scenario::Realistic => "realistic",
            Scenario::Rate => "rate",
        }
    }
}

/// At most this many connections (writers plus listeners): one per local port.
pub const MAX_CONNECTIONS: usize = 65_535;
/// At most this long for each of the duration, warm-up, timeout and drain.
pub const MAX_PHASE: Duration = Duration::from_secs(24 * 3600);
/// At most this many bytes of text per message (Socket.IO's default buffer is 1 MB).
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// Everything a scenario run needs to know.
#[derive(Debug, Clone)]
pub struct Plan {
    pub scenario: Scenario,
    pub duration: Duration,
    pub warmup: Duration,
    pub writers: usize,
    pub listeners: usize,
    pub in_flight: usize,
    /// Total messages per second (`rate`).
    pub rate: f64,
    /// Seconds between one user's messages (`realistic`).
    pub cadence: (f64, f64),
    pub seed: u64,
    pub message_bytes: usize,
    pub timeout: Duration,
    pub drain: Duration,
    /// Show a progress bar on the terminal.
    pub progress: bool,
}

impl Plan {
    pub fn check(&self) -> Result<()> {
        if self.writers == 0 {
            bail!("--writers must be at least 1");
        }
        if self.in_flight == 0 {
            bail!("--in-flight must be at least 1");
        }
        if self.duration.is_zero() {
            bail!("--duration must be more than 0 seconds");
        }
        if self.scenario == Scenario::Rate && !(self.rate > 0.0 && self.rate.is_finite()) {
            bail!("the rate scenario needs --rate <messages per second> above 0");
        }
        let (lo, hi) = self.cadence;
        if self.scenario == Scenario::Realistic && !(lo > 0.0 && hi >= lo && hi.is_finite()) {
            bail!("--cadence must be MIN..MAX seconds with 0 < MIN <= MAX");
        }
        // Every run stops by itself in bounded time and memory (the time series keeps one
        // slot per second; each connection is a local port).
        if self.writers + self.listeners > MAX_CONNECTIONS {
            bail!(
                "--writers plus --listeners is {}, above the {MAX_CONNECTIONS} connections one \
                 machine can open to one local port: use fewer",
                self.writers + self.listeners
            );
        }
        if self.message_bytes > MAX_MESSAGE_BYTES {
            bail!("--message-bytes must be at most {MAX_MESSAGE_BYTES} (1 MiB)");
        }
        for (flag, value) in [
            ("duration", self.duration),
            ("warmup", self.warmup),
            ("timeout", self.timeout),
            ("drain", self.drain),
        ] {
            if value > MAX_PHASE {
                bail!(
                    "--{flag} must be at most {} seconds (a day)",
                    MAX_PHASE.as_secs()
                );
            }
        }
        let day = MAX_PHASE.as_secs_f64();
        if self.scenario == Scenario::Rate && self.writers as f64 / self.rate > day {
            bail!(
                "--rate {}: each of the {} writers would send less than once a day; raise --rate",
                self.rate,
                self.writers
            );
        }
        if self.scenario == Scenario::Realistic && hi > day {
            bail!("--cadence MAX must be at most {day} seconds (a day)");
        }
        Ok(())
    }
}

/// Raw figures of one run, before they are written up.
pub struct RunOutput {
    pub stats: TaskStats,
    pub series: Arc<Series>,
    pub timeline: Timeline,
    /// Client CPU nanoseconds within the measurement window.
    pub cpu_ns: u64,
    pub committed: Option<Committed>,
    /// Whether any listener was connected.
    pub had_listener: bool,
    /// Acknowledged messages the reporting listener never saw (`None` without listeners).
    pub listener_missed: Option<u64>,
}

/// Small, seedable random numbers (SplitMix64: the same on every platform) for jitter and
/// phases.
struct Rng(SplitMix64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(SplitMix64::seed_from_u64(seed))
    }

    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        let unit = (self.0.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        lo + (hi - lo) * unit
    }
}

impl Plan {
    /// Time between one writer's sends (zero in the stress scenario).
    fn interval(&self, rng: &mut Rng) -> Duration {
        match self.scenario {
            Scenario::Stress => Duration::ZERO,
            Scenario::Rate => Duration::from_secs_f64(self.writers as f64 / self.rate),
            Scenario::Realistic => {
                Duration::from_secs_f64(rng.uniform(self.cadence.0, self.cadence.1))
            }
        }
    }

    /// When writer `index` sends first: open-loop writers are spread over one interval.
    fn first_send(&self, timeline: &Timeline, index: usize, rng: &mut Rng) -> Instant {
        match self.scenario {
            Scenario::Stress => timeline.start,
            Scenario::Rate => {
                timeline.start
                    + self
                        .interval(rng)
                        .mul_f64(index as f64 / self.writers as f64)
            }
            Scenario::Realistic => {
                timeline.start + Duration::from_secs_f64(rng.uniform(0.0, self.cadence.1))
            }
        }
    }
}

/// Runs the plan against a backend and verifies the result.
pub async fn run<B: Backend>(
    backend: Arc<B>,
    plan: &Plan,
    marker: Arc<Marker>,
    cpu: CpuMeter,
) -> Result<RunOutput> {
    plan.check()?;
    let plan = Arc::new(plan.clone());

    // Connect everything before the clock starts.
    let (writer_conns, listener_conns) = connect_all(&*backend, &plan).await?;
    let had_listener = !listener_conns.is_empty();

    let start = Instant::now() + Duration::from_millis(50);
    let timeline = Timeline {
        start,
        warmup: plan.warmup,
        end: plan.warmup + plan.duration,
    };
    let total_secs = (timeline.end + plan.drain + plan.timeout).as_secs() as usize + 8;
    let series = Arc::new(Series::new(start, total_secs));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let listener_seen = Arc::new(AtomicU64::new(0));

    let mut listeners = Vec::new();
    for (i, l) in listener_conns.into_iter().enumerate() {
        let ctx = ListenerCtx {
            index: i,
            timeline,
            marker: marker.clone(),
            series: series.clone(),
            stop: stop_rx.clone(),
            seen: listener_seen.clone(),
        };
        listeners.push(tokio::spawn(listener_task(l, ctx)));
    }

    let cpu_probe = {
        let cpu = cpu.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(timeline.at(timeline.warmup).into()).await;
            let a = cpu.read_ns();
            tokio::time::sleep_until(timeline.at(timeline.end).into()).await;
            cpu.read_ns().saturating_sub(a)
        })
    };

    let mut writers = Vec::new();
    for (i, w) in writer_conns.into_iter().enumerate() {
        let ctx = WriterCtx {
            index: i,
            plan: plan.clone(),
            timeline,
            marker: marker.clone(),
            series: series.clone(),
        };
        writers.push(tokio::spawn(writer_task(w, ctx)));
    }

    let progress = progress_bar(plan.progress, &timeline, &series);

    let mut stats = TaskStats::new();
    for handle in writers {
        stats.merge(handle.await.context("a writer task panicked")?);
    }
    // Give the listener time to see the last broadcasts, then stop it.
    if had_listener {
        let grace = plan.drain.max(Duration::from_millis(500));
        wait_for_listeners(&listener_seen, stats.totals.acknowledged, grace).await;
    }
    let _ = stop_tx.send(true);
    for handle in listeners {
        stats.merge(handle.await.context("a listener task panicked")?);
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    let cpu_ns = cpu_probe.await.context("the CPU probe task panicked")?;
    let listener_missed = stats.seen_ids.take().map(|seen| {
        stats
            .acked_ids
            .iter()
            .filter(|id| !seen.contains(id))
            .count() as u64
    });
    stats.acked_ids = Vec::new();
    let committed = backend
        .committed(&marker)
        .await
        .context("verification: cannot count the run's messages in the database")?;
    Ok(RunOutput {
        stats,
        series,
        timeline,
        cpu_ns,
        committed,
        had_listener,
        listener_missed,
    })
}

/// Opens every writer and listener connection.
async fn connect_all<B: Backend>(backend: &B, plan: &Plan) -> Result<(Vec<B::W>, Vec<B::L>)> {
    let mut writers = Vec::with_capacity(plan.writers);
    for i in 0..plan.writers {
        writers.push(
            backend
                .writer(i)
                .await
                .with_context(|| format!("cannot open writer connection {i}"))?,
        );
    }
    let mut listeners = Vec::new();
    for i in 0..plan.listeners {
        if let Some(l) = backend
            .listener(i)
            .await
            .with_context(|| format!("cannot open listener connection {i}"))?
        {
            listeners.push(l);
        }
    }
    Ok((writers, listeners))
}

/// Waits (at most 3 s, or `drain` if shorter) until the listeners saw `acknowledged` messages.
async fn wait_for_listeners(seen: &AtomicU64, acknowledged: u64, drain: Duration) {
    let grace = Instant::now() + Duration::from_secs(3).min(drain);
    while seen.load(Ordering::Relaxed) < acknowledged && Instant::now() < grace {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn progress_bar(show: bool, timeline: &Timeline, series: &Arc<Series>) -> Option<ProgressBar> {
    if !show {
        return None;
    }
    let bar = ProgressBar::new(timeline.end.as_secs());
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} s  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let bar2 = bar.clone();
    let series = series.clone();
    let timeline = *timeline;
    tokio::spawn(async move {
        let mut last = (Instant::now(), 0u64);
        while !bar2.is_finished() {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let now = Instant::now();
            let acked = series.total_acked.load(Ordering::Relaxed);
            let rate = (acked - last.1) as f64 / now.duration_since(last.0).as_secs_f64();
            last = (now, acked);
            let phase = if now < timeline.at(timeline.warmup) {
                "warm-up"
            } else if now < timeline.at(timeline.end) {
                "measuring"
            } else {
                "draining"
            };
            bar2.set_position(
                now.saturating_duration_since(timeline.start)
                    .as_secs()
                    .min(timeline.end.as_secs()),
            );
            bar2.set_message(format!(
                "{phase}: sent {} acked {acked} errors {} | {rate:.0} msg/s",
                series.total_sent.load(Ordering::Relaxed),
                series.total_errors.load(Ordering::Relaxed)
            ));
        }
    });
    Some(bar)
}

/// How late after the window an open-loop writer may still send what was due in it.
const LATE_GRACE: Duration = Duration::from_millis(50);

struct WriterCtx {
    index: usize,
    plan: Arc<Plan>,
    timeline: Timeline,
    marker: Arc<Marker>,
    series: Arc<Series>,
}

/// Requests of one writer awaiting an answer, by tag (tags are consecutive).
struct InFlight {
    base: u64,
    slots: VecDeque<Option<Instant>>,
    live: usize,
}

impl InFlight {
    fn push(&mut self, origin: Instant) {
        self.slots.push_back(Some(origin));
        self.live += 1;
    }

    fn take(&mut self, tag: u64) -> Option<Instant> {
        let i = usize::try_from(tag.checked_sub(self.base)?).ok()?;
        let origin = self.slots.get_mut(i)?.take()?;
        self.live -= 1;
        self.trim();
        Some(origin)
    }

    fn trim(&mut self) {
        while let Some(None) = self.slots.front() {
            self.slots.pop_front();
            self.base += 1;
        }
    }

    fn oldest(&self) -> Option<Instant> {
        self.slots.front().copied().flatten()
    }

    fn pop_oldest(&mut self) -> Option<Instant> {
        let origin = self.slots.pop_front()??;
        self.base += 1;
        self.live -= 1;
        self.trim();
        Some(origin)
    }
}

async fn writer_task<W: Writer>(mut w: W, ctx: WriterCtx) -> TaskStats {
    let WriterCtx {
        index,
        plan,
        timeline,
        marker,
        series,
    } = ctx;
    let mut stats = TaskStats::new();
    let mut rng = Rng::new(plan.seed ^ (index as u64 + 1).wrapping_mul(0xA076_1D64_78BD_642F));
    let end = timeline.at(timeline.end);
    let drain_deadline = end + plan.drain;
    let mut inflight = InFlight {
        base: 0,
        slots: VecDeque::new(),
        live: 0,
    };
    let mut seq = 0u64;
    let mut content = String::with_capacity(plan.message_bytes + 32);
    let interval = |rng: &mut Rng| plan.interval(rng);
    let mut next_send = plan.first_send(&timeline, index, &mut rng);
    tokio::time::sleep_until(timeline.start.into()).await;
    let sleep = tokio::time::sleep_until(drain_deadline.into());
    tokio::pin!(sleep);
    let mut broken = false;

    loop {
        let now = Instant::now();
        while inflight
            .oldest()
            .is_some_and(|origin| now >= origin + plan.timeout)
        {
            inflight.pop_oldest();
            stats.failed(&series, &timeline, "timeout", now);
        }
        // Closed loop sends until the window ends. Open loop sends everything scheduled
        // before the end, even a little late (a wake-up just after the end must not drop
        // the last scheduled message); what is still due after the grace is backlog.
        let sending = match plan.scenario {
            Scenario::Stress => now < end,
            _ => next_send < end && now < end + LATE_GRACE,
        };
        if broken || now >= drain_deadline || (!sending && inflight.live == 0) {
            break;
        }
        if sending {
            while inflight.live < plan.in_flight {
                let origin = match plan.scenario {
                    Scenario::Stress => now,
                    _ if next_send <= now && next_send < end => next_send,
                    _ => break,
                };
                let t_us = origin.saturating_duration_since(timeline.start).as_micros() as u64;
                marker.content(index, seq, t_us, plan.message_bytes, &mut content);
                if let Err(err) = w.send(seq, &content) {
                    stats.failed(&series, &timeline, &classify_send_error(&err), now);
                    broken = true;
                    break;
                }
                stats.sent(&series, &timeline, now);
                inflight.push(origin);
                seq += 1;
                if plan.scenario != Scenario::Stress {
                    next_send += interval(&mut rng);
                }
            }
        }
        let wake = wake_at(
            &plan,
            &inflight,
            sending.then_some(next_send),
            end,
            drain_deadline,
        );
        if sleep.deadline() != wake.into() {
            sleep.as_mut().reset(wake.into());
        }
        tokio::select! {
            biased;
            outcome = w.next_outcome() => {
                let at = (index, &*series, &timeline);
                broken |= !record(&mut stats, outcome, &mut inflight, at);
            }
            _ = &mut sleep => {}
        }
    }
    let now = Instant::now();
    report_backlog(&plan, (&mut stats, &series), next_send, end, &mut rng);
    let kind = if broken {
        "disconnected"
    } else {
        "unanswered_at_end"
    };
    while inflight.pop_oldest().is_some() {
        stats.failed(&series, &timeline, kind, now);
    }
    stats
}

/// Open-loop schedules that fell behind: sends that were due in the window but never made
/// it out are reported, not silently dropped.
fn report_backlog(
    plan: &Plan,
    (stats, series): (&mut TaskStats, &Series),
    mut next_send: Instant,
    end: Instant,
    rng: &mut Rng,
) {
    if plan.scenario == Scenario::Stress {
        return;
    }
    let now = Instant::now();
    while next_send < end {
        stats.error(series, "unsent_backlog", now);
        next_send += plan.interval(rng).max(Duration::from_micros(1));
    }
}

/// When a writer must wake up if no answer comes: the oldest request's timeout, the next
/// scheduled send (`next_send`, while sending), the end of the window, the drain deadline.
fn wake_at(
    plan: &Plan,
    inflight: &InFlight,
    next_send: Option<Instant>,
    end: Instant,
    drain_deadline: Instant,
) -> Instant {
    let mut wake = drain_deadline;
    if let Some(oldest) = inflight.oldest() {
        wake = wake.min(oldest + plan.timeout);
    }
    if let Some(next_send) = next_send {
        match plan.scenario {
            Scenario::Stress => wake = wake.min(end),
            _ if inflight.live < plan.in_flight => wake = wake.min(next_send),
            _ => wake = wake.min(end + LATE_GRACE),
        }
    }
    wake
}

/// Counts one answer; false when the connection is gone.
fn record(
    stats: &mut TaskStats,
    outcome: Result<Outcome>,
    inflight: &mut InFlight,
    (index, series, timeline): (usize, &Series, &Timeline),
) -> bool {
    let now = Instant::now();
    match outcome {
        Ok(Outcome::Acked(tag)) => match inflight.take(tag) {
            Some(origin) => {
                stats.acked(series, timeline, origin, now);
                stats.acked_ids.push((index, tag));
            }
            None => stats.error(series, "late_or_unknown_ack", now),
        },
        Ok(Outcome::Failed(tag, kind)) => {
            if inflight.take(tag).is_some() {
                stats.failed(series, timeline, &kind, now);
            } else {
                stats.error(series, "late_or_unknown_ack", now);
            }
        }
        Ok(Outcome::Error(kind)) => stats.error(series, &kind, now),
        Err(_) => {
            stats.error(series, "disconnected", now);
            return false;
        }
    }
    true
}

fn classify_send_error(err: &anyhow::Error) -> String {
    let text = format!("{err:#}").to_ascii_lowercase();
    if text.contains("closed") || text.contains("broken pipe") || text.contains("reset") {
        "disconnected".into()
    } else {
        "send_error".into()
    }
}

struct ListenerCtx {
    index: usize,
    timeline: Timeline,
    marker: Arc<Marker>,
    series: Arc<Series>,
    stop: tokio::sync::watch::Receiver<bool>,
    seen: Arc<AtomicU64>,
}

async fn listener_task<L: Listener>(mut l: L, mut ctx: ListenerCtx) -> TaskStats {
    let mut stats = TaskStats::new();
    stats.counts_deliveries = ctx.index == 0;
    let mut seen: HashSet<(usize, u64)> = HashSet::new();
    loop {
        tokio::select! {
            biased;
            _ = ctx.stop.changed() => break,
            text = l.next_text() => {
                let now = Instant::now();
                match text {
                    Ok((text, now)) => {
                        let timeline = ctx.timeline;
                        ctx.marker.find_all(&text, |w, s, t_us| {
                            // The marker comes back from the app: a mangled time must not panic.
                            let sent_at = Duration::from_micros(t_us);
                            let Some(origin) = timeline.start.checked_add(sent_at) else {
                                return;
                            };
                            if seen.insert((w, s)) {
                                stats.delivered(&ctx.series, &timeline, origin, now);
                            }
                        });
                        if stats.counts_deliveries {
                            ctx.seen.store(seen.len() as u64, Ordering::Relaxed);
                        }
                    }
                    Err(_) => {
                        stats.error(&ctx.series, "listener_disconnected", now);
                        break;
                    }
                }
            }
        }
    }
    if stats.counts_deliveries {
        stats.seen_ids = Some(seen);
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_that_would_not_end_or_fit_are_refused() {
        let ok = Plan {
            scenario: Scenario::Stress,
            duration: Duration::from_secs(30),
            warmup: Duration::from_secs(5),
            writers: 20,
            listeners: 1,
            in_flight: 8,
            rate: 0.0,
            cadence: (5.0, 15.0),
            seed: 1,
            message_bytes: 64,
            timeout: Duration::from_secs(10),
            drain: Duration::from_secs(10),
            progress: false,
        };
        ok.check().unwrap();
        let refused = |change: &dyn Fn(&mut Plan), flag: &str| {
            let mut plan = ok.clone();
            change(&mut plan);
            let err = format!("{:#}", plan.check().unwrap_err());
            assert!(err.contains(flag), "{flag}: {err}");
        };
        refused(
            &|p| p.duration = Duration::from_secs(1_000_000),
            "--duration",
        );
        refused(&|p| p.drain = Duration::from_secs(90_000), "--drain");
        refused(&|p| p.writers = 70_000, "--writers");
        refused(&|p| p.message_bytes = 1 << 30, "--message-bytes");
        refused(
            &|p| {
                p.scenario = Scenario::Rate;
                p.rate = 1e-300;
            },
            "--rate",
        );
        refused(
            &|p| {
                p.scenario = Scenario::Realistic;
                p.cadence = (1.0, 1e300);
            },
            "--cadence",
        );
    }

    #[test]
    fn in_flight_tracks_out_of_order_answers() {
        let t0 = Instant::now();
        let mut f = InFlight {
            base: 0,
            slots: VecDeque::new(),
            live: 0,
        };
        for i in 0..4 {
            f.push(t0 + Duration::from_millis(i));
        }
        assert_eq!(f.take(2), Some(t0 + Duration::from_millis(2)));
        assert_eq!(f.take(2), None, "a second answer is not counted twice");
        assert_eq!(f.take(0), Some(t0));
        assert_eq!(f.base, 1);
        assert_eq!(f.oldest(), Some(t0 + Duration::from_millis(1)));
        assert_eq!(f.pop_oldest(), Some(t0 + Duration::from_millis(1)));
        assert_eq!((f.base, f.live), (3, 1), "the answered slot 2 is skipped");
        assert_eq!(f.take(9), None);
        assert_eq!(f.take(3), Some(t0 + Duration::from_millis(3)));
        assert_eq!(f.live, 0);
    }

    #[test]
    fn jitter_stays_in_bounds_and_follows_the_seed() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..1000 {
            let x = a.uniform(5.0, 15.0);
            assert!((5.0..15.0).contains(&x));
            assert_eq!(x, b.uniform(5.0, 15.0));
        }
    }
}
