//! Steady-state ticks allocate nothing: a counting global allocator watches ticks of the
//! benchmark trees (a) and (b) after a warm-up.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]
#![allow(
    unsafe_code,
    reason = "a GlobalAlloc wrapper must implement an unsafe trait; it only counts and delegates to System"
)]

use arbor_behaviors::Executor;
use arbor_behaviors::bench_trees::{BenchRobot, library, tree_a, tree_b};
use arbor_behaviors::record::NullSink;
use arbor_core::SimTime;
use arbor_memory::WorkingMemory;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Only the test's own thread is counted: the test harness allocates on its threads too.
    static COUNTING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn count() {
    if COUNTING.with(std::cell::Cell::get) {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: delegates every call to the system allocator unchanged; only counts allocations.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A sink that wants every event and only counts them: the engine's reporting path itself
/// must not allocate either.
#[derive(Default)]
struct Counter(u64);

impl arbor_behaviors::record::TickSink for Counter {
    fn transition(
        &mut self,
        _: u64,
        _: SimTime,
        _: u32,
        _: arbor_behaviors::NodeStatus,
        _: arbor_behaviors::NodeStatus,
    ) {
        self.0 += 1;
    }
    fn skill_started(&mut self, _: u64, _: SimTime, _: u64, _: u32, _: &arbor_behaviors::Params) {
        self.0 += 1;
    }
    fn skill_finished(&mut self, _: u64, _: SimTime, _: u64, _: u32, _: &arbor_behaviors::SkillStatus) {
        self.0 += 1;
    }
}

fn executor(tree: arbor_behaviors::Tree) -> Executor {
    Executor::new(&tree.check("t", &library(), None, false).unwrap()).unwrap()
}

#[test]
fn ticking_allocates_nothing_in_steady_state() {
    COUNTING.with(|c| c.set(true));
    let mem = WorkingMemory::default();
    let mut robot = BenchRobot;

    let mut a = executor(tree_a(10, 100));
    let mut b = executor(tree_b());
    for t in 0..10 {
        a.tick(SimTime(t), &mut robot, &mem, &mut NullSink);
        a.reset(SimTime(t), &mut robot, &mem, &mut NullSink);
        b.tick(SimTime(t), &mut robot, &mem, &mut NullSink);
    }
    let before = ALLOCS.load(Ordering::Relaxed);
    for t in 10..1010 {
        assert!(a.tick(SimTime(t), &mut robot, &mem, &mut NullSink).is_done());
        a.reset(SimTime(t), &mut robot, &mem, &mut NullSink);
        b.tick(SimTime(t), &mut robot, &mem, &mut NullSink);
    }
    let after = ALLOCS.load(Ordering::Relaxed);
    assert_eq!(after - before, 0, "allocations in 1000 ticks of (a) and (b)");
    assert_eq!(a.stats().skill_calls, 1010 * 1000);

    let mut counter = Counter::default();
    let before = ALLOCS.load(Ordering::Relaxed);
    for t in 0..100 {
        a.tick(SimTime(t), &mut robot, &mem, &mut counter);
        a.reset(SimTime(t), &mut robot, &mem, &mut counter);
    }
    assert_eq!(ALLOCS.load(Ordering::Relaxed) - before, 0, "allocations with a listening sink");
    // Per tick: 1000 starts + 1000 finishes; each leaf idle -> success -> idle; each of the
    // 11 sequences idle -> running -> success -> idle.
    assert_eq!(counter.0, 100 * (2000 + 2 * 1000 + 3 * 11));
}
