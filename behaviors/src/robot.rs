//! The interface through which skills act on a robot: the simulator implements it first,
//! ROS 2 later. Skills are asynchronous: started, polled once per tick, halted when the tree
//! stops needing them. Nothing here blocks the tick.

use crate::conditions;
use crate::value::Params;
use arbor_memory::WorkingMemory;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// Identifies one invocation of a skill, unique within a run.
pub type CallId = u64;

/// One invocation of a skill by one tree node.
#[derive(Debug, Clone, Copy)]
pub struct SkillCall<'a> {
    pub id: CallId,
    /// Path of the tree node that made the call.
    pub node: &'a str,
    pub skill: &'a str,
    /// Checked parameters, defaults filled in.
    pub params: &'a Params,
}

impl SkillCall<'_> {
    pub fn text(&self, key: &str) -> Option<&str> {
        self.params.get(key).and_then(|v| v.as_str())
    }

    pub fn number(&self, key: &str) -> Option<f64> {
        self.params.get(key).and_then(|v| v.as_f64())
    }
}

/// Where a skill invocation stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", content = "detail", rename_all = "snake_case")]
pub enum SkillStatus {
    Running,
    /// Done; the text says what was achieved ("arrived at kitchen").
    Success(String),
    /// Gave up; the text says why ("no path to garage").
    Failure(String),
}

impl SkillStatus {
    pub fn is_running(&self) -> bool {
        matches!(self, SkillStatus::Running)
    }
}

/// A robot (real or simulated) as the tree engine sees it.
pub trait Robot {
    /// Starts an action. May finish at once (return Success/Failure) or return Running.
    fn start(&mut self, call: &SkillCall<'_>, memory: &WorkingMemory) -> SkillStatus;
    /// Advances a running action; called once per tick while the tree still ticks it.
    fn poll(&mut self, call: &SkillCall<'_>, memory: &WorkingMemory) -> SkillStatus;
    /// Cancels a running action: the tree no longer ticks it. Must stop any motion it caused.
    fn halt(&mut self, call: &SkillCall<'_>);
    /// Answers a condition within the tick. The default answers the memory-backed
    /// conditions of [`conditions`]; a robot overrides it to add conditions of its own.
    fn check(&mut self, call: &SkillCall<'_>, memory: &WorkingMemory) -> SkillStatus {
        conditions::evaluate(call, memory)
    }
    /// What a call that has just succeeded leaves for its output ports (asked once, right after
    /// `start` or `poll` answered Success, and only of skills that declare outputs). The engine
    /// writes each to the blackboard entry the node remaps the port to (`{key}`).
    fn outputs(&mut self, _call: &SkillCall<'_>) -> Params {
        Params::new()
    }
}

/// A skill written as a Rust future (an async fn over a ROS action client, an HTTP call, ...).
pub type SkillFuture = Pin<Box<dyn Future<Output = SkillStatus> + Send>>;

/// Starts a future-based skill for one call.
pub type FutureFactory = Box<dyn FnMut(&SkillCall<'_>) -> SkillFuture + Send>;

/// Adapts async skills to the tick loop: each tick polls the call's future once (no
/// executor thread, no blocking); halting drops the future, which is how Rust cancels
/// async work. Wakers are not needed because the tree polls every tick anyway.
pub struct AsyncSkills {
    factories: BTreeMap<String, FutureFactory>,
    running: BTreeMap<CallId, SkillFuture>,
}

impl std::fmt::Debug for AsyncSkills {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncSkills")
            .field("skills", &self.factories.keys().collect::<Vec<_>>())
            .field("running", &self.running.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Default for AsyncSkills {
    fn default() -> Self {
        Self::new()
    }
}

impl AsyncSkills {
    pub fn new() -> Self {
        Self { factories: BTreeMap::new(), running: BTreeMap::new() }
    }

    pub fn add(&mut self, skill: &str, factory: FutureFactory) {
        self.factories.insert(skill.to_string(), factory);
    }

    /// Number of calls whose futures are alive (started, not finished, not halted).
    pub fn in_flight(&self) -> usize {
        self.running.len()
    }

    fn poll_call(&mut self, id: CallId) -> SkillStatus {
        let Some(fut) = self.running.get_mut(&id) else {
            return SkillStatus::Failure(format!("call {id} is not running"));
        };
        let mut cx = Context::from_waker(Waker::noop());
        match fut.as_mut().poll(&mut cx) {
            Poll::Pending => SkillStatus::Running,
            Poll::Ready(s) => {
                self.running.remove(&id);
                s
            }
        }
    }
}

impl Robot for AsyncSkills {
    fn start(&mut self, call: &SkillCall<'_>, _memory: &WorkingMemory) -> SkillStatus {
        let Some(factory) = self.factories.get_mut(call.skill) else {
            return SkillStatus::Failure(format!("no implementation for skill '{}'", call.skill));
        };
        let fut = factory(call);
        self.running.insert(call.id, fut);
        self.poll_call(call.id)
    }

    fn poll(&mut self, call: &SkillCall<'_>, _memory: &WorkingMemory) -> SkillStatus {
        self.poll_call(call.id)
    }

    fn halt(&mut self, call: &SkillCall<'_>) {
        self.running.remove(&call.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A future that is pending `n` times, then succeeds; counts drops (cancellations).
    struct Countdown {
        left: usize,
        dropped: Arc<AtomicUsize>,
    }
    impl Future for Countdown {
        type Output = SkillStatus;
        fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<SkillStatus> {
            if self.left == 0 {
                Poll::Ready(SkillStatus::Success("done".into()))
            } else {
                self.left -= 1;
                Poll::Pending
            }
        }
    }
    impl Drop for Countdown {
        fn drop(&mut self) {
            self.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn async_skills_poll_per_tick_and_cancel_on_halt() {
        let dropped = Arc::new(AtomicUsize::new(0));
        let d = dropped.clone();
        let mut skills = AsyncSkills::new();
        skills.add(
            "wait",
            Box::new(move |c| {
                Box::pin(Countdown { left: c.number("ticks").unwrap_or(0.0) as usize, dropped: d.clone() })
            }),
        );
        let mem = WorkingMemory::default();
        let params: Params = [("ticks".to_string(), crate::Value::Number(2.0))].into_iter().collect();
        let call = SkillCall { id: 1, node: "wait", skill: "wait", params: &params };
        assert_eq!(skills.start(&call, &mem), SkillStatus::Running);
        assert_eq!(skills.poll(&call, &mem), SkillStatus::Running);
        assert_eq!(skills.poll(&call, &mem), SkillStatus::Success("done".into()));
        assert_eq!(skills.in_flight(), 0);

        let call2 = SkillCall { id: 2, ..call };
        assert_eq!(skills.start(&call2, &mem), SkillStatus::Running);
        let before = dropped.load(Ordering::SeqCst);
        skills.halt(&call2);
        assert_eq!(dropped.load(Ordering::SeqCst), before + 1, "halt drops (cancels) the future");
        assert!(matches!(skills.poll(&call2, &mem), SkillStatus::Failure(_)));

        let unknown = SkillCall { id: 3, node: "x", skill: "fly", params: &params };
        assert!(matches!(skills.start(&unknown, &mem), SkillStatus::Failure(m) if m.contains("fly")));
    }
}
