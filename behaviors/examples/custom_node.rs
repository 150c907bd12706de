//! Adds a node type written in Rust to arbor and ticks a tree with it, as BehaviorTree.CPP's
//! `registerNodeType` does: `count_to` is a stateful action (one tick per count, its total on an
//! output port), `is_even` a condition over an input port; `report` reads the output through the
//! blackboard. Run: `cargo run -p arbor-behaviors --example custom_node` (CI runs it).

use arbor_behaviors::custom::{ActionResult, CustomNodes, StatefulAction};
use arbor_behaviors::record::NullSink;
use arbor_behaviors::skill::{ParamSpec, ParamType, SkillSpec};
use arbor_behaviors::{Executor, NodeLibrary, NodeStatus, Params, Value, yaml};
use arbor_core::SimTime;
use arbor_memory::WorkingMemory;
use std::cell::RefCell;
use std::rc::Rc;

/// Counts one per tick up to `n`, then leaves the count on its output port `total`.
#[derive(Default)]
struct CountTo {
    n: u32,
    at: u32,
}

impl StatefulAction for CountTo {
    fn on_start(&mut self, inputs: &Params) -> ActionResult {
        self.n = inputs.get("n").and_then(Value::as_f64).unwrap_or(0.0) as u32;
        self.at = 0;
        ActionResult::Running
    }
    fn on_running(&mut self) -> ActionResult {
        self.at += 1;
        if self.at >= self.n { ActionResult::Success(format!("counted to {}", self.n)) } else { ActionResult::Running }
    }
    fn on_halted(&mut self) {
        println!("count_to halted at {}", self.at);
    }
    fn outputs(&mut self) -> Params {
        [("total".to_string(), Value::Number(f64::from(self.at)))].into_iter().collect()
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut nodes = CustomNodes::new();
    let int = ParamType::Int { min: 0.0, max: 1000.0 };
    nodes.register_action::<CountTo>(
        SkillSpec::action("count_to", "count one per tick", vec![ParamSpec::required("n", int.clone(), "how far")])
            .with_outputs(vec![ParamSpec::optional("total", int.clone(), "what it counted")]),
    );
    nodes.register_condition(
        SkillSpec::condition("is_even", "the number is even", vec![ParamSpec::required("x", int.clone(), "")]),
        |p, _memory| p.get("x").and_then(Value::as_f64).is_some_and(|x| x % 2.0 == 0.0),
    );
    let reported = Rc::new(RefCell::new(Vec::new()));
    let log = reported.clone();
    nodes.register_action_with(
        SkillSpec::action("report", "print a number", vec![ParamSpec::required("value", int, "")]),
        move || Box::new(Report(log.clone())),
    );
    let library = NodeLibrary::with_skills(&nodes.registry());
    let tree = yaml::parse(
        "name: counting\nroot:\n  sequence:\n    - count_to: {n: 4, total: \"{t}\"}\n    - is_even: {x: \"{t}\"}\n    - report: {value: \"{t}\"}\n",
        "counting.yaml",
    )?
    .check("counting.yaml", &library, None, false)?;
    // A port of the wrong type is refused before anything runs.
    let bad = yaml::parse("name: bad\nroot:\n  count_to: {n: lots}\n", "bad.yaml")?;
    let err = bad.check("bad.yaml", &library, None, false).err().ok_or("a bad port was accepted")?;
    println!("refused: {err}");

    let mut exec = Executor::new(&tree)?;
    let memory = WorkingMemory::with_config(&Default::default());
    let mut status = NodeStatus::Idle;
    let mut ticks = 0;
    while !status.is_done() && ticks < 100 {
        ticks += 1;
        status = exec.tick(SimTime::from_millis(100 * ticks), &mut nodes, &memory, &mut NullSink);
    }
    println!("tree {status} after {ticks} ticks; report saw {:?}", reported.borrow());
    if status != NodeStatus::Success || *reported.borrow() != [4.0] {
        return Err("the custom nodes did not run as declared".into());
    }
    Ok(())
}

struct Report(Rc<RefCell<Vec<f64>>>);

impl StatefulAction for Report {
    fn on_start(&mut self, inputs: &Params) -> ActionResult {
        let v = inputs.get("value").and_then(Value::as_f64).unwrap_or(f64::NAN);
        self.0.borrow_mut().push(v);
        ActionResult::Success(format!("reported {v}"))
    }
    fn on_running(&mut self) -> ActionResult {
        ActionResult::Success(String::new())
    }
}
