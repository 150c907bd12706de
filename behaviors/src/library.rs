//! The node library: every node type a tree may use, with its category, children and ports
//! declared statically (name, direction, type, default, description), as BehaviorTree.CPP's
//! `providedPorts()`. Built-in nodes follow BT.CPP v4; skills from the [`SkillRegistry`] become
//! actions and conditions; manifests (YAML) and a file's `TreeNodesModel` declare others.
//!
//! Over 600 lines: mostly data: every node type with its ports, in one table.

use crate::skill::{ParamType, SkillKind, SkillRegistry};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::path::Path;
use std::sync::Arc;

/// FNV-1a: node IDs are short, and loading a tree looks each node's ID up several times;
/// a BTreeMap of Strings spent most of the load time in string comparisons.
#[derive(Debug, Clone, Copy)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Control,
    Decorator,
    Action,
    Condition,
    SubTree,
}

impl Category {
    /// BT.CPP's element name for this category (`<Action ID=...>`, TreeNodesModel).
    pub fn xml_name(self) -> &'static str {
        match self {
            Category::Control => "Control",
            Category::Decorator => "Decorator",
            Category::Action => "Action",
            Category::Condition => "Condition",
            Category::SubTree => "SubTree",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PortDir {
    #[default]
    Input,
    Output,
    Inout,
}

impl PortDir {
    pub fn xml_name(self) -> &'static str {
        match self {
            PortDir::Input => "input_port",
            PortDir::Output => "output_port",
            PortDir::Inout => "inout_port",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PortSpec {
    pub name: String,
    pub dir: PortDir,
    pub ty: ParamType,
    /// Required ports have no default and must be given.
    pub required: bool,
    pub default: Option<String>,
    pub description: String,
}

impl PortSpec {
    fn input(name: &str, ty: ParamType, default: Option<&str>, description: &str) -> Self {
        Self {
            name: name.into(),
            dir: PortDir::Input,
            ty,
            required: default.is_none(),
            default: default.map(str::to_string),
            description: description.into(),
        }
    }
}

/// How many children a node type takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Children {
    None,
    One,
    AtLeast(usize),
    Between(usize, usize),
    Exactly(usize),
}

impl Children {
    pub fn accepts(self, n: usize) -> bool {
        match self {
            Children::None => n == 0,
            Children::One => n == 1,
            Children::AtLeast(m) => n >= m,
            Children::Between(a, b) => n >= a && n <= b,
            Children::Exactly(m) => n == m,
        }
    }

    pub fn describe(self) -> String {
        match self {
            Children::None => "no children".into(),
            Children::One => "exactly one child".into(),
            Children::AtLeast(m) => format!("at least {m} child{}", if m == 1 { "" } else { "ren" }),
            Children::Between(a, b) => format!("{a} to {b} children"),
            Children::Exactly(m) => format!("exactly {m} children"),
        }
    }
}

/// The built-in behaviours the engine implements natively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Builtin {
    Sequence,
    SequenceWithMemory,
    Fallback,
    ReactiveSequence,
    ReactiveFallback,
    Parallel,
    ParallelAll,
    IfThenElse,
    WhileDoElse,
    Switch(u8),
    Inverter,
    ForceSuccess,
    ForceFailure,
    Repeat,
    RetryUntilSuccessful,
    Timeout,
    Delay,
    RunOnce,
    KeepRunningUntilFailure,
    Precondition,
    SubTree,
    AlwaysSuccess,
    AlwaysFailure,
    Script,
    ScriptCondition,
    SetBlackboard,
    UnsetBlackboard,
    Sleep,
}

/// Where a node type's behaviour comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Implementation {
    Builtin(Builtin),
    /// A skill of the robot (action or condition).
    Skill,
    /// Declared (manifest, TreeNodesModel, or loaded leniently) but with no behaviour here:
    /// trees with it validate and convert, but do not execute.
    Declared,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NodeSpec {
    pub id: String,
    /// arbor's YAML name for built-ins (`sequence` for `Sequence`).
    pub alias: Option<&'static str>,
    pub category: Category,
    pub children: Children,
    pub ports: Vec<PortSpec>,
    pub description: String,
    pub implementation: Implementation,
}

impl NodeSpec {
    pub fn port(&self, name: &str) -> Option<&PortSpec> {
        self.ports.iter().find(|p| p.name == name)
    }
}

/// Pre- and post-condition attributes every node accepts (BT.CPP v4), with scripts as values.
pub const PRE_CONDITIONS: [&str; 4] = ["_failureIf", "_successIf", "_skipIf", "_while"];
pub const POST_CONDITIONS: [&str; 4] = ["_onSuccess", "_onFailure", "_post", "_onHalted"];
/// Other attributes every node accepts and keeps: free text.
pub const PASSTHROUGH_ATTRS: [&str; 3] = ["_description", "_uid", "_fullpath"];

const INT: ParamType = ParamType::Int { min: -1e15, max: 1e15 };
const NON_NEG: ParamType = ParamType::Int { min: 0.0, max: 1e15 };
const ANY: ParamType = ParamType::Text { max_len: usize::MAX };

fn any_text() -> ParamType {
    ANY
}

/// Cheap to clone (shared tables, copied on write): every checked tree carries one.
#[derive(Debug, Clone, Default)]
pub struct NodeLibrary {
    specs: Arc<FastMap<String, NodeSpec>>,
    aliases: Arc<FastMap<&'static str, String>>,
    enums: Arc<BTreeMap<String, f64>>,
}

impl NodeLibrary {
    /// The built-in nodes only.
    pub fn builtin() -> Self {
        let mut lib = NodeLibrary::default();
        use Builtin as B;
        use Category::*;
        let p = PortSpec::input;
        let mut add = |id: &str,
                       alias: &'static str,
                       cat: Category,
                       children: Children,
                       b: Builtin,
                       ports: Vec<PortSpec>,
                       d: &str| {
            lib.insert(NodeSpec {
                id: id.into(),
                alias: Some(alias),
                category: cat,
                children,
                ports,
                description: d.into(),
                implementation: Implementation::Builtin(b),
            });
        };
        let many = Children::AtLeast(1);
        add(
            "Sequence",
            "sequence",
            Control,
            many,
            B::Sequence,
            vec![],
            "ticks children in order; fails on the first failure (restarting next time)",
        );
        add(
            "SequenceWithMemory",
            "sequence_with_memory",
            Control,
            many,
            B::SequenceWithMemory,
            vec![],
            "sequence that resumes at the failed child",
        );
        add("Fallback", "fallback", Control, many, B::Fallback, vec![], "ticks children in order until one succeeds");
        add(
            "ReactiveSequence",
            "reactive_sequence",
            Control,
            many,
            B::ReactiveSequence,
            vec![],
            "sequence that re-ticks earlier children every tick",
        );
        add(
            "ReactiveFallback",
            "reactive_fallback",
            Control,
            many,
            B::ReactiveFallback,
            vec![],
            "fallback that re-ticks earlier children every tick",
        );
        add(
            "Parallel",
            "parallel",
            Control,
            many,
            B::Parallel,
            vec![
                p("success_count", INT, Some("-1"), "successes needed (-1: all)"),
                p("failure_count", INT, Some("1"), "failures that make it fail (-1: all)"),
            ],
            "ticks all children every tick; decides by thresholds",
        );
        add(
            "ParallelAll",
            "parallel_all",
            Control,
            many,
            B::ParallelAll,
            vec![p("max_failures", INT, Some("1"), "failures allowed before it fails (-1: all)")],
            "runs all children to completion",
        );
        add(
            "IfThenElse",
            "if_then_else",
            Control,
            Children::Between(2, 3),
            B::IfThenElse,
            vec![],
            "if child 1 succeeds tick child 2, else child 3",
        );
        add(
            "WhileDoElse",
            "while_do_else",
            Control,
            Children::Between(2, 3),
            B::WhileDoElse,
            vec![],
            "reactive if-then-else: the condition is re-checked every tick",
        );
        for n in 2u8..=6 {
            let mut ports = vec![p("variable", any_text(), Some(""), "the value to switch on")];
            for c in 1..=n {
                ports.push(p(&format!("case_{c}"), any_text(), Some(""), "value selecting this case"));
            }
            let alias: &'static str = ["switch2", "switch3", "switch4", "switch5", "switch6"][usize::from(n - 2)];
            add(
                &format!("Switch{n}"),
                alias,
                Control,
                Children::Exactly(usize::from(n) + 1),
                B::Switch(n),
                ports,
                "ticks the child whose case matches `variable`; the last child is the default",
            );
        }
        let one = Children::One;
        add("Inverter", "inverter", Decorator, one, B::Inverter, vec![], "swaps success and failure");
        add(
            "ForceSuccess",
            "force_success",
            Decorator,
            one,
            B::ForceSuccess,
            vec![],
            "succeeds when the child completes",
        );
        add("ForceFailure", "force_failure", Decorator, one, B::ForceFailure, vec![], "fails when the child completes");
        add(
            "Repeat",
            "repeat",
            Decorator,
            one,
            B::Repeat,
            vec![p("num_cycles", INT, None, "repetitions (-1: forever)")],
            "repeats the child while it succeeds",
        );
        add(
            "RetryUntilSuccessful",
            "retry",
            Decorator,
            one,
            B::RetryUntilSuccessful,
            vec![p("num_attempts", INT, None, "attempts (-1: forever)")],
            "retries the child after a failure",
        );
        add(
            "Timeout",
            "timeout",
            Decorator,
            one,
            B::Timeout,
            vec![p("msec", NON_NEG, None, "time limit in milliseconds")],
            "halts the child and fails if it runs too long",
        );
        add(
            "Delay",
            "delay",
            Decorator,
            one,
            B::Delay,
            vec![p("delay_msec", NON_NEG, None, "delay in milliseconds")],
            "waits, then ticks the child",
        );
        add(
            "RunOnce",
            "run_once",
            Decorator,
            one,
            B::RunOnce,
            vec![p(
                "then_skip",
                ParamType::Bool,
                Some("true"),
                "after the first run: skip (true) or repeat its result",
            )],
            "runs the child once",
        );
        add(
            "KeepRunningUntilFailure",
            "keep_running_until_failure",
            Decorator,
            one,
            B::KeepRunningUntilFailure,
            vec![],
            "returns running while the child succeeds",
        );
        add(
            "Precondition",
            "precondition",
            Decorator,
            one,
            B::Precondition,
            vec![
                p("if", ParamType::Script, None, "condition script"),
                p(
                    "else",
                    ParamType::Enum {
                        values: vec!["FAILURE".into(), "SUCCESS".into(), "SKIPPED".into(), "RUNNING".into()],
                    },
                    Some("FAILURE"),
                    "status when the condition is false",
                ),
            ],
            "ticks the child only if the condition holds",
        );
        add(
            "SubTree",
            "subtree",
            Category::SubTree,
            Children::None,
            B::SubTree,
            vec![p("_autoremap", ParamType::Bool, Some("false"), "share same-named blackboard keys with the parent")],
            "runs another tree of the file",
        );
        add("AlwaysSuccess", "always_success", Action, Children::None, B::AlwaysSuccess, vec![], "succeeds");
        add("AlwaysFailure", "always_failure", Action, Children::None, B::AlwaysFailure, vec![], "fails");
        add(
            "Script",
            "script",
            Action,
            Children::None,
            B::Script,
            vec![p("code", ParamType::Script, None, "statements to run")],
            "runs a script on the blackboard",
        );
        add(
            "ScriptCondition",
            "script_condition",
            Condition,
            Children::None,
            B::ScriptCondition,
            vec![p("code", ParamType::Script, None, "expression")],
            "succeeds if the expression is true",
        );
        add(
            "SetBlackboard",
            "set_blackboard",
            Action,
            Children::None,
            B::SetBlackboard,
            vec![
                p("value", any_text(), None, "value to write (literal or {key})"),
                PortSpec {
                    name: "output_key".into(),
                    dir: PortDir::Inout,
                    ty: any_text(),
                    required: true,
                    default: None,
                    description: "key to write".into(),
                },
            ],
            "writes a value to the blackboard",
        );
        add(
            "UnsetBlackboard",
            "unset_blackboard",
            Action,
            Children::None,
            B::UnsetBlackboard,
            vec![p("key", any_text(), None, "key to remove")],
            "removes a key",
        );
        add(
            "Sleep",
            "sleep",
            Action,
            Children::None,
            B::Sleep,
            vec![p("msec", NON_NEG, None, "milliseconds")],
            "returns running for a while, then succeeds",
        );
        lib
    }

    /// The built-ins plus the skills of a robot.
    pub fn with_skills(registry: &SkillRegistry) -> Self {
        let mut lib = Self::builtin();
        lib.add_skills(registry);
        lib
    }

    pub fn add_skills(&mut self, registry: &SkillRegistry) {
        for s in registry.iter() {
            self.insert(NodeSpec {
                id: s.name.clone(),
                alias: None,
                category: if s.kind == SkillKind::Condition { Category::Condition } else { Category::Action },
                children: Children::None,
                ports: s
                    .params
                    .iter()
                    .map(|p| (p, PortDir::Input))
                    .chain(s.outputs.iter().map(|p| (p, PortDir::Output)))
                    .map(|(p, dir)| PortSpec {
                        name: p.name.clone(),
                        dir,
                        ty: p.ty.clone(),
                        required: p.required,
                        default: p.default.as_ref().map(|d| d.to_text()),
                        description: p.description.clone(),
                    })
                    .collect(),
                description: s.description.clone(),
                implementation: Implementation::Skill,
            });
        }
    }

    /// Adds (or replaces) a node type. Built-ins cannot be replaced by declarations.
    pub fn insert(&mut self, spec: NodeSpec) {
        if let Some(old) = self.specs.get(&spec.id)
            && matches!(old.implementation, Implementation::Builtin(_))
            && spec.implementation == Implementation::Declared
        {
            return;
        }
        if let Some(a) = spec.alias {
            Arc::make_mut(&mut self.aliases).insert(a, spec.id.clone());
        }
        Arc::make_mut(&mut self.specs).insert(spec.id.clone(), spec);
    }

    /// Declares a node type with no behaviour (from a manifest or a TreeNodesModel).
    pub fn declare(&mut self, id: &str, category: Category, ports: Vec<PortSpec>) {
        let children = match category {
            Category::Control => Children::AtLeast(1),
            Category::Decorator => Children::One,
            _ => Children::None,
        };
        self.insert(NodeSpec {
            id: id.into(),
            alias: None,
            category,
            children,
            ports,
            description: String::new(),
            implementation: Implementation::Declared,
        });
    }

    pub fn get(&self, id: &str) -> Option<&NodeSpec> {
        self.specs.get(id)
    }

    /// The node ID for a YAML name: an alias (`sequence`) or the ID itself.
    pub fn resolve_alias<'a>(&'a self, name: &'a str) -> &'a str {
        self.aliases.get(name).map(String::as_str).unwrap_or(name)
    }

    /// The YAML name for an ID.
    pub fn yaml_name<'a>(&'a self, id: &'a str) -> &'a str {
        self.specs.get(id).and_then(|s| s.alias).unwrap_or(id)
    }

    /// Every node type, ordered by ID.
    pub fn iter(&self) -> impl Iterator<Item = &NodeSpec> {
        let mut v: Vec<&NodeSpec> = self.specs.values().collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v.into_iter()
    }

    pub fn enum_value(&self, name: &str) -> Option<f64> {
        self.enums.get(name).copied()
    }

    pub fn add_enum(&mut self, name: &str, value: f64) {
        Arc::make_mut(&mut self.enums).insert(name.into(), value);
    }

    /// Loads a node manifest (YAML) that declares node types and enums:
    ///
    /// ```yaml
    /// nodes:
    ///   - {id: RecoveryNode, category: control, ports: [{name: number_of_retries, default: "1"}]}
    ///   - {id: ComputePathToPose, category: action, ports: [{name: goal}, {name: path, direction: output}]}
    /// enums: {RED: 1, BLUE: 2}
    /// ```
    pub fn load_manifest(&mut self, path: &Path) -> Result<usize, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        self.add_manifest(&text, &path.display().to_string())
    }

    pub fn add_manifest(&mut self, text: &str, source: &str) -> Result<usize, String> {
        let m: Manifest = serde_yaml::from_str(text).map_err(|e| {
            let loc = e.location().map(|l| format!("line {}, column {}: ", l.line(), l.column())).unwrap_or_default();
            format!("{source}: {loc}{e}")
        })?;
        let n = m.nodes.len();
        for node in m.nodes {
            let ports = node
                .ports
                .into_iter()
                .map(|p| PortSpec {
                    required: p.default.is_none() && p.required,
                    name: p.name,
                    dir: p.direction,
                    ty: ANY,
                    default: p.default,
                    description: p.description,
                })
                .collect();
            self.declare(&node.id, node.category, ports);
        }
        for (k, v) in m.enums {
            self.add_enum(&k, v);
        }
        Ok(n)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    #[serde(default)]
    nodes: Vec<ManifestNode>,
    #[serde(default)]
    enums: BTreeMap<String, f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestNode {
    id: String,
    category: Category,
    #[serde(default)]
    ports: Vec<ManifestPort>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestPort {
    name: String,
    #[serde(default)]
    direction: PortDir,
    #[serde(default)]
    default: Option<String>,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    description: String,
}
