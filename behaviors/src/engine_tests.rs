//! Semantics of every node type (BT.CPP v4 documentation is the reference), halting included.
//!
//! Over 600 lines: the engine's unit tests, one per BT.CPP behaviour, kept beside each other.

use super::*;
use crate::conditions;
use crate::record::VecSink;
use crate::record::{TickEvent, TickRecord};
use crate::skill::{ParamSpec, SkillRegistry, SkillSpec};
use crate::yaml;
use std::collections::BTreeMap;

/// A robot whose `work` actions run for `ticks` polls and then succeed (or fail with
/// `fail: true`, or fail the first `fail_times` calls of that label). Logs starts and halts.
#[derive(Default)]
struct TestRobot {
    log: Vec<String>,
    left: BTreeMap<CallId, i64>,
    flags: BTreeMap<String, bool>,
    calls: BTreeMap<String, u32>,
}

impl TestRobot {
    fn label(call: &SkillCall<'_>) -> String {
        call.text("label").map(str::to_string).unwrap_or_else(|| call.node.to_string())
    }
    fn flag(mut self, name: &str, v: bool) -> Self {
        self.flags.insert(name.into(), v);
        self
    }
}

impl Robot for TestRobot {
    fn start(&mut self, call: &SkillCall<'_>, memory: &WorkingMemory) -> SkillStatus {
        let label = Self::label(call);
        self.log.push(format!("start {label}"));
        *self.calls.entry(label).or_default() += 1;
        self.left.insert(call.id, call.number("ticks").unwrap_or(0.0) as i64);
        self.poll(call, memory)
    }
    fn poll(&mut self, call: &SkillCall<'_>, _memory: &WorkingMemory) -> SkillStatus {
        let left = self.left.entry(call.id).or_insert(0);
        if *left > 0 {
            *left -= 1;
            return SkillStatus::Running;
        }
        let label = Self::label(call);
        let n = self.calls.get(&label).copied().unwrap_or(0);
        let fail_times = call.number("fail_times").unwrap_or(0.0) as u32;
        if call.params.get("fail").and_then(|v| v.as_bool()).unwrap_or(false) || n <= fail_times {
            SkillStatus::Failure("scripted failure".into())
        } else {
            SkillStatus::Success("done".into())
        }
    }
    fn halt(&mut self, call: &SkillCall<'_>) {
        self.log.push(format!("halt {}", Self::label(call)));
    }
    fn check(&mut self, call: &SkillCall<'_>, memory: &WorkingMemory) -> SkillStatus {
        if call.skill == "flag" {
            let name = call.text("key").unwrap_or_default();
            return if self.flags.get(name).copied().unwrap_or(false) {
                SkillStatus::Success(String::new())
            } else {
                SkillStatus::Failure(String::new())
            };
        }
        conditions::evaluate(call, memory)
    }
}

fn library() -> NodeLibrary {
    let mut r = SkillRegistry::new();
    let num = ParamType::Number { min: 0.0, max: 1e6 };
    r.register(SkillSpec::action(
        "work",
        "runs for a number of ticks",
        vec![
            ParamSpec::with_default("ticks", num.clone(), Value::Number(0.0), ""),
            ParamSpec::with_default("fail", ParamType::Bool, Value::Bool(false), ""),
            ParamSpec::with_default("fail_times", num, Value::Number(0.0), ""),
            ParamSpec::optional("label", ParamType::Text { max_len: 100 }, ""),
        ],
    ));
    r.register(SkillSpec::condition(
        "flag",
        "a robot flag",
        vec![ParamSpec::required("key", ParamType::Text { max_len: 100 }, "")],
    ));
    conditions::register(&mut r);
    NodeLibrary::with_skills(&r)
}

fn executor(text: &str) -> Executor {
    let tree = yaml::parse(text, "test").unwrap().check("test", &library(), None, false).unwrap();
    Executor::new(&tree).unwrap()
}

fn executor_xml(text: &str) -> Executor {
    let tree = crate::xml::parse(text, "test.xml").unwrap().check("test.xml", &library(), None, false).unwrap();
    Executor::new(&tree).unwrap()
}

struct Run {
    ex: Executor,
    robot: TestRobot,
    sink: VecSink,
    t: u64,
}

impl Run {
    fn new(ex: Executor, robot: TestRobot) -> Self {
        let sink = VecSink::collect(&ex.nodes());
        Self { ex, robot, sink, t: 0 }
    }
    fn yaml(text: &str) -> Self {
        Self::new(executor(text), TestRobot::default())
    }
    fn tick(&mut self) -> NodeStatus {
        self.t += 1;
        let mem = WorkingMemory::default();
        self.ex.tick(SimTime::from_millis(100 * self.t), &mut self.robot, &mem, &mut self.sink)
    }
    fn ticks(&mut self, n: usize) -> Vec<NodeStatus> {
        (0..n).map(|_| self.tick()).collect()
    }
    fn until_done(&mut self, max: usize) -> NodeStatus {
        for _ in 0..max {
            let s = self.tick();
            if s.is_done() {
                return s;
            }
        }
        self.ex.status()
    }
    fn reset(&mut self) {
        let mem = WorkingMemory::default();
        self.ex.reset(SimTime::from_millis(100 * self.t), &mut self.robot, &mem, &mut self.sink);
    }
    fn status_of(&self, path: &str) -> NodeStatus {
        let i = self
            .ex
            .nodes()
            .iter()
            .position(|n| n.path == path)
            .unwrap_or_else(|| panic!("no node {path}: {:?}", self.paths()));
        self.ex.statuses().nth(i).unwrap()
    }
    fn paths(&self) -> Vec<String> {
        self.ex.nodes().iter().map(|n| n.path.clone()).collect()
    }
    fn halts(&self) -> Vec<&TickRecord> {
        self.sink.records().iter().filter(|r| matches!(r.event, TickEvent::SkillHalted { .. })).collect()
    }
    fn errors(&self) -> Vec<String> {
        self.sink
            .records()
            .iter()
            .filter_map(|r| match &r.event {
                TickEvent::Error { message, .. } => Some(message.clone()),
                _ => None,
            })
            .collect()
    }
}

use NodeStatus::{Failure, Idle, Running, Skipped, Success};

#[test]
fn sequence_runs_children_in_order_and_restarts_after_failure() {
    let mut r = Run::yaml("root:\n  sequence:\n    - work: {ticks: 2, label: a}\n    - work: {ticks: 1, label: b}\n");
    assert_eq!(r.ticks(4), [Running, Running, Running, Success]);
    assert_eq!(r.robot.log, ["start a", "start b"]);
    assert_eq!(r.status_of("sequence/work[0]"), Idle, "children are reset when the sequence completes");
    // Failure: the next run starts again from the first child.
    let mut r = Run::yaml(
        "root:\n  retry:\n    num_attempts: 2\n    child:\n      sequence:\n        - work: {label: a}\n        - work: {label: b, fail_times: 1}\n",
    );
    assert_eq!(r.until_done(10), Success);
    assert_eq!(r.robot.log, ["start a", "start b", "start a", "start b"]);
}

#[test]
fn sequence_with_memory_resumes_at_the_failed_child() {
    let mut r = Run::yaml(
        "root:\n  retry:\n    num_attempts: 2\n    child:\n      sequence_with_memory:\n        - work: {label: a}\n        - work: {label: b, fail_times: 1}\n",
    );
    assert_eq!(r.until_done(10), Success);
    assert_eq!(r.robot.log, ["start a", "start b", "start b"]);
}

#[test]
fn fallback_tries_until_one_succeeds() {
    let mut r = Run::yaml(
        "root:\n  fallback:\n    - work: {label: a, fail: true}\n    - work: {label: b, ticks: 1}\n    - work: {label: c}\n",
    );
    assert_eq!(r.ticks(2), [Running, Success]);
    assert_eq!(r.robot.log, ["start a", "start b"]);
    let mut r = Run::yaml("root:\n  fallback:\n    - always_failure:\n    - always_failure:\n");
    assert_eq!(r.tick(), Failure);
}

#[test]
fn reactive_sequence_halts_the_running_child_in_the_tick_the_condition_fails() {
    let mut r = Run::new(
        executor("root:\n  reactive_sequence:\n    - flag: {key: ok}\n    - work: {ticks: 100, label: long}\n"),
        TestRobot::default().flag("ok", true),
    );
    assert_eq!(r.ticks(3), [Running, Running, Running]);
    r.robot.flags.insert("ok".into(), false);
    assert_eq!(r.tick(), Failure);
    assert_eq!(r.robot.log, ["start long", "halt long"]);
    assert_eq!(r.halts()[0].tick, 4);
    assert_eq!(r.status_of("reactive_sequence/work[1]"), Idle);
}

#[test]
fn reactive_fallback_preempts_a_lower_priority_child() {
    let mut r = Run::new(
        executor("root:\n  reactive_fallback:\n    - flag: {key: done}\n    - work: {ticks: 100, label: low}\n"),
        TestRobot::default(),
    );
    assert_eq!(r.ticks(2), [Running, Running]);
    r.robot.flags.insert("done".into(), true);
    assert_eq!(r.tick(), Success);
    assert_eq!(r.robot.log, ["start low", "halt low"]);
    assert_eq!(r.halts()[0].tick, 3);
}

#[test]
fn reactive_sequence_halts_a_later_running_child_when_an_earlier_one_runs() {
    // BT.CPP: when child i returns RUNNING, every other child is halted.
    let mut r = Run::new(
        executor(
            "root:\n  reactive_sequence:\n    - fallback:\n        - flag: {key: skip_a}\n        - work: {ticks: 100, label: a}\n    - work: {ticks: 100, label: b}\n",
        ),
        TestRobot::default().flag("skip_a", true),
    );
    assert_eq!(r.ticks(2), [Running, Running]);
    assert_eq!(r.robot.log, ["start b"]);
    r.robot.flags.insert("skip_a".into(), false);
    assert_eq!(r.tick(), Running);
    assert_eq!(r.robot.log, ["start b", "start a", "halt b"]);
}

#[test]
fn parallel_decides_by_thresholds_and_halts_the_rest() {
    let mut r = Run::yaml(
        "root:\n  parallel:\n    success_count: 1\n    children:\n      - work: {ticks: 1, label: fast}\n      - work: {ticks: 50, label: slow}\n",
    );
    assert_eq!(r.ticks(2), [Running, Success]);
    assert_eq!(r.robot.log, ["start fast", "start slow", "halt slow"]);
    // Default thresholds: all must succeed; one failure fails it.
    let mut r = Run::yaml(
        "root:\n  parallel:\n    - work: {ticks: 3, label: a}\n    - work: {ticks: 1, fail: true, label: b}\n",
    );
    assert_eq!(r.ticks(2), [Running, Failure]);
    assert_eq!(r.robot.log, ["start a", "start b", "halt a"]);
    // Success cannot be reached any more: fails early.
    let mut r = Run::yaml(
        "root:\n  parallel:\n    success_count: 2\n    failure_count: 2\n    children:\n      - work: {fail: true, label: a}\n      - work: {ticks: 9, label: b}\n",
    );
    assert_eq!(r.tick(), Failure);
}

#[test]
fn parallel_all_runs_everything_to_completion() {
    let mut r = Run::yaml(
        "root:\n  parallel_all:\n    max_failures: 2\n    children:\n      - work: {fail: true, label: a}\n      - work: {ticks: 2, label: b}\n      - always_success:\n",
    );
    assert_eq!(r.ticks(3), [Running, Running, Success], "1 failure < 2 allowed");
    let mut r = Run::yaml("root:\n  parallel_all:\n    - work: {fail: true}\n    - work: {ticks: 1}\n");
    assert_eq!(r.ticks(2), [Running, Failure]);
}

#[test]
fn if_then_else_and_while_do_else() {
    let mut r = Run::new(
        executor(
            "root:\n  if_then_else:\n    - flag: {key: c}\n    - work: {label: then}\n    - work: {label: else}\n",
        ),
        TestRobot::default(),
    );
    assert_eq!(r.tick(), Success);
    assert_eq!(r.robot.log, ["start else"]);
    let mut r = Run::yaml("root:\n  if_then_else:\n    - always_failure:\n    - always_success:\n");
    assert_eq!(r.tick(), Failure, "no else branch: failure");

    // WhileDoElse re-checks the condition every tick and halts the branch it leaves.
    let mut r = Run::new(
        executor(
            "root:\n  while_do_else:\n    - flag: {key: c}\n    - work: {ticks: 100, label: do}\n    - work: {ticks: 100, label: else}\n",
        ),
        TestRobot::default().flag("c", true),
    );
    assert_eq!(r.ticks(2), [Running, Running]);
    r.robot.flags.insert("c".into(), false);
    assert_eq!(r.tick(), Running);
    assert_eq!(r.robot.log, ["start do", "halt do", "start else"]);
}

#[test]
fn switch_picks_the_matching_case_and_halts_on_change() {
    let mut r = Run::yaml(
        "root:\n  switch2:\n    variable: '{mode}'\n    case_1: explore\n    case_2: '2'\n    children:\n      - work: {ticks: 100, label: explore}\n      - work: {ticks: 100, label: two}\n      - work: {ticks: 100, label: default}\n",
    );
    assert!(r.ex.blackboard_mut().set_key("mode", Value::Text("explore".into())));
    assert_eq!(r.tick(), Running);
    r.ex.blackboard_mut().set_key("mode", Value::Number(2.0));
    assert_eq!(r.tick(), Running);
    r.ex.blackboard_mut().set_key("mode", Value::Text("other".into()));
    assert_eq!(r.tick(), Running);
    assert_eq!(r.robot.log, ["start explore", "halt explore", "start two", "halt two", "start default"]);
}

#[test]
fn decorators() {
    for (tree, want) in [
        ("root:\n  inverter:\n    child: {always_success: }\n", Failure),
        ("root:\n  inverter:\n    child: {always_failure: }\n", Success),
        ("root:\n  force_success:\n    child: {always_failure: }\n", Success),
        ("root:\n  force_failure:\n    child: {always_success: }\n", Failure),
        ("root:\n  keep_running_until_failure:\n    child: {always_failure: }\n", Failure),
        ("root:\n  retry:\n    num_attempts: 3\n    child: {always_failure: }\n", Failure),
        ("root:\n  repeat:\n    num_cycles: 3\n    child: {always_success: }\n", Success),
        ("root:\n  repeat:\n    num_cycles: 3\n    child: {always_failure: }\n", Failure),
        ("root:\n  precondition:\n    if: 'false'\n    child: {always_success: }\n", Failure),
        ("root:\n  precondition:\n    if: 'false'\n    else: SUCCESS\n    child: {always_failure: }\n", Success),
        ("root:\n  precondition:\n    if: '1 < 2'\n    child: {always_failure: }\n", Failure),
    ] {
        // Repeat and Retry yield after each cycle a synchronous child finishes (BT.CPP 4.x).
        assert_eq!(Run::yaml(tree).until_done(10), want, "{tree}");
    }
}

#[test]
fn repeat_and_retry_count_calls() {
    let mut r = Run::yaml("root:\n  repeat:\n    num_cycles: 3\n    child:\n      work: {label: w}\n");
    assert_eq!(r.ticks(3), [Running, Running, Success], "synchronous child: one cycle per tick (BT.CPP 4.x)");
    assert_eq!(r.robot.calls["w"], 3);
    for forever in [
        "repeat:\n    num_cycles: -1\n    child: {always_success: }",
        "keep_running_until_failure:\n    child: {always_success: }",
    ] {
        assert_eq!(Run::yaml(&format!("root:\n  {forever}\n")).ticks(3), [Running, Running, Running], "{forever}");
    }
    let mut r = Run::yaml(
        "root:\n  retry:\n    num_attempts: 5\n    child:\n      work: {label: w, fail_times: 2, ticks: 1}\n",
    );
    assert_eq!(r.until_done(20), Success);
    assert_eq!(r.robot.calls["w"], 3);
}

#[test]
fn timeout_halts_the_child_in_the_same_tick() {
    let mut r = Run::yaml("root:\n  timeout:\n    msec: 350\n    child:\n      work: {ticks: 100, label: slow}\n");
    let s = r.ticks(5);
    assert_eq!(s, [Running, Running, Running, Running, Failure]);
    assert_eq!(r.robot.log, ["start slow", "halt slow"]);
    assert_eq!(r.halts()[0].tick, 5, "halted in the tick the time ran out");
    let mut r = Run::yaml("root:\n  timeout:\n    msec: 1000\n    child:\n      work: {ticks: 2}\n");
    assert_eq!(r.ticks(3), [Running, Running, Success]);
}

#[test]
fn delay_and_sleep_wait_in_sim_time() {
    let mut r = Run::yaml("root:\n  delay:\n    delay_msec: 250\n    child:\n      work: {label: w}\n");
    assert_eq!(r.ticks(4), [Running, Running, Running, Success]);
    let mut r = Run::yaml("root:\n  sleep: {msec: 200}\n");
    assert_eq!(r.ticks(3), [Running, Running, Success]);
}

#[test]
fn run_once_then_skips() {
    let mut r = Run::yaml(
        "root:\n  sequence:\n    - run_once:\n        child:\n          work: {label: once}\n    - work: {label: every}\n",
    );
    assert_eq!(r.tick(), Success);
    r.reset();
    assert_eq!(r.tick(), Success);
    assert_eq!(r.robot.log, ["start once", "start every", "start every"]);
    let mut r = Run::yaml("root:\n  run_once:\n    then_skip: false\n    child: {always_failure: }\n");
    assert_eq!(r.tick(), Failure);
    r.reset();
    assert_eq!(r.tick(), Failure, "then_skip=false repeats the first result");
}

#[test]
fn scripts_and_blackboard() {
    let mut r = Run::yaml(
        "root:\n  sequence:\n    - script: {code: \"n := 1; msg := 'hi'\"}\n    - script: {code: 'n += 2'}\n    - set_blackboard: {value: '{msg}', output_key: copy}\n    - script_condition: {code: \"n == 3 && copy == 'hi'\"}\n    - unset_blackboard: {key: msg}\n",
    );
    assert_eq!(r.tick(), Success);
    assert_eq!(r.ex.blackboard().get_key("n"), Some(&Value::Number(3.0)));
    assert_eq!(r.ex.blackboard().get_key("msg"), None);
    // A script error fails the node with a recorded error; nothing panics.
    let mut r = Run::yaml("root:\n  script: {code: 'x = missing + 1'}\n");
    assert_eq!(r.tick(), Failure);
    assert!(r.errors()[0].contains("'missing' is not set"), "{:?}", r.errors());
}

#[test]
fn skill_ports_read_the_blackboard_when_the_call_starts() {
    let mut r = Run::yaml(
        "root:\n  sequence:\n    - script: {code: \"who := 'alice'; n := 1\"}\n    - work: {label: '{who}', ticks: '{n}'}\n",
    );
    assert_eq!(r.ticks(2), [Running, Success]);
    assert_eq!(r.robot.log, ["start alice"]);
    let mut r = Run::yaml("root:\n  work: {label: '{nobody}'}\n");
    assert_eq!(r.tick(), Failure);
    assert!(r.errors()[0].contains("blackboard key 'nobody' is not set"), "{:?}", r.errors());
}

const SUBTREES: &str = r#"<root BTCPP_format="4" main_tree_to_execute="Main">
  <BehaviorTree ID="Main">
    <Sequence>
      <Script code=" move_goal:='1;2;3'; shared:=5 " />
      <SubTree ID="Move" target="{move_goal}" result="{move_result}" speed="fast"/>
      <SubTree ID="Auto" _autoremap="true"/>
      <ScriptCondition code="move_result == 'goal reached: 1;2;3 fast' &amp;&amp; shared == 6 &amp;&amp; private_done == 1"/>
    </Sequence>
  </BehaviorTree>
  <BehaviorTree ID="Move">
    <Sequence>
      <Script code=" private_done := 1; result := 'goal reached: ' .. target .. ' ' .. speed " />
    </Sequence>
  </BehaviorTree>
  <BehaviorTree ID="Auto">
    <Script code=" shared += 1 " />
  </BehaviorTree>
</root>"#;

#[test]
fn subtrees_remap_ports_and_keep_their_own_keys() {
    let mut r = Run::new(executor_xml(&SUBTREES.replace(" &amp;&amp; private_done == 1", "")), TestRobot::default());
    assert_eq!(r.tick(), Success, "{:?}", r.errors());
    assert_eq!(r.ex.blackboard().get_key("move_result"), Some(&Value::Text("goal reached: 1;2;3 fast".into())));
    // `private_done` lives in the Move subtree's scope: the main tree does not see it.
    let mut r = Run::new(executor_xml(SUBTREES), TestRobot::default());
    assert_eq!(r.tick(), Failure);
    assert!(r.errors().iter().any(|e| e.contains("'private_done' is not set")), "{:?}", r.errors());
    assert!(r.paths().iter().any(|p| p == "sequence/subtree[1]/Move:sequence/script[0]"), "{:?}", r.paths());
}

#[test]
fn pre_and_post_conditions() {
    let mut r = Run::yaml(
        "root:\n  sequence:\n    - script: {code: 'a := 1; b := 0'}\n    - work: {label: skipped, _skipIf: 'a == 1'}\n    - work: {label: ran, _onSuccess: 'b := 10', _post: 'c := b + 1'}\n    - always_failure: {_successIf: 'b == 10'}\n",
    );
    assert_eq!(r.tick(), Success);
    assert_eq!(r.robot.log, ["start ran"]);
    assert_eq!(r.ex.blackboard().get_key("c"), Some(&Value::Number(11.0)));
    let mut r = Run::yaml("root:\n  always_success: {_failureIf: 'true'}\n");
    assert_eq!(r.tick(), Failure);
    let mut r = Run::yaml(
        "root:\n  sequence:\n    - always_success: {_skipIf: 'true'}\n    - always_success: {_skipIf: 'true'}\n",
    );
    assert_eq!(r.tick(), Skipped, "all children skipped: the sequence is skipped");

    // _while is checked every tick: when it turns false the running node is halted
    // (its _onHalted runs) and reports SKIPPED.
    let mut r = Run::yaml(
        "root:\n  sequence:\n    - script: {code: 'go := true; halted := false'}\n    - work: {ticks: 100, label: w, _while: go, _onHalted: 'halted := true'}\n",
    );
    assert_eq!(r.ticks(2), [Running, Running]);
    r.ex.blackboard_mut().set_key("go", Value::Bool(false));
    assert_eq!(r.tick(), Success, "the skipped child lets the sequence finish");
    assert_eq!(r.robot.log, ["start w", "halt w"]);
    assert_eq!(r.ex.blackboard().get_key("halted"), Some(&Value::Bool(true)));
}

#[test]
fn external_halt_is_deepest_first_and_cancels_every_call() {
    let mut r = Run::yaml(
        "root:\n  parallel:\n    - sequence:\n        - work: {ticks: 100, label: a}\n    - timeout:\n        msec: 100000\n        child:\n          work: {ticks: 100, label: b}\n",
    );
    assert_eq!(r.tick(), Running);
    r.reset();
    assert_eq!(r.robot.log, ["start a", "start b", "halt a", "halt b"]);
    let order: Vec<&str> = r
        .sink
        .records()
        .iter()
        .filter_map(|rec| match &rec.event {
            TickEvent::Transition { node, to: Idle, .. } => Some(node.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        order,
        [
            "parallel/sequence[0]/work[0]",
            "parallel/sequence[0]",
            "parallel/timeout[1]/work[0]",
            "parallel/timeout[1]",
            "parallel"
        ]
    );
    assert!(r.ex.statuses().all(|s| s == Idle));
}

/// One tree with every node kind, ticked against BT.CPP's documented behaviour.
#[test]
fn a_tree_of_every_kind_ticks_as_documented() {
    let text = r#"<root BTCPP_format="4">
  <BehaviorTree ID="Main">
    <Sequence name="main">
      <Script code="mode := 'b'; count := 0"/>
      <SequenceWithMemory>
        <ForceSuccess><AlwaysFailure/></ForceSuccess>
        <Inverter><ForceFailure><AlwaysSuccess/></ForceFailure></Inverter>
      </SequenceWithMemory>
      <Fallback>
        <ReactiveFallback><AlwaysFailure/><ScriptCondition code="false"/></ReactiveFallback>
        <ReactiveSequence><AlwaysSuccess/><work label="reactive" ticks="1"/></ReactiveSequence>
      </Fallback>
      <Parallel success_count="2">
        <Repeat num_cycles="2"><Script code="count += 1"/></Repeat>
        <RetryUntilSuccessful num_attempts="2"><work label="retry" fail_times="1"/></RetryUntilSuccessful>
        <Timeout msec="10000"><Delay delay_msec="100"><AlwaysSuccess/></Delay></Timeout>
      </Parallel>
      <ParallelAll max_failures="1"><AlwaysSuccess/><KeepRunningUntilFailure><AlwaysFailure/></KeepRunningUntilFailure></ParallelAll>
      <IfThenElse><ScriptCondition code="count == 2"/><AlwaysSuccess/><AlwaysFailure/></IfThenElse>
      <WhileDoElse><ScriptCondition code="false"/><AlwaysFailure/><AlwaysSuccess/></WhileDoElse>
      <Switch3 variable="{mode}" case_1="a" case_2="b" case_3="c">
        <AlwaysFailure/><RunOnce><work label="switch"/></RunOnce><AlwaysFailure/><AlwaysFailure/>
      </Switch3>
      <Precondition if="count == 2"><Sleep msec="100"/></Precondition>
      <SubTree ID="Sub" _autoremap="true"/>
    </Sequence>
  </BehaviorTree>
  <BehaviorTree ID="Sub">
    <Sequence><SetBlackboard value="done" output_key="result"/><AlwaysSuccess _skipIf="count != 2"/></Sequence>
  </BehaviorTree>
</root>"#;
    let mut r = Run::new(executor_xml(text), TestRobot::default());
    // Tick 1: the reactive work runs (and the SequenceWithMemory yields after its first
    // child). Then, one cycle or attempt per tick (BT.CPP 4.x), the Parallel's Repeat (two
    // synchronous cycles) and Retry (fails once, then succeeds) reach success_count=2, so
    // the still-delayed Timeout branch is halted; then ParallelAll sees one failure
    // (= max_failures) and fails, so the main sequence fails.
    let status = r.until_done(20);
    assert_eq!(status, Failure, "{:?}", r.errors());
    assert_eq!(r.status_of("sequence/parallel[3]/timeout[2]"), Idle, "halted by the parallel");
    assert_eq!(r.robot.log, ["start reactive", "start retry", "start retry"]);
    assert_eq!(r.ex.blackboard().get_key("count"), Some(&Value::Number(2.0)));

    // Without the failing ParallelAll child the whole tree succeeds, using every kind.
    let ok = text.replace("<KeepRunningUntilFailure><AlwaysFailure/></KeepRunningUntilFailure>", "<AlwaysSuccess/>");
    let mut r = Run::new(executor_xml(&ok), TestRobot::default());
    // The Precondition's Sleep (100 ms) completes and the autoremapped SubTree runs.
    assert_eq!(r.until_done(20), Success, "{:?}", r.errors());
    assert_eq!(r.robot.log, ["start reactive", "start retry", "start retry", "start switch"]);
    assert_eq!(r.ex.blackboard().get_key("result"), Some(&Value::Text("done".into())));
    assert!(r.errors().is_empty());
}

#[test]
fn same_inputs_same_records() {
    let text = "root:\n  sequence:\n    - work: {ticks: 3}\n    - reactive_sequence:\n        - flag: {key: f}\n        - work: {ticks: 2}\n";
    let mut a = Run::new(executor(text), TestRobot::default().flag("f", true));
    let mut b = Run::new(executor(text), TestRobot::default().flag("f", true));
    a.until_done(20);
    b.until_done(20);
    assert_eq!(a.sink.records(), b.sink.records());
    assert!(a.sink.records().len() > 6);
}

#[test]
fn declared_nodes_validate_but_do_not_execute() {
    let tree = crate::xml::parse(
        "<root BTCPP_format=\"4\"><BehaviorTree><ComputePath goal=\"{g}\"/></BehaviorTree></root>",
        "nav.xml",
    )
    .unwrap();
    let err = tree.check("nav.xml", &library(), None, false).unwrap_err();
    assert!(err.to_string().contains("unknown node type 'ComputePath'"), "{err}");
    let checked = tree.check("nav.xml", &library(), None, true).unwrap();
    assert_eq!(checked.warnings.len(), 1);
    let err = Executor::new(&checked).unwrap_err();
    assert!(err.to_string().contains("no implementation"), "{err}");
}

// ------------------------------------------------------------------------------------------
// BehaviorTree.CPP 4.10, case by case (each found by the differential test
// `behaviors/tests/btcpp_conformance.rs`), and arbor's deliberate differences from it.
// ------------------------------------------------------------------------------------------

fn xml_main(body: &str) -> String {
    format!("<root BTCPP_format=\"4\"><BehaviorTree ID=\"Main\">{body}</BehaviorTree></root>")
}

impl Run {
    /// `path from->to` for every transition so far.
    fn transitions(&self) -> Vec<String> {
        self.sink
            .records()
            .iter()
            .filter_map(|r| match &r.event {
                TickEvent::Transition { node, from, to } => Some(format!("{node} {from}->{to}")),
                _ => None,
            })
            .collect()
    }
}

#[test]
fn switch_and_precondition_tick_their_child_before_changing_status() {
    for body in [
        "<Switch2 variable=\"{v}\" case_1=\"1\" case_2=\"2\"><AlwaysFailure/><AlwaysFailure/><AlwaysSuccess/></Switch2>",
        "<Precondition if=\"true\" else=\"FAILURE\"><AlwaysSuccess/></Precondition>",
    ] {
        let mut r = Run::new(executor_xml(&xml_main(body)), TestRobot::default());
        assert_eq!(r.tick(), Success);
        let t = r.transitions();
        assert_eq!(t.len(), 3, "{t:?}");
        assert!(t[0].ends_with("idle->success") && t[1].ends_with("success->idle"), "{t:?}");
        assert!(!t[2].contains('/') && t[2].ends_with("idle->success"), "the parent goes IDLE -> SUCCESS: {t:?}");
    }
}

#[test]
fn skipped_is_told_to_the_parent_but_not_stored() {
    let mut r = Run::new(
        executor_xml(&xml_main("<Sequence><AlwaysFailure _skipIf=\"true\"/><AlwaysSuccess/></Sequence>")),
        TestRobot::default(),
    );
    assert_eq!(r.tick(), Success);
    assert!(!r.transitions().iter().any(|t| t.contains("skipped")), "{:?}", r.transitions());
}

#[test]
fn precondition_is_checked_only_until_its_child_started() {
    let body = "<Sequence><Script code=\"go := true\"/><Precondition if=\"go\" else=\"FAILURE\"><Sequence><Script code=\"go := false\"/><work label=\"w\" ticks=\"2\"/></Sequence></Precondition></Sequence>";
    let mut r = Run::new(executor_xml(&xml_main(body)), TestRobot::default());
    assert_eq!(r.ticks(3), [Running, Running, Success], "the child runs on though `go` turned false (BT.CPP #904)");
    assert_eq!(r.robot.log, ["start w"]);
}

#[test]
fn a_finished_action_ticked_again_without_reset_returns_its_result() {
    // WhileDoElse ticks its condition every tick and does not reset it while the body runs.
    let body = "<WhileDoElse><work label=\"cond\"/><work label=\"body\" ticks=\"2\"/></WhileDoElse>";
    let mut r = Run::new(executor_xml(&xml_main(body)), TestRobot::default());
    assert_eq!(r.ticks(3), [Running, Running, Success]);
    assert_eq!(r.robot.log, ["start cond", "start body"], "the condition action is not started again");
}

#[test]
fn sequence_with_memory_yields_after_a_child_that_finished_in_one_tick() {
    let body = "<SequenceWithMemory><work label=\"a\"/><work label=\"b\"/></SequenceWithMemory>";
    let mut r = Run::new(executor_xml(&xml_main(body)), TestRobot::default());
    assert_eq!(r.ticks(2), [Running, Success]);
    // A plain Sequence goes on in the same tick.
    let mut r =
        Run::new(executor_xml(&xml_main(&body.replace("SequenceWithMemory", "Sequence"))), TestRobot::default());
    assert_eq!(r.tick(), Success);
}

#[test]
fn keep_running_until_failure_over_a_skipped_child_is_running() {
    let body = "<KeepRunningUntilFailure><AlwaysFailure _skipIf=\"true\"/></KeepRunningUntilFailure>";
    assert_eq!(Run::new(executor_xml(&xml_main(body)), TestRobot::default()).tick(), Running);
}

#[test]
fn halting_resets_nodes_a_parent_left_finished() {
    // SequenceWithMemory fails at its second child; the first (a RunOnce) stays SUCCESS until
    // the tree is halted, as BT.CPP's haltTree resets every node.
    let body = "<SequenceWithMemory><RunOnce><AlwaysSuccess/></RunOnce><AlwaysFailure/></SequenceWithMemory>";
    let mut r = Run::new(executor_xml(&xml_main(body)), TestRobot::default());
    assert_eq!(r.ticks(2), [Running, Failure]);
    assert_eq!(r.status_of("sequence_with_memory/run_once[0]"), Success);
    let mem = WorkingMemory::default();
    r.ex.halt(SimTime::from_millis(300), &mut r.robot, &mem, &mut r.sink);
    assert!(r.ex.statuses().all(|s| s == Idle));
}

// Deliberate differences (ARCHITECTURE.md, "Deliberate differences from BehaviorTree.CPP").

#[test]
fn deliberate_a_skipped_condition_skips_if_then_else_and_while_do_else() {
    // BT.CPP throws ("Something unexpected happened in IfThenElseNode"; WhileDoElse returns IDLE
    // and its parent throws). arbor: the node is skipped.
    for ctrl in ["IfThenElse", "WhileDoElse"] {
        let body = format!("<{ctrl}><AlwaysSuccess _skipIf=\"true\"/><AlwaysSuccess/><AlwaysFailure/></{ctrl}>");
        let mut r = Run::new(executor_xml(&xml_main(&body)), TestRobot::default());
        assert_eq!(r.tick(), Skipped, "{ctrl}");
        assert!(r.errors().is_empty(), "{ctrl}: {:?}", r.errors());
    }
}

#[test]
fn deliberate_two_child_if_then_else_resets_a_failed_condition() {
    // BT.CPP returns FAILURE and leaves the condition FAILURE (never reset).
    let mut r = Run::new(
        executor_xml(&xml_main("<IfThenElse><work label=\"c\" fail=\"true\"/><AlwaysSuccess/></IfThenElse>")),
        TestRobot::default(),
    );
    assert_eq!(r.tick(), Failure);
    assert_eq!(r.status_of("if_then_else/work[0]"), Idle);
    r.reset();
    assert_eq!(r.tick(), Failure);
    assert_eq!(r.robot.log, ["start c", "start c"], "the condition runs again on the next run");
}

#[test]
fn deliberate_halting_runs_on_halted_only_where_something_was_halted() {
    // BT.CPP's haltTree calls haltNode on every node, so `_onHalted` runs on idle ones too.
    let body = "<Sequence><Script code=\"n := 0\"/><AlwaysSuccess _onHalted=\"n += 1\"/><work label=\"w\" ticks=\"5\" _onHalted=\"n += 10\"/></Sequence>";
    let mut r = Run::new(executor_xml(&xml_main(body)), TestRobot::default());
    assert_eq!(r.tick(), Running);
    let mem = WorkingMemory::default();
    r.ex.halt(SimTime::from_millis(200), &mut r.robot, &mem, &mut r.sink);
    assert_eq!(r.ex.blackboard().get_key("n"), Some(&Value::Number(10.0)));
}

#[test]
fn deliberate_set_blackboard_stores_into_a_key_a_script_created() {
    // BT.CPP 4.10 converts into the script entry's type and can store an empty value there.
    let body = "<Sequence><Script code=\"k := 1\"/><SetBlackboard output_key=\"k\" value=\"7\"/><ScriptCondition code=\"k == 7\"/></Sequence>";
    let mut r = Run::new(executor_xml(&xml_main(body)), TestRobot::default());
    assert_eq!(r.tick(), Success, "{:?}", r.errors());
}
