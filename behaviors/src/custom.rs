//! Node types written in Rust, registered by name with their declared ports, as
//! BehaviorTree.CPP's `factory.registerNodeType<T>("Name")`: a stateful action (BT.CPP's
//! `StatefulActionNode`: `on_start`, `on_running`, `on_halted`) or a condition. The registered
//! types are skills like any other: the checker checks their ports, the planner may use them,
//! output ports go to the blackboard through `{key}` remapping. Everything not registered here
//! goes to the robot behind (`inner`), so Rust node types and a robot's skills mix in one tree.
//!
//! ```
//! use arbor_behaviors::custom::{ActionResult, CustomNodes, StatefulAction};
//! use arbor_behaviors::skill::{ParamSpec, ParamType, SkillSpec};
//! use arbor_behaviors::Params;
//!
//! #[derive(Default)]
//! struct Beep { left: u32 }
//! impl StatefulAction for Beep {
//!     fn on_start(&mut self, inputs: &Params) -> ActionResult {
//!         self.left = inputs.get("times").and_then(|v| v.as_f64()).unwrap_or(1.0) as u32;
//!         self.on_running()
//!     }
//!     fn on_running(&mut self) -> ActionResult {
//!         if self.left == 0 { return ActionResult::Success("beeped".into()) }
//!         self.left -= 1;
//!         ActionResult::Running
//!     }
//! }
//! let mut nodes = CustomNodes::new();
//! nodes.register_action::<Beep>(SkillSpec::action(
//!     "beep", "beep a few times",
//!     vec![ParamSpec::required("times", ParamType::Int { min: 1.0, max: 9.0 }, "how often")],
//! ));
//! assert!(nodes.registry().get("beep").is_some());
//! ```

use crate::robot::{CallId, Robot, SkillCall, SkillStatus};
use crate::skill::{SkillKind, SkillRegistry, SkillSpec};
use crate::value::Params;
use arbor_memory::WorkingMemory;
use std::collections::BTreeMap;

/// What a stateful action answers.
pub type ActionResult = SkillStatus;

/// A stateful action node (BT.CPP's `StatefulActionNode`). One instance per call: the factory
/// makes a fresh one each time the node starts.
pub trait StatefulAction {
    /// The node starts (from IDLE): its input ports, defaults filled in and checked.
    fn on_start(&mut self, inputs: &Params) -> ActionResult;
    /// Ticked again while it answered Running.
    fn on_running(&mut self) -> ActionResult;
    /// The tree no longer needs it (a reactive parent, a timeout, a halt): stop what it does.
    fn on_halted(&mut self) {}
    /// Values for its output ports, asked once after it succeeded.
    fn outputs(&mut self) -> Params {
        Params::new()
    }
}

type ActionFactory = Box<dyn Fn() -> Box<dyn StatefulAction>>;
type ConditionFn = Box<dyn FnMut(&Params, &WorkingMemory) -> bool>;

/// Node types implemented in Rust, in front of a robot.
pub struct CustomNodes {
    specs: Vec<SkillSpec>,
    actions: BTreeMap<String, ActionFactory>,
    conditions: BTreeMap<String, ConditionFn>,
    live: BTreeMap<CallId, Box<dyn StatefulAction>>,
    /// The outputs of the call that succeeded last (the engine asks for them right after).
    last: Option<(CallId, Params)>,
    inner: Option<Box<dyn Robot>>,
}

impl Default for CustomNodes {
    fn default() -> Self {
        Self::new()
    }
}

impl CustomNodes {
    pub fn new() -> Self {
        Self {
            specs: vec![],
            actions: BTreeMap::new(),
            conditions: BTreeMap::new(),
            live: BTreeMap::new(),
            last: None,
            inner: None,
        }
    }

    /// Skills that are not registered here go to this robot.
    pub fn with_inner(mut self, robot: Box<dyn Robot>) -> Self {
        self.inner = Some(robot);
        self
    }

    /// Registers a stateful action type (made with `Default` for each call).
    pub fn register_action<A: StatefulAction + Default + 'static>(&mut self, spec: SkillSpec) {
        self.register_action_with(spec, || Box::new(A::default()));
    }

    /// Registers a stateful action made by `factory` for each call.
    pub fn register_action_with(&mut self, spec: SkillSpec, factory: impl Fn() -> Box<dyn StatefulAction> + 'static) {
        let spec = SkillSpec { kind: SkillKind::Action, ..spec };
        self.actions.insert(spec.name.clone(), Box::new(factory));
        self.specs.retain(|s| s.name != spec.name);
        self.specs.push(spec);
    }

    /// Registers a condition: a test of its inputs (and what memory holds), answered in the tick.
    pub fn register_condition(&mut self, spec: SkillSpec, f: impl FnMut(&Params, &WorkingMemory) -> bool + 'static) {
        let spec = SkillSpec { kind: SkillKind::Condition, outputs: vec![], ..spec };
        self.conditions.insert(spec.name.clone(), Box::new(f));
        self.specs.retain(|s| s.name != spec.name);
        self.specs.push(spec);
    }

    /// Adds the registered types to a registry (trees are checked against it).
    pub fn register_into(&self, reg: &mut SkillRegistry) {
        for s in &self.specs {
            reg.register(s.clone());
        }
    }

    /// The registered types, with the memory-backed conditions.
    pub fn registry(&self) -> SkillRegistry {
        let mut reg = SkillRegistry::new();
        crate::conditions::register(&mut reg);
        self.register_into(&mut reg);
        reg
    }

    /// Calls of registered actions that are running now.
    pub fn running(&self) -> usize {
        self.live.len()
    }
}

impl CustomNodes {
    /// Keeps a running node; a finished one is dropped (a success's outputs kept for the engine).
    fn settle(&mut self, id: CallId, mut node: Box<dyn StatefulAction>, s: SkillStatus) -> SkillStatus {
        match &s {
            SkillStatus::Running => {
                self.live.insert(id, node);
            }
            SkillStatus::Success(_) => self.last = Some((id, node.outputs())),
            SkillStatus::Failure(_) => {}
        }
        s
    }
}

impl Robot for CustomNodes {
    fn start(&mut self, call: &SkillCall<'_>, memory: &WorkingMemory) -> SkillStatus {
        let Some(make) = self.actions.get(call.skill) else {
            return match self.inner.as_mut() {
                Some(r) => r.start(call, memory),
                None => SkillStatus::Failure(format!("no node type '{}' is registered", call.skill)),
            };
        };
        let mut node = make();
        let s = node.on_start(call.params);
        self.settle(call.id, node, s)
    }

    fn poll(&mut self, call: &SkillCall<'_>, memory: &WorkingMemory) -> SkillStatus {
        match self.live.get_mut(&call.id) {
            Some(node) => {
                let s = node.on_running();
                match self.live.remove(&call.id) {
                    Some(node) => self.settle(call.id, node, s),
                    None => s,
                }
            }
            None if self.actions.contains_key(call.skill) => {
                SkillStatus::Failure(format!("call {} of '{}' is not running", call.id, call.skill))
            }
            None => match self.inner.as_mut() {
                Some(r) => r.poll(call, memory),
                None => SkillStatus::Failure(format!("no node type '{}' is registered", call.skill)),
            },
        }
    }

    fn halt(&mut self, call: &SkillCall<'_>) {
        match self.live.remove(&call.id) {
            Some(mut node) => node.on_halted(),
            None => {
                if let Some(r) = self.inner.as_mut() {
                    r.halt(call);
                }
            }
        }
    }

    fn check(&mut self, call: &SkillCall<'_>, memory: &WorkingMemory) -> SkillStatus {
        match self.conditions.get_mut(call.skill) {
            Some(f) => {
                if f(call.params, memory) {
                    SkillStatus::Success(String::new())
                } else {
                    SkillStatus::Failure(String::new())
                }
            }
            None => match self.inner.as_mut() {
                Some(r) => r.check(call, memory),
                None => crate::conditions::evaluate(call, memory),
            },
        }
    }

    fn outputs(&mut self, call: &SkillCall<'_>) -> Params {
        match self.last.take() {
            Some((id, outs)) if id == call.id => outs,
            other => {
                self.last = other;
                self.inner.as_mut().map(|r| r.outputs(call)).unwrap_or_default()
            }
        }
    }
}
