//! Live metrics (Prometheus) and per-run latency histograms.
//!
//! [`Metrics`] holds the process's Prometheus registry: latency histograms per pipeline stage,
//! counters and gauges, shared by reference (`Arc`) between the loop that updates them and the
//! HTTP endpoint that serves [`Metrics::render`]. [`LatencyHistogram`] is a small mergeable
//! log-bucket histogram that runs keep for their own `timing.json` and that `arbor report`
//! merges across runs. Latencies are wall-clock measurements; they never feed back into what
//! a run decides, so runs stay deterministic.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// The stages of the perceive -> remember -> decide -> act loop that are timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Camera frame to pixels (perception pipeline).
    FrameDecode,
    /// Detector inference (perception pipeline).
    Detection,
    /// Multi-object tracking (perception pipeline).
    Tracking,
    /// Producing the tick's observations (the simulator's camera, or the perception pipeline).
    Perceive,
    /// Working memory update from the observations.
    MemoryUpdate,
    /// Appending events to episodic memory (SQLite).
    MemoryWrite,
    /// Retrieval of memory for planning.
    Retrieval,
    /// Planning a tree (LLM).
    Plan,
    /// One tree tick (the engine, the skills it starts and polls).
    TreeTick,
    /// Writing the tick to the recording.
    Record,
}

impl Stage {
    pub const ALL: [Stage; 10] = [
        Stage::FrameDecode,
        Stage::Detection,
        Stage::Tracking,
        Stage::Perceive,
        Stage::MemoryUpdate,
        Stage::MemoryWrite,
        Stage::Retrieval,
        Stage::Plan,
        Stage::TreeTick,
        Stage::Record,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::FrameDecode => "frame_decode",
            Stage::Detection => "detection",
            Stage::Tracking => "tracking",
            Stage::Perceive => "perceive",
            Stage::MemoryUpdate => "memory_update",
            Stage::MemoryWrite => "memory_write",
            Stage::Retrieval => "retrieval",
            Stage::Plan => "plan",
            Stage::TreeTick => "tree_tick",
            Stage::Record => "record",
        }
    }
}

/// Log-spaced buckets: 10 per decade from 100 ns to 100 s (upper edges, seconds).
fn bucket_edges() -> &'static [f64] {
    static EDGES: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    EDGES.get_or_init(|| (0..=90).map(|i| 1e-7 * 10f64.powf(f64::from(i) / 10.0)).collect())
}

/// A mergeable latency histogram (counts per log bucket, plus exact count, sum and max).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyHistogram {
    pub count: u64,
    pub sum_s: f64,
    pub max_s: f64,
    /// Counts by bucket index (sparse): bucket i holds values up to 1e-7 * 10^(i/10) s.
    pub buckets: BTreeMap<u32, u64>,
}

impl LatencyHistogram {
    pub fn record(&mut self, seconds: f64) {
        let s = if seconds.is_finite() { seconds.max(0.0) } else { 0.0 };
        let edges = bucket_edges();
        let i = edges.partition_point(|&e| e < s).min(edges.len() - 1) as u32;
        *self.buckets.entry(i).or_default() += 1;
        self.count += 1;
        self.sum_s += s;
        self.max_s = self.max_s.max(s);
    }

    pub fn merge(&mut self, other: &LatencyHistogram) {
        for (i, n) in &other.buckets {
            *self.buckets.entry(*i).or_default() += n;
        }
        self.count += other.count;
        self.sum_s += other.sum_s;
        self.max_s = self.max_s.max(other.max_s);
    }

    pub fn mean(&self) -> f64 {
        if self.count == 0 { 0.0 } else { self.sum_s / self.count as f64 }
    }

    /// The q-quantile (0..1), interpolated within its bucket (log scale); within ~12 %.
    pub fn quantile(&self, q: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let edges = bucket_edges();
        let target = (q.clamp(0.0, 1.0) * self.count as f64).max(1.0);
        let mut seen = 0.0;
        for (&i, &n) in &self.buckets {
            let next = seen + n as f64;
            if next >= target {
                let hi = edges[i as usize];
                let lo = if i == 0 { hi / 10f64.powf(0.1) } else { edges[i as usize - 1] };
                let frac = ((target - seen) / n as f64).clamp(0.0, 1.0);
                return (lo * (hi / lo).powf(frac)).min(self.max_s);
            }
            seen = next;
        }
        self.max_s
    }

    /// (upper edge in seconds, count) of the non-empty buckets.
    pub fn bins(&self) -> Vec<(f64, u64)> {
        let edges = bucket_edges();
        self.buckets.iter().map(|(&i, &n)| (edges[i as usize], n)).collect()
    }
}

/// Per-stage latencies of one run (for `timing.json`).
pub type StageLatencies = BTreeMap<Stage, LatencyHistogram>;

/// The process's live metrics.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub stage_latency: HistogramVec,
    /// `stage_latency` per stage, looked up once (no label hashing per observation).
    by_stage: Vec<Histogram>,
    pub plan_ttft: Histogram,
    pub plan_tokens_per_s: Histogram,
    pub skill_duration: HistogramVec,
    pub ticks: IntCounter,
    pub node_visits: IntCounter,
    pub skill_calls: IntCounterVec,
    pub plans: IntCounterVec,
    pub plan_attempts: IntCounter,
    pub plan_cache_hits: IntCounter,
    pub duplicate_requests_avoided: IntCounter,
    pub frames_dropped: IntCounter,
    pub errors: IntCounterVec,
    pub runs: IntCounterVec,
    pub observations: IntCounter,
    pub memory_events: IntCounter,
    pub tracked_entities: IntGauge,
    pub working_memory_entities: IntGauge,
    pub working_memory_events: IntGauge,
    pub queue_depth: IntGaugeVec,
    pub sim_time_us: IntGauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").field("ticks", &self.ticks.get()).finish()
    }
}

/// Prometheus buckets for latencies: 1 us to ~30 s, x3 steps.
fn latency_buckets() -> Vec<f64> {
    (0..16).map(|i| 1e-6 * 3f64.powi(i)).collect()
}

impl Metrics {
    /// Every metric arbor exports, registered and at zero.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("arbor".into()), None)?;
        let r = &registry;
        fn reg<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, m: T) -> Result<T, prometheus::Error> {
            r.register(Box::new(m.clone()))?;
            Ok(m)
        }
        let hist = |name: &str, help: &str, buckets: Vec<f64>| HistogramOpts::new(name, help).buckets(buckets);
        let stage_latency = reg(
            r,
            HistogramVec::new(
                hist("stage_latency_seconds", "Wall time per pipeline stage and call", latency_buckets()),
                &["stage"],
            )?,
        )?;
        // Present from the start, so dashboards show every stage (empty until used).
        let by_stage = Stage::ALL.iter().map(|s| stage_latency.with_label_values(&[s.name()])).collect();
        let m = Metrics {
            by_stage,
            stage_latency,
            plan_ttft: reg(
                r,
                Histogram::with_opts(hist(
                    "plan_time_to_first_token_seconds",
                    "LLM planner: time to the first generated token",
                    latency_buckets(),
                ))?,
            )?,
            plan_tokens_per_s: reg(
                r,
                Histogram::with_opts(hist(
                    "plan_tokens_per_second",
                    "LLM planner: generation speed after the first token",
                    vec![5.0, 10.0, 20.0, 40.0, 60.0, 80.0, 100.0, 150.0, 200.0, 400.0],
                ))?,
            )?,
            skill_duration: reg(
                r,
                HistogramVec::new(
                    hist(
                        "skill_duration_seconds",
                        "Robot time from a skill's start to its end",
                        vec![0.01, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 60.0, 300.0],
                    ),
                    &["skill", "result"],
                )?,
            )?,
            ticks: reg(r, IntCounter::new("ticks_total", "Tree ticks")?)?,
            node_visits: reg(r, IntCounter::new("node_visits_total", "Tree nodes ticked")?)?,
            skill_calls: reg(
                r,
                IntCounterVec::new(Opts::new("skill_calls_total", "Skill calls started"), &["skill"])?,
            )?,
            plans: reg(
                r,
                IntCounterVec::new(Opts::new("plans_total", "Plans by result (ok, refused, failed)"), &["result"])?,
            )?,
            plan_attempts: reg(
                r,
                IntCounter::new("plan_attempts_total", "LLM generations (first tries and repairs)")?,
            )?,
            plan_cache_hits: reg(r, IntCounter::new("plan_cache_hits_total", "Plans answered from the cache")?)?,
            duplicate_requests_avoided: reg(
                r,
                IntCounter::new("duplicate_requests_avoided_total", "Identical concurrent plan requests served once")?,
            )?,
            frames_dropped: reg(r, IntCounter::new("frames_dropped_total", "Camera frames dropped")?)?,
            errors: reg(r, IntCounterVec::new(Opts::new("errors_total", "Errors by kind"), &["kind"])?)?,
            runs: reg(r, IntCounterVec::new(Opts::new("runs_total", "Finished runs by outcome"), &["outcome"])?)?,
            observations: reg(r, IntCounter::new("observations_total", "Observations perceived")?)?,
            memory_events: reg(r, IntCounter::new("memory_events_total", "Events written to episodic memory")?)?,
            tracked_entities: reg(r, IntGauge::new("tracked_entities", "Entities in view now")?)?,
            working_memory_entities: reg(
                r,
                IntGauge::new("working_memory_entities", "Entities held in working memory")?,
            )?,
            working_memory_events: reg(
                r,
                IntGauge::new("working_memory_events", "Recent events held in working memory")?,
            )?,
            queue_depth: reg(r, IntGaugeVec::new(Opts::new("queue_depth", "Items waiting in a queue"), &["queue"])?)?,
            sim_time_us: reg(r, IntGauge::new("sim_time_microseconds", "Robot (sim) time of the current run")?)?,
            registry,
        };
        // Known label values start at zero, so rates and dashboards work before the first event.
        for r in ["ok", "refused", "failed"] {
            m.plans.with_label_values(&[r]);
        }
        for o in ["success", "failure", "timeout"] {
            m.runs.with_label_values(&[o]);
        }
        m.errors.with_label_values(&["node_runtime"]);
        m.queue_depth.with_label_values(&["episodic_batch"]);
        Ok(m)
    }

    pub fn observe(&self, stage: Stage, d: Duration) {
        if let Some(h) = self.by_stage.get(stage as usize) {
            h.observe(d.as_secs_f64());
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let encoder = TextEncoder::new();
        if let Err(e) = encoder.encode(&self.registry.gather(), &mut buf) {
            return format!("# error encoding metrics: {e}\n");
        }
        String::from_utf8(buf).unwrap_or_default()
    }

    /// Names of every metric family (with the `arbor_` prefix), for dashboard checks.
    pub fn family_names(&self) -> Vec<String> {
        self.registry.gather().iter().map(|f| f.name().to_string()).collect()
    }
}

/// Per-tick metrics for a tree loop, cheap enough for the engine's own benchmark: ticks are
/// counted locally and published every `sample_every` ticks, and one tick in `sample_every` is
/// timed (into the run's histogram and Prometheus). `sample_every = 1` times every tick.
#[derive(Debug)]
pub struct TickMeter {
    metrics: Option<std::sync::Arc<Metrics>>,
    sample_every: u32,
    countdown: u32,
    unpublished: u64,
    published_visits: u64,
    /// The timed ticks' latencies.
    pub hist: LatencyHistogram,
}

impl TickMeter {
    pub fn new(metrics: Option<std::sync::Arc<Metrics>>, sample_every: u32) -> Self {
        Self {
            metrics,
            sample_every: sample_every.max(1),
            countdown: 0,
            unpublished: 0,
            published_visits: 0,
            hist: LatencyHistogram::default(),
        }
    }

    /// Call before the tick: the start time when this tick is to be timed.
    #[inline]
    pub fn start(&mut self) -> Option<std::time::Instant> {
        if self.countdown == 0 {
            self.countdown = self.sample_every;
            Some(std::time::Instant::now())
        } else {
            None
        }
    }

    /// Call after the tick with the executor's node-visit total.
    #[inline]
    pub fn done(&mut self, started: Option<std::time::Instant>, node_visits_total: u64) {
        self.countdown -= 1;
        self.unpublished += 1;
        if let Some(t0) = started {
            let d = t0.elapsed();
            self.hist.record(d.as_secs_f64());
            if let Some(m) = &self.metrics {
                m.observe(Stage::TreeTick, d);
            }
        }
        if self.countdown == 0 {
            self.publish(node_visits_total);
        }
    }

    /// Publishes the counts not yet published (call at the end of a run).
    pub fn publish(&mut self, node_visits_total: u64) {
        if let Some(m) = &self.metrics {
            m.ticks.inc_by(self.unpublished);
            m.node_visits.inc_by(node_visits_total.saturating_sub(self.published_visits));
        }
        self.unpublished = 0;
        self.published_visits = node_visits_total;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_are_close() {
        let mut h = LatencyHistogram::default();
        for i in 1..=1000 {
            h.record(f64::from(i) * 1e-6);
        }
        assert_eq!(h.count, 1000);
        let p50 = h.quantile(0.5);
        assert!((p50 - 500e-6).abs() / 500e-6 < 0.15, "{p50}");
        let p99 = h.quantile(0.99);
        assert!((p99 - 990e-6).abs() / 990e-6 < 0.15, "{p99}");
        assert!(h.quantile(1.0) <= h.max_s);
        let mut m = h.clone();
        m.merge(&h);
        assert_eq!(m.count, 2000);
        assert!((m.quantile(0.5) - p50).abs() < 1e-12);
        let text = serde_json::to_string(&m).unwrap();
        let back = serde_json::from_str::<LatencyHistogram>(&text).unwrap();
        assert_eq!((back.count, &back.buckets), (m.count, &m.buckets));
        assert!((back.sum_s - m.sum_s).abs() < 1e-12);
    }

    #[test]
    fn tick_meter_samples_and_publishes_everything() {
        let m = std::sync::Arc::new(Metrics::new().unwrap());
        let mut meter = TickMeter::new(Some(m.clone()), 4);
        for i in 1..=10u64 {
            let t0 = meter.start();
            meter.done(t0, i * 7);
        }
        assert_eq!(meter.hist.count, 3, "ticks 1, 5, 9 are timed");
        assert_eq!(m.ticks.get(), 8, "published every 4 ticks");
        meter.publish(70);
        assert_eq!((m.ticks.get(), m.node_visits.get()), (10, 70));
    }

    #[test]
    fn metrics_render_as_prometheus_text() {
        let m = Metrics::new().unwrap();
        m.ticks.inc_by(3);
        m.observe(Stage::TreeTick, Duration::from_micros(40));
        let text = m.render();
        assert!(text.contains("arbor_ticks_total 3"), "{text}");
        assert!(text.contains("arbor_stage_latency_seconds_count{stage=\"tree_tick\"} 1"), "{text}");
        assert!(text.contains("stage=\"detection\""), "every stage is listed from the start");
        assert!(m.family_names().contains(&"arbor_ticks_total".to_string()));
    }
}
