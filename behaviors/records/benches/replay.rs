//! Recording and replay throughput on tree (a) of `shared/baselines.md` (1011 node visits per
//! tick), all in one run so the ratios hold: live ticking with no sink (the engine alone), live
//! ticking while recording to MCAP, and replay of that recording with recorded leaves
//! (everything compared). Throughput is in node visits per second.
//!
//! `cargo bench -p arbor-behaviors --bench replay`

#![allow(clippy::expect_used, reason = "benchmark setup: a tree that does not load is a broken benchmark")]

use arbor_behaviors::bench_trees::{BenchRobot, library, tree_a_repeated};
use arbor_behaviors::record::{NullSink, Recorder, TickSink};
use arbor_behaviors::{Executor, NodeStatus, yaml};
use arbor_core::SimTime;
use arbor_memory::WorkingMemory;
use arbor_records::recording::{ObservationsMsg, Recording, RecordingWriter, RunHeader, Topic, TreeMsg};
use arbor_records::replay;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::path::Path;

const TICKS: u32 = 40;

fn record(path: &Path, ticks: u32) -> (u64, arbor_behaviors::CheckedTree) {
    let tree = tree_a_repeated(ticks);
    let checked = tree.check("bench", &library(), None, false).expect("bench tree checks");
    let mut ex = Executor::new(&checked).expect("builds");
    let mut w = RecordingWriter::create(path, 10).expect("create");
    let header = RunHeader {
        skills: None,
        format: arbor_records::recording::FORMAT_VERSION,
        scenario: "bench".into(),
        goal: "bench".into(),
        seed: 0,
        tick_hz: 10.0,
        tree_source: "bench".into(),
        tree_author: "bench".into(),
        scenario_yaml: String::new(),
        working_memory: Default::default(),
        vocabulary: None,
    };
    w.put(Topic::Run, 0, &header);
    let nodes = ex.nodes();
    w.put(Topic::Tree, 0, &TreeMsg { name: tree.name.clone(), yaml: yaml::to_yaml(&tree), nodes: nodes.clone() });
    let mut sink = Recorder::new(&nodes, w);
    let mem = WorkingMemory::default();
    for k in 1..=u64::from(ticks) + 1 {
        let t = SimTime(k * 100_000);
        sink.out.put(
            Topic::Observations,
            t.micros(),
            &ObservationsMsg { tick: k, t_us: t.micros(), observations: vec![], stale: false },
        );
        let s = ex.tick(t, &mut BenchRobot, &mem, &mut sink);
        sink.out.end_tick();
        if s.is_done() {
            break;
        }
    }
    let visits = ex.stats().node_ticks;
    sink.out.finish().expect("finish");
    (visits, checked)
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.mcap");
    let (visits, checked) = record(&path, TICKS);
    let rec = Recording::open(&path).expect("opens");
    let report = replay::replay(&rec, &checked, "bench").expect("replays");
    assert!(report.identical() && report.replayed_status == NodeStatus::Success, "{report:?}");
    eprintln!(
        "recording: {} ticks, {} node visits, {} engine events, {:.1} MB",
        report.ticks_replayed,
        visits,
        report.events_compared,
        std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) as f64 / 1e6
    );

    let mut g = c.benchmark_group("tree_a_visits");
    g.throughput(Throughput::Elements(visits));
    g.sample_size(10);
    let mem = WorkingMemory::default();
    let run_live = |sink: &mut dyn TickSink| {
        let mut ex = Executor::new(&checked).expect("builds");
        for k in 1..=u64::from(TICKS) + 1 {
            if ex.tick(SimTime(k * 100_000), &mut BenchRobot, &mem, sink).is_done() {
                break;
            }
        }
    };
    g.bench_function("live_no_sink", |b| b.iter(|| run_live(&mut NullSink)));
    g.bench_function("live_recording_mcap", |b| {
        b.iter(|| {
            let w = RecordingWriter::create(&dir.path().join("live.mcap"), 10).expect("create");
            let ex = Executor::new(&checked).expect("builds");
            let mut sink = Recorder::new(&ex.nodes(), w);
            run_live(&mut sink);
            sink.out.finish().expect("finish")
        })
    });
    g.bench_function("replay_compare_all", |b| b.iter(|| replay::replay(&rec, &checked, "bench").expect("replays")));
    g.bench_function("read_recording", |b| b.iter(|| Recording::open(&path).expect("opens")));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(std::time::Duration::from_secs(1)).measurement_time(std::time::Duration::from_secs(4));
    targets = bench
}
criterion_main!(benches);
