//! Engine benchmarks, the shapes of `shared/baselines.md`, with raw bonsai-bt on the same
//! shapes in the same run so the ratio is visible:
//! (a) ns per node visit, root Sequence over 10 Sequences of 100 synchronous actions;
//! (b) ns per tick, ReactiveSequence of a condition + an action that stays RUNNING;
//! (c) load the 1000-node tree (a) from BT.CPP XML (parse + check + build).
//! (a) and (b) also run with the per-tick metrics work of the run loop (`*_with_metrics`): the
//! metrics' cost is the ratio of the two in the same run.
//!
//! `cargo bench -p arbor-behaviors --bench engine`; criterion prints time per iteration:
//! divide (a) by 1011 visits (the bench names say so).

#![allow(clippy::expect_used, reason = "benchmark setup: a tree that does not load is a broken benchmark")]

use arbor_behaviors::bench_trees::{BenchRobot, library, tree_a, tree_b};
use arbor_behaviors::metrics::{Metrics, TickMeter};
use arbor_behaviors::record::NullSink;
use arbor_behaviors::{Executor, xml};
use arbor_core::SimTime;
use arbor_memory::WorkingMemory;
use bonsai_bt::{Action, BT, Behavior, Event, Status, UpdateArgs};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

fn arbor_executor(tree: &arbor_behaviors::Tree) -> Executor {
    let checked = tree.check("bench", &library(), None, false).expect("bench tree checks");
    Executor::new(&checked).expect("bench tree builds")
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Noop,
    Cond,
    Busy,
}

fn bonsai_a() -> Behavior<Op> {
    Behavior::Sequence((0..10).map(|_| Behavior::Sequence((0..100).map(|_| Action(Op::Noop)).collect())).collect())
}

fn bonsai_b() -> Behavior<Op> {
    Behavior::Sequence(vec![Action(Op::Cond), Action(Op::Busy)]).memory(false)
}

fn bonsai_tick(bt: &mut BT<Op, ()>) -> Option<(Status, f64)> {
    let e: Event = UpdateArgs { dt: 0.0 }.into();
    bt.tick(&e, &mut |args, _| match *args.action {
        Op::Noop | Op::Cond => (Status::Success, args.dt),
        Op::Busy => (Status::Running, 0.0),
    })
}

fn bench(c: &mut Criterion) {
    let mem = WorkingMemory::default();

    let mut g = c.benchmark_group("a_1011_visits");
    g.throughput(Throughput::Elements(1011));
    let mut ex = arbor_executor(&tree_a(10, 100));
    let mut robot = BenchRobot;
    let mut t = 0u64;
    g.bench_function("arbor_tick_and_reset", |b| {
        b.iter(|| {
            t += 1;
            let s = ex.tick(SimTime(t), &mut robot, &mem, &mut NullSink);
            ex.reset(SimTime(t), &mut robot, &mem, &mut NullSink);
            black_box(s)
        })
    });
    // What a tree loop adds per tick with metrics on (`TickMeter`): every tick timed, and one
    // in 64 timed (counts published every 64 ticks).
    let metrics = std::sync::Arc::new(Metrics::new().expect("metrics"));
    for (name, every) in
        [("arbor_tick_and_reset_with_metrics_every_tick", 1), ("arbor_tick_and_reset_with_metrics_1_in_64", 64)]
    {
        let mut meter = TickMeter::new(Some(metrics.clone()), every);
        g.bench_function(name, |b| {
            b.iter(|| {
                t += 1;
                let t0 = meter.start();
                let s = ex.tick(SimTime(t), &mut robot, &mem, &mut NullSink);
                meter.done(t0, ex.stats().node_ticks);
                ex.reset(SimTime(t), &mut robot, &mem, &mut NullSink);
                black_box(s)
            })
        });
    }
    let mut bt = BT::new(bonsai_a(), ());
    g.bench_function("bonsai_tick_and_reset_bt", |b| {
        b.iter(|| {
            let s = bonsai_tick(&mut bt);
            bt.reset_bt();
            black_box(s)
        })
    });
    g.bench_function("bonsai_tick_only", |b| {
        b.iter_batched(|| BT::new(bonsai_a(), ()), |mut bt| black_box(bonsai_tick(&mut bt)), BatchSize::SmallInput)
    });
    g.finish();

    let mut g = c.benchmark_group("b_reactive_tick");
    let mut ex = arbor_executor(&tree_b());
    g.bench_function("arbor", |b| {
        b.iter(|| {
            t += 1;
            black_box(ex.tick(SimTime(t), &mut robot, &mem, &mut NullSink))
        })
    });
    for (name, every) in [("arbor_with_metrics_every_tick", 1), ("arbor_with_metrics_1_in_64", 64)] {
        let mut meter = TickMeter::new(Some(metrics.clone()), every);
        g.bench_function(name, |b| {
            b.iter(|| {
                t += 1;
                let t0 = meter.start();
                let s = ex.tick(SimTime(t), &mut robot, &mem, &mut NullSink);
                meter.done(t0, ex.stats().node_ticks);
                black_box(s)
            })
        });
    }
    let mut bt = BT::new(bonsai_b(), ());
    g.bench_function("bonsai", |b| b.iter(|| black_box(bonsai_tick(&mut bt))));
    g.finish();

    let mut g = c.benchmark_group("c_load_1000_nodes");
    let text = xml::to_xml(&tree_a(10, 100));
    let lib = library();
    g.bench_function("arbor_xml_parse_check_build", |b| {
        b.iter(|| {
            let tree = xml::parse(black_box(&text), "a.xml").expect("parses");
            let checked = tree.into_checked("a.xml", &lib, None, false).expect("checks");
            black_box(Executor::new(&checked).expect("builds"))
        })
    });
    g.bench_function("arbor_xml_parse_only", |b| b.iter(|| black_box(xml::parse(black_box(&text), "a.xml"))));
    g.bench_function("bonsai_build_from_rust_values", |b| b.iter(|| black_box(BT::new(bonsai_a(), ()))));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
