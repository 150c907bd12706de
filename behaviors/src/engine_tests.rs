use super::*;
use crate::conditions;
use crate::record::VecSink;
use crate::skill::{ParamSpec, ParamType, SkillSpec};
use crate::yaml;
use std::collections::BTreeMap;

/// A robot whose actions take `ticks` polls and succeed (or fail when `fail: true`);
/// records every start, poll and halt.
#[derive(Default)]
struct ScriptRobot {
    log: Vec<String>,
    left: BTreeMap<CallId, i64>,
    flag: bool,
}

impl Robot for ScriptRobot {
    fn start(&mut self, call: &SkillCall<'_>, memory: &WorkingMemory) -> SkillStatus {
        self.log.push(format!("start {}", call.node));
        self.left.insert(call.id, call.number("ticks").unwrap_or(0.0) as i64);
        self.poll(call, memory)
    }
    fn poll(&mut self, call: &SkillCall<'_>, _memory: &WorkingMemory) -> SkillStatus {
        let left = self.left.entry(call.id).or_insert(0);
        if *left > 0 {
            *left -= 1;
            return SkillStatus::Running;
        }
        if call.params.get("fail").and_then(|v| v.as_bool()).unwrap_or(false) {
            SkillStatus::Failure("scripted failure".into())
        } else {
            SkillStatus::Success("done".into())
        }
    }
    fn halt(&mut self, call: &SkillCall<'_>) {
        self.log.push(format!("halt {}", call.node));
    }
    fn check(&mut self, call: &SkillCall<'_>, memory: &WorkingMemory) -> SkillStatus {
        if call.skill == "flag" {
            return if self.flag { SkillStatus::Success(String::new()) } else { SkillStatus::Failure(String::new()) };
        }
        conditions::evaluate(call, memory)
    }
}

fn registry() -> SkillRegistry {
    let mut r = SkillRegistry::new();
    r.register(SkillSpec::action(
        "work",
        "runs for a number of ticks",
        vec![
            ParamSpec::with_default("ticks", ParamType::Number { min: 0.0, max: 1e6 }, crate::Value::Number(0.0), ""),
            ParamSpec::with_default("fail", ParamType::Bool, crate::Value::Bool(false), ""),
        ],
    ));
    r.register(SkillSpec::condition("flag", "the robot's flag", vec![]));
    conditions::register(&mut r);
    r
}

fn executor(text: &str) -> Executor {
    let reg = registry();
    let tree = yaml::parse(text, "test").unwrap().check("test", &reg, None).unwrap();
    Executor::new(&tree, &reg)
}

fn run(ex: &mut Executor, robot: &mut ScriptRobot, max: usize) -> (NodeStatus, VecSink) {
    let mem = WorkingMemory::default();
    let mut sink = VecSink::default();
    let mut s = NodeStatus::Idle;
    for i in 0..max {
        s = ex.tick(SimTime::from_millis(100 * i as u64), 0.1, robot, &mem, &mut sink);
        if s.is_done() {
            break;
        }
    }
    (s, sink)
}

#[test]
fn sequence_runs_async_actions_to_success() {
    let mut ex = executor("root:\n  sequence:\n    - work: {ticks: 2}\n    - work: {ticks: 1}\n");
    let mut robot = ScriptRobot::default();
    let (s, sink) = run(&mut ex, &mut robot, 20);
    assert_eq!(s, NodeStatus::Success);
    assert_eq!(ex.stats().ticks, 4, "2 running ticks, then the second action runs 1 more");
    assert_eq!(robot.log, ["start sequence/work[0]", "start sequence/work[1]"]);
    let started = sink.0.iter().filter(|r| matches!(r.event, TickEvent::SkillStarted { .. })).count();
    assert_eq!(started, 2);
    assert_eq!(
        ex.tick(SimTime(0), 0.1, &mut robot, &WorkingMemory::default(), &mut VecSink::default()),
        NodeStatus::Success
    );
}

#[test]
fn reactive_sequence_halts_running_action_when_condition_fails() {
    let mut ex = executor("root:\n  reactive_sequence:\n    - flag:\n    - work: {ticks: 100}\n");
    let mut robot = ScriptRobot { flag: true, ..Default::default() };
    let mem = WorkingMemory::default();
    let mut sink = VecSink::default();
    for i in 0..3 {
        assert_eq!(ex.tick(SimTime(i), 0.1, &mut robot, &mem, &mut sink), NodeStatus::Running);
    }
    robot.flag = false;
    assert_eq!(ex.tick(SimTime(3), 0.1, &mut robot, &mem, &mut sink), NodeStatus::Failure);
    assert_eq!(robot.log, ["start reactive_sequence/work[1]", "halt reactive_sequence/work[1]"]);
    let halted: Vec<_> = sink.0.iter().filter(|r| matches!(r.event, TickEvent::SkillHalted { .. })).collect();
    assert_eq!(halted.len(), 1);
    assert_eq!(halted[0].tick, 4, "halted in the tick the condition failed");
}

#[test]
fn fallback_switches_and_retry_retries() {
    let mut ex = executor(
        "root:\n  fallback:\n    - work: {fail: true}\n    - retry:\n        num_attempts: 3\n        child:\n          work: {fail: true, ticks: 1}\n    - work: {}\n",
    );
    let mut robot = ScriptRobot::default();
    let (s, _) = run(&mut ex, &mut robot, 50);
    assert_eq!(s, NodeStatus::Success);
    let retried = robot.log.iter().filter(|l| l.contains("retry")).count();
    assert_eq!(retried, 3);
    assert_eq!(robot.log.last().map(String::as_str), Some("start fallback/work[2]"));
}

#[test]
fn timeout_fails_and_halts_its_child() {
    let mut ex = executor("root:\n  timeout:\n    seconds: 0.35\n    child:\n      work: {ticks: 100}\n");
    let mut robot = ScriptRobot::default();
    let (s, _) = run(&mut ex, &mut robot, 50);
    assert_eq!(s, NodeStatus::Failure);
    assert!(ex.stats().ticks <= 5, "{:?}", ex.stats());
    assert_eq!(robot.log, ["start timeout/work[0]", "halt timeout/work[0]"]);
}

#[test]
fn decorators_invert_and_force() {
    for (tree, want) in [
        ("root:\n  inverter:\n    child: {always_success: }\n", NodeStatus::Failure),
        ("root:\n  force_success:\n    child: {always_failure: }\n", NodeStatus::Success),
        ("root:\n  force_failure:\n    child: {always_success: }\n", NodeStatus::Failure),
        ("root:\n  reactive_fallback:\n    - always_failure:\n    - always_success:\n", NodeStatus::Success),
        ("root:\n  sequence:\n    - in_view: {entity: nobody}\n", NodeStatus::Failure),
    ] {
        let mut ex = executor(tree);
        let (s, _) = run(&mut ex, &mut ScriptRobot::default(), 5);
        assert_eq!(s, want, "{tree}");
    }
}

#[test]
fn external_halt_cancels_running_calls() {
    let mut ex = executor("root:\n  sequence:\n    - work: {ticks: 100}\n");
    let mut robot = ScriptRobot::default();
    let mut sink = VecSink::default();
    ex.tick(SimTime(0), 0.1, &mut robot, &WorkingMemory::default(), &mut sink);
    ex.halt(SimTime(1), &mut robot, &mut sink);
    assert_eq!(robot.log, ["start sequence/work[0]", "halt sequence/work[0]"]);
    assert_eq!(ex.status(), NodeStatus::Idle);
}

#[test]
fn same_inputs_same_records() {
    let text = "root:\n  sequence:\n    - work: {ticks: 3}\n    - reactive_sequence:\n        - flag:\n        - work: {ticks: 2}\n";
    let a = run(&mut executor(text), &mut ScriptRobot { flag: true, ..Default::default() }, 20).1;
    let b = run(&mut executor(text), &mut ScriptRobot { flag: true, ..Default::default() }, 20).1;
    assert_eq!(a.0, b.0);
    assert!(a.0.len() > 6);
}
