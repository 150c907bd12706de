//! Skill manifests: a robot's skills declared in a YAML file (no Rust): name, kind,
//! description, typed input ports with defaults, output ports, and how each backend runs the
//! skill. One manifest feeds the checker, `arbor skills`, the planner's prompt and grammar, the
//! simulator and the ROS 2 node.
//!
//! ```yaml
//! skills:
//!   - name: pick
//!     description: pick up an object within reach
//!     inputs:
//!       - {name: object, type: entity}
//!     outputs:
//!       - {name: weight, type: number}
//!     sim:                        # the simulator's generic model
//!       duration_s: 2.0
//!       success_probability: 0.95
//!       requires: ["near({object})", "not holding(_)"]
//!       effects: ["holding({object})", "not on({object}, _)"]
//!       outputs: {weight: 0.3}
//!     ros2:                       # through r2r's untyped clients
//!       action: {type: my_msgs/action/Pick, server: /pick, goal: {name: "{object}"},
//!                result: {weight: weight_kg}, success: "error_code == 0"}
//! ```
//!
//! Every error names the file, the line, the skill and the field.

use crate::skill::{ParamSpec, ParamType, SkillKind, SkillRegistry, SkillSpec};
use crate::value::{Params, Value};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// The skills the simulator and the ROS 2 node implement natively (physical models: driving,
/// turning, the camera; `photographed` is answered by the runtime, which knows every photo).
pub const BUILTINS: &[&str] = &["navigate_to", "look_at", "scan", "capture_photo", "say", "wait", "photographed"];

/// A problem in a manifest, located.
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestError {
    pub file: String,
    pub line: usize,
    pub skill: Option<String>,
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.file, self.line)?;
        if let Some(s) = &self.skill {
            write!(f, "skill '{s}': ")?;
        }
        if let Some(x) = &self.field {
            write!(f, "field '{x}': ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ManifestError {}

/// One term of a predicate: a constant, an input port (`{port}`), or anything (`_`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    Const(String),
    Port(String),
    Any,
}

/// `pred(a, b)` or `not pred(a, b)` over the simulator's symbolic world state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Literal {
    pub negated: bool,
    pub predicate: String,
    pub args: Vec<Term>,
}

impl Literal {
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let (negated, t) = match t.strip_prefix("not ") {
            Some(rest) => (true, rest.trim()),
            None => (false, t),
        };
        let (pred, rest) = t.split_once('(').ok_or_else(|| format!("'{text}' is not pred(arg, ...)"))?;
        let args = rest.strip_suffix(')').ok_or_else(|| format!("'{text}' does not end with ')'"))?;
        let predicate = pred.trim().to_string();
        if !is_word(&predicate) {
            return Err(format!("'{text}': the predicate must be a word"));
        }
        let args = if args.trim().is_empty() {
            vec![]
        } else {
            args.split(',')
                .map(|a| {
                    let a = a.trim();
                    if a == "_" {
                        Ok(Term::Any)
                    } else if let Some(p) = a.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                        Ok(Term::Port(p.to_string()))
                    } else if a.is_empty() || a.contains(['(', ')', '{', '}', ' ']) {
                        Err(format!("'{text}': bad argument '{a}'"))
                    } else {
                        Ok(Term::Const(a.to_string()))
                    }
                })
                .collect::<Result<_, _>>()?
        };
        Ok(Self { negated, predicate, args })
    }

    /// The literal's ground atom for a call's parameters (`None` where an argument is `_`):
    /// `holding(cup)`.
    pub fn ground(&self, params: &Params) -> Vec<Option<String>> {
        self.args
            .iter()
            .map(|a| match a {
                Term::Const(c) => Some(c.clone()),
                Term::Port(p) => Some(params.get(p).map(value_text).unwrap_or_default()),
                Term::Any => None,
            })
            .collect()
    }

    pub fn ports(&self) -> impl Iterator<Item = &str> {
        self.args.iter().filter_map(|a| match a {
            Term::Port(p) => Some(p.as_str()),
            _ => None,
        })
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.negated {
            f.write_str("not ")?;
        }
        let args: Vec<String> = self
            .args
            .iter()
            .map(|a| match a {
                Term::Const(c) => c.clone(),
                Term::Port(p) => format!("{{{p}}}"),
                Term::Any => "_".into(),
            })
            .collect();
        write!(f, "{}({})", self.predicate, args.join(", "))
    }
}

/// A value as text for templates and atoms: text as is, numbers as a person writes them.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::Text(s) => s.clone(),
        Value::Number(n) => crate::value::format_number(*n),
        Value::Bool(b) => b.to_string(),
    }
}

/// The simulator's generic model of a declared skill.
#[derive(Debug, Clone, PartialEq)]
pub struct SimModel {
    /// Robot time an action takes.
    pub duration_s: f64,
    /// Chance the action succeeds once its preconditions hold (drawn from the run's seed).
    pub success_probability: f64,
    /// Literals that must hold when the action starts (actions) or are the answer (conditions).
    pub requires: Vec<Literal>,
    /// What a success makes true (`pred(..)`) or false (`not pred(..)`, `_` matches anything).
    pub effects: Vec<Literal>,
    /// Output port values a success leaves (`{port}` substituted from the inputs).
    pub outputs: BTreeMap<String, String>,
    /// The failure's reason when the draw fails.
    pub failure: String,
}

/// How the ROS 2 node runs a declared skill (checked against the interface definitions when
/// the node loads the manifest: `agent/src/ros_skills.rs`).
#[derive(Debug, Clone, PartialEq)]
pub enum RosBinding {
    /// A goal to an action server: `goal` is a template (`"{port}"` strings are substituted with
    /// the port's value in the field's type), `result` maps output ports to result fields,
    /// `success` is a rule over the result (default: the action's own status).
    Action {
        interface: String,
        server: String,
        goal: serde_json::Value,
        result: BTreeMap<String, String>,
        success: Option<Rule>,
    },
    /// A service call: request template, response fields to output ports, a rule over the response.
    Service {
        interface: String,
        service: String,
        request: serde_json::Value,
        response: BTreeMap<String, String>,
        success: Option<Rule>,
    },
    /// A message published once per call; succeeds when published.
    Publish { interface: String, topic: String, message: serde_json::Value },
    /// A condition answered by the latest message on a topic (a rule over it).
    Topic { interface: String, topic: String, rule: Rule },
    /// arbor's own `arbor_msgs/action/ExecuteSkill` (skill name and JSON parameters).
    ExecuteSkill { server: Option<String> },
}

impl RosBinding {
    pub fn interface(&self) -> &str {
        match self {
            RosBinding::Action { interface, .. }
            | RosBinding::Service { interface, .. }
            | RosBinding::Publish { interface, .. }
            | RosBinding::Topic { interface, .. } => interface,
            RosBinding::ExecuteSkill { .. } => "arbor_msgs/action/ExecuteSkill",
        }
    }
}

/// A comparison over a message: `field op literal`, e.g. `error_code == 0`, `data == true`,
/// `status.text != "busy"`, `battery.percentage >= 0.2`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub field: String,
    pub op: Op,
    pub value: serde_json::Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Rule {
    pub fn parse(text: &str) -> Result<Self, String> {
        for (s, op) in [("==", Op::Eq), ("!=", Op::Ne), ("<=", Op::Le), (">=", Op::Ge), ("<", Op::Lt), (">", Op::Gt)] {
            if let Some((field, value)) = text.split_once(s) {
                let field = field.trim().to_string();
                if field.is_empty() {
                    return Err(format!("'{text}': no field before {s}"));
                }
                let v = value.trim();
                let value = serde_json::from_str(v)
                    .or_else(|_| serde_json::from_str(&format!("\"{}\"", v.trim_matches('\'').replace('"', "\\\""))))
                    .map_err(|e| format!("'{text}': {e}"))?;
                return Ok(Self { field, op, value });
            }
        }
        Err(format!("'{text}' is not 'field == value' (==, !=, <, <=, >, >=)"))
    }

    /// Whether a message satisfies the rule; the error names a field the message lacks.
    pub fn holds(&self, msg: &serde_json::Value) -> Result<bool, String> {
        let got = field_at(msg, &self.field).ok_or_else(|| format!("the message has no field '{}'", self.field))?;
        Ok(compare(got, self.op, &self.value))
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        };
        write!(f, "{} {op} {}", self.field, self.value)
    }
}

fn compare(got: &serde_json::Value, op: Op, want: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    let ord = match (got, want) {
        (J::Number(a), J::Number(b)) => a.as_f64().zip(b.as_f64()).and_then(|(a, b)| a.partial_cmp(&b)),
        (J::String(a), J::String(b)) => Some(a.cmp(b)),
        (J::Bool(a), J::Bool(b)) => Some(a.cmp(b)),
        _ => None,
    };
    match (op, ord) {
        (Op::Eq, Some(o)) => o.is_eq(),
        (Op::Ne, Some(o)) => o.is_ne(),
        (Op::Ne, None) => true,
        (Op::Lt, Some(o)) => o.is_lt(),
        (Op::Le, Some(o)) => o.is_le(),
        (Op::Gt, Some(o)) => o.is_gt(),
        (Op::Ge, Some(o)) => o.is_ge(),
        _ => false,
    }
}

/// A field of a JSON message by path: `a.b`, `poses[0].pose.position.x`.
pub fn field_at<'a>(msg: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    let mut v = msg;
    for part in path.split('.') {
        let (name, index) = match part.split_once('[') {
            Some((n, i)) => (n, Some(i.strip_suffix(']')?.parse::<usize>().ok()?)),
            None => (part, None),
        };
        if !name.is_empty() {
            v = v.get(name)?;
        }
        if let Some(i) = index {
            v = v.get(i)?;
        }
    }
    Some(v)
}

/// One declared skill: its spec (ports, description) and its bindings.
#[derive(Debug, Clone, PartialEq)]
pub struct DeclaredSkill {
    pub spec: SkillSpec,
    /// Line of its `name:` in the file.
    pub line: usize,
    /// Implemented natively by the backends (one of [`BUILTINS`]).
    pub builtin: Option<String>,
    pub sim: Option<SimModel>,
    pub ros2: Option<RosBinding>,
}

/// A loaded manifest.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SkillManifest {
    /// The file it came from (or a name for an embedded one).
    pub source: String,
    pub skills: Vec<DeclaredSkill>,
    text: String,
}

/// A backend, for the check that every skill can run on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sim,
    Ros2,
}

impl SkillManifest {
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|e| ManifestError {
            file: path.display().to_string(),
            line: 0,
            skill: None,
            field: None,
            message: e.to_string(),
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, source: &str) -> Result<Self, ManifestError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let raw: RawManifest = serde_yaml::from_str(text).map_err(|e| ManifestError {
            file: source.into(),
            line: e.location().map_or(0, |l| l.line()),
            skill: None,
            field: None,
            message: e.to_string(),
        })?;
        let mut m = SkillManifest { source: source.into(), skills: vec![], text: text.to_string() };
        let mut seen = BTreeMap::new();
        for raw in raw.skills {
            let line = m.line_of(&raw.name, None);
            if let Some(first) = seen.insert(raw.name.clone(), line) {
                return Err(m.err(&raw.name, Some("name"), format!("declared twice (first on line {first})")));
            }
            let skill = m.declared(raw)?;
            m.skills.push(skill);
        }
        if m.skills.is_empty() {
            return Err(ManifestError {
                file: source.into(),
                line: 1,
                skill: None,
                field: Some("skills".into()),
                message: "declares no skills".into(),
            });
        }
        Ok(m)
    }

    /// The manifest's text as loaded.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The skill registry of this manifest (the memory-backed conditions not included).
    pub fn registry(&self) -> SkillRegistry {
        let mut reg = SkillRegistry::new();
        for s in &self.skills {
            reg.register(s.spec.clone());
        }
        reg
    }

    pub fn get(&self, name: &str) -> Option<&DeclaredSkill> {
        self.skills.iter().find(|s| s.spec.name == name)
    }

    /// Checks that `backend` can run every skill (a condition no backend can answer is an error
    /// here, at load, never a FAILURE at tick time).
    pub fn check_backend(&self, backend: Backend) -> Result<(), ManifestError> {
        for s in &self.skills {
            let ok = s.builtin.is_some()
                || match backend {
                    Backend::Sim => s.sim.is_some(),
                    Backend::Ros2 => s.ros2.is_some(),
                };
            if !ok {
                let (name, key) = match backend {
                    Backend::Sim => ("the simulator", "sim"),
                    Backend::Ros2 => ("the ROS 2 node", "ros2"),
                };
                let what = if s.spec.kind == SkillKind::Condition { "answer" } else { "run" };
                return Err(self.err(
                    &s.spec.name,
                    Some(key),
                    format!("{name} cannot {what} it: give it a '{key}:' binding (or a builtin)"),
                ));
            }
        }
        Ok(())
    }

    /// A located error for `skill`'s `field` (the line of the field under the skill, or of the
    /// skill's name).
    pub fn err(&self, skill: &str, field: Option<&str>, message: String) -> ManifestError {
        ManifestError {
            file: self.source.clone(),
            line: self.line_of(skill, field),
            skill: Some(skill.to_string()),
            field: field.map(str::to_string),
            message,
        }
    }

    /// 1-based line of `name: <skill>` and, with a field path, of its last segment's key after it
    /// (before the next skill).
    pub fn line_of(&self, skill: &str, field: Option<&str>) -> usize {
        let lines: Vec<&str> = self.text.lines().collect();
        let is_name = |l: &str, want: Option<&str>| {
            let t = l.trim_start().trim_start_matches("- ").trim_start_matches('{').trim_start();
            match t.strip_prefix("name:") {
                Some(v) => {
                    let v = v.split(',').next().unwrap_or("").trim().trim_matches(['"', '\'', '}']);
                    want.is_none_or(|w| v == w)
                }
                None => false,
            }
        };
        // The skill's entry: a `name:` at the list item's indentation.
        let Some(start) = lines.iter().position(|l| is_name(l, Some(skill))) else { return 1 };
        let indent = |l: &str| l.len() - l.trim_start().len();
        let item_indent = indent(lines[start]);
        let end = lines
            .iter()
            .enumerate()
            .skip(start + 1)
            .find(|(_, l)| l.trim_start().starts_with("- ") && indent(l) < item_indent.max(1) + 1 && is_name(l, None))
            .map_or(lines.len(), |(i, _)| i);
        let Some(field) = field else { return start + 1 };
        // Walk the path: each segment is a key (`inputs:`) or a list item's name (`name: force`).
        let mut at = start;
        for seg in field.split('.') {
            let key = format!("{seg}:");
            let found = (at..end).find(|&i| {
                let l = lines[i];
                let t = l.trim_start().trim_start_matches("- ").trim_start_matches('{');
                (i > start && is_name(l, Some(seg)))
                    || t.starts_with(&key)
                    || l.contains(&format!(" {key}"))
                    || l.contains(&format!("{{{key}"))
                    || l.contains(&format!("\"{seg}\":"))
            });
            match found {
                Some(i) => at = i,
                None => break,
            }
        }
        at + 1
    }

    fn declared(&self, raw: RawSkill) -> Result<DeclaredSkill, ManifestError> {
        let name = raw.name.clone();
        let e = |field: &str, msg: String| self.err(&name, Some(field), msg);
        if !is_word(&name) {
            return Err(e("name", format!("'{name}' must be a word (letters, digits, _)")));
        }
        if crate::NodeLibrary::builtin().get(&name).is_some() {
            return Err(e("name", format!("'{name}' is a built-in node type of BehaviorTree.CPP")));
        }
        let mut params = Vec::new();
        for p in &raw.inputs {
            params.push(self.port(&name, p, "inputs")?);
        }
        let mut outputs = Vec::new();
        for p in &raw.outputs {
            if p.default.is_some() {
                return Err(e(&format!("outputs.{}.default", p.name), "an output port has no default".into()));
            }
            outputs.push(self.port(&name, p, "outputs")?);
        }
        for (i, p) in params.iter().chain(&outputs).enumerate() {
            if params.iter().chain(&outputs).take(i).any(|q| q.name == p.name) {
                return Err(e(&p.name, format!("port '{}' is declared twice", p.name)));
            }
        }
        let kind = raw.kind;
        if kind == SkillKind::Condition && !outputs.is_empty() {
            return Err(e("outputs", "a condition answers yes or no; it has no output ports".into()));
        }
        if let Some(b) = &raw.builtin
            && !BUILTINS.contains(&b.as_str())
        {
            return Err(e("builtin", format!("'{b}' is not a built-in skill (built-ins: {})", BUILTINS.join(", "))));
        }
        if let Some(b) = &raw.builtin
            && *b != name
        {
            return Err(e("builtin", format!("a built-in keeps its name: declare it as '{b}'")));
        }
        let input_names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
        let sim = match raw.sim {
            None => None,
            Some(s) => Some(self.sim_model(&name, kind, s, &input_names, &outputs)?),
        };
        let ros2 = match raw.ros2 {
            None => None,
            Some(r) => Some(self.ros_binding(&name, kind, r, &input_names, &outputs)?),
        };
        let description = raw.description.unwrap_or_default();
        if description.trim().is_empty() {
            return Err(e("description", "every skill needs a description (the planner's prompt shows it)".into()));
        }
        let spec = SkillSpec { name: name.clone(), kind, description, params, outputs };
        Ok(DeclaredSkill { line: self.line_of(&name, None), spec, builtin: raw.builtin, sim, ros2 })
    }

    fn port(&self, skill: &str, p: &RawPort, section: &str) -> Result<ParamSpec, ManifestError> {
        let field = format!("{section}.{}", p.name);
        let e = |f: &str, msg: String| self.err(skill, Some(&format!("{field}.{f}")), msg);
        if !is_word(&p.name) {
            return Err(self.err(skill, Some(section), format!("port name '{}' must be a word", p.name)));
        }
        let range = |int: bool| -> Result<(f64, f64), ManifestError> {
            let (min, max) = (p.min.unwrap_or(if int { 0.0 } else { f64::MIN }), p.max.unwrap_or(f64::MAX));
            if min > max || min.is_nan() || max.is_nan() {
                return Err(e("min", format!("min {min} is above max {max}")));
            }
            if int && (min.fract() != 0.0 || (max.fract() != 0.0 && max < 1e15)) {
                return Err(e("min", "an integer's range has whole bounds".into()));
            }
            Ok((min, max))
        };
        let ty = match p.ty.as_str() {
            "number" => {
                let (min, max) = range(false)?;
                ParamType::Number { min, max }
            }
            "integer" => {
                let (min, max) = range(true)?;
                ParamType::Int { min, max: if p.max.is_none() { 1e15 } else { max } }
            }
            "bool" => ParamType::Bool,
            "text" => ParamType::Text { max_len: p.max_length.unwrap_or(200) },
            "enum" => match &p.values {
                Some(v) if !v.is_empty() => ParamType::Enum { values: v.clone() },
                _ => return Err(e("values", "an enum lists its values".into())),
            },
            "place" => ParamType::Place,
            "entity" => ParamType::Entity,
            "target" => ParamType::Target,
            "pose" => ParamType::Pose,
            "json" => ParamType::Json,
            "script" => ParamType::Script,
            other => {
                return Err(e(
                    "type",
                    format!(
                        "unknown type '{other}' (number, integer, bool, text, enum, place, entity, target, pose, json, script)"
                    ),
                ));
            }
        };
        if section == "inputs" && p.ty != "number" && p.ty != "integer" && (p.min.is_some() || p.max.is_some()) {
            return Err(e("min", format!("min/max apply to numbers, not {}", p.ty)));
        }
        let default = match &p.default {
            None => None,
            Some(d) => {
                let v = yaml_value(d).ok_or_else(|| e("default", "a default is a number, bool or text".into()))?;
                let v = match (&ty, v) {
                    (ParamType::Json, Value::Text(t)) => Value::Text(t),
                    (_, Value::Text(t)) => crate::skill::parse_text(&ty, &t),
                    (_, v) => v,
                };
                let spec = ParamSpec::with_default(&p.name, ty.clone(), v.clone(), "");
                crate::skill::check_param_value(&spec, &v, None).map_err(|err| e("default", err.to_string()))?;
                Some(v)
            }
        };
        let required = p.required.unwrap_or(default.is_none()) && section == "inputs";
        Ok(ParamSpec { name: p.name.clone(), ty, required, default, description: p.description.clone() })
    }

    fn sim_model(
        &self,
        skill: &str,
        kind: SkillKind,
        s: RawSim,
        inputs: &[&str],
        outputs: &[ParamSpec],
    ) -> Result<SimModel, ManifestError> {
        let e = |f: &str, msg: String| self.err(skill, Some(&format!("sim.{f}")), msg);
        let lits = |list: &[String], f: &str| -> Result<Vec<Literal>, ManifestError> {
            list.iter()
                .map(|l| {
                    let lit = Literal::parse(l).map_err(|m| e(f, m))?;
                    if let Some(p) = lit.ports().find(|p| !inputs.contains(p)) {
                        return Err(e(f, format!("'{l}' names '{{{p}}}', which is not an input port")));
                    }
                    Ok(lit)
                })
                .collect()
        };
        let mut requires = lits(&s.requires, "requires")?;
        requires.extend(lits(&s.holds, "holds")?);
        let effects = lits(&s.effects, "effects")?;
        if kind == SkillKind::Condition {
            if requires.is_empty() {
                return Err(e("holds", "a condition's model says what must hold (holds: [...])".into()));
            }
            if !effects.is_empty() || s.duration_s.is_some() {
                return Err(e("effects", "a condition answers at once and changes nothing".into()));
            }
        } else if !s.holds.is_empty() {
            return Err(e("holds", "'holds' is for conditions; an action 'requires'".into()));
        }
        let duration_s = s.duration_s.unwrap_or(1.0);
        if !(0.0..=3600.0).contains(&duration_s) {
            return Err(e("duration_s", format!("{duration_s} is not in [0, 3600] s")));
        }
        let p = s.success_probability.unwrap_or(1.0);
        if !(0.0..=1.0).contains(&p) {
            return Err(e("success_probability", format!("{p} is not in [0, 1]")));
        }
        let mut outs = BTreeMap::new();
        for (k, v) in s.outputs {
            if !outputs.iter().any(|o| o.name == k) {
                return Err(e(&format!("outputs.{k}"), format!("'{k}' is not an output port of the skill")));
            }
            let v =
                yaml_value(&v).map(|v| value_text(&v)).ok_or_else(|| e(&format!("outputs.{k}"), "a scalar".into()))?;
            outs.insert(k, v);
        }
        Ok(SimModel {
            duration_s,
            success_probability: p,
            requires,
            effects,
            outputs: outs,
            failure: s.failure.unwrap_or_else(|| format!("{skill} failed")),
        })
    }

    fn ros_binding(
        &self,
        skill: &str,
        kind: SkillKind,
        r: RawRos,
        inputs: &[&str],
        outputs: &[ParamSpec],
    ) -> Result<RosBinding, ManifestError> {
        let e = |f: &str, msg: String| self.err(skill, Some(&format!("ros2.{f}")), msg);
        let n = [
            r.action.is_some(),
            r.service.is_some(),
            r.publish.is_some(),
            r.topic.is_some(),
            r.execute_skill.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if n != 1 {
            return Err(self.err(
                skill,
                Some("ros2"),
                "give exactly one of action, service, publish, topic, execute_skill".into(),
            ));
        }
        let rule = |f: &str, text: &Option<String>| -> Result<Option<Rule>, ManifestError> {
            text.as_ref().map(|t| Rule::parse(t).map_err(|m| e(f, m))).transpose()
        };
        let template_ports = |f: &str, t: &serde_json::Value| -> Result<(), ManifestError> {
            let mut bad = None;
            visit_strings(t, &mut |s| {
                for p in placeholders(s) {
                    if !inputs.contains(&p.as_str()) && bad.is_none() {
                        bad = Some(p);
                    }
                }
            });
            match bad {
                Some(p) => Err(e(f, format!("the template names '{{{p}}}', which is not an input port"))),
                None => Ok(()),
            }
        };
        let out_map = |f: &str, m: BTreeMap<String, String>| -> Result<BTreeMap<String, String>, ManifestError> {
            for k in m.keys() {
                if !outputs.iter().any(|o| &o.name == k) {
                    return Err(e(&format!("{f}.{k}"), format!("'{k}' is not an output port of the skill")));
                }
            }
            Ok(m)
        };
        let action_only = |what: &str| -> Result<(), ManifestError> {
            if kind == SkillKind::Condition {
                return Err(e(what, format!("a condition is answered by a topic or a service, not by {what}")));
            }
            Ok(())
        };
        if let Some(a) = r.action {
            action_only("action")?;
            let goal = json(&a.goal);
            template_ports("action.goal", &goal)?;
            return Ok(RosBinding::Action {
                interface: a.ty,
                server: a.server,
                goal,
                result: out_map("action.result", a.result)?,
                success: rule("action.success", &a.success)?,
            });
        }
        if let Some(s) = r.service {
            let request = json(&s.request);
            template_ports("service.request", &request)?;
            let success = rule("service.success", &s.success)?;
            if kind == SkillKind::Condition && success.is_none() {
                return Err(e("service.success", "a condition answered by a service needs a success rule".into()));
            }
            return Ok(RosBinding::Service {
                interface: s.ty,
                service: s.name,
                request,
                response: out_map("service.response", s.response)?,
                success,
            });
        }
        if let Some(p) = r.publish {
            action_only("publish")?;
            let message = json(&p.message);
            template_ports("publish.message", &message)?;
            return Ok(RosBinding::Publish { interface: p.ty, topic: p.topic, message });
        }
        if let Some(t) = r.topic {
            if kind != SkillKind::Condition {
                return Err(e("topic", "a topic answers conditions; an action publishes (publish:)".into()));
            }
            let rule = Rule::parse(&t.rule).map_err(|m| e("topic.rule", m))?;
            return Ok(RosBinding::Topic { interface: t.ty, topic: t.topic, rule });
        }
        action_only("execute_skill")?;
        Ok(RosBinding::ExecuteSkill { server: r.execute_skill.and_then(|x| x.server) })
    }
}

/// A name of letters, digits and `_` (skills, ports, predicates, placeholders).
pub fn is_word(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// `{port}` in a text replaced by the call's value (as [`value_text`] writes it).
pub fn substitute(text: &str, params: &Params) -> String {
    let mut out = text.to_string();
    for (k, v) in params {
        out = out.replace(&format!("{{{k}}}"), &value_text(v));
    }
    out
}

/// `{port}` names in a template string.
pub fn placeholders(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find('{') {
        let Some(j) = rest[i..].find('}') else { break };
        let name = &rest[i + 1..i + j];
        if is_word(name) {
            out.push(name.to_string());
        }
        rest = &rest[i + j + 1..];
    }
    out
}

/// Calls `f` on every string in a JSON value.
pub fn visit_strings(v: &serde_json::Value, f: &mut dyn FnMut(&str)) {
    match v {
        serde_json::Value::String(s) => f(s),
        serde_json::Value::Array(a) => a.iter().for_each(|x| visit_strings(x, f)),
        serde_json::Value::Object(o) => o.values().for_each(|x| visit_strings(x, f)),
        _ => {}
    }
}

fn json(v: &serde_yaml::Value) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

fn yaml_value(v: &serde_yaml::Value) -> Option<Value> {
    match v {
        serde_yaml::Value::Bool(b) => Some(Value::Bool(*b)),
        serde_yaml::Value::Number(n) => n.as_f64().map(Value::Number),
        serde_yaml::Value::String(s) => Some(Value::Text(s.clone())),
        serde_yaml::Value::Mapping(_) | serde_yaml::Value::Sequence(_) => {
            serde_json::to_string(&json(v)).ok().map(Value::Text)
        }
        _ => None,
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    #[serde(default)]
    skills: Vec<RawSkill>,
}

fn action() -> SkillKind {
    SkillKind::Action
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSkill {
    name: String,
    #[serde(default = "action")]
    kind: SkillKind,
    description: Option<String>,
    #[serde(default)]
    inputs: Vec<RawPort>,
    #[serde(default)]
    outputs: Vec<RawPort>,
    builtin: Option<String>,
    sim: Option<RawSim>,
    ros2: Option<RawRos>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPort {
    name: String,
    #[serde(rename = "type")]
    ty: String,
    #[serde(default)]
    description: String,
    default: Option<serde_yaml::Value>,
    required: Option<bool>,
    min: Option<f64>,
    max: Option<f64>,
    max_length: Option<usize>,
    values: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSim {
    duration_s: Option<f64>,
    success_probability: Option<f64>,
    #[serde(default)]
    requires: Vec<String>,
    #[serde(default)]
    holds: Vec<String>,
    #[serde(default)]
    effects: Vec<String>,
    #[serde(default)]
    outputs: BTreeMap<String, serde_yaml::Value>,
    failure: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRos {
    action: Option<RawAction>,
    service: Option<RawService>,
    publish: Option<RawPublish>,
    topic: Option<RawTopic>,
    execute_skill: Option<RawExecute>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAction {
    #[serde(rename = "type")]
    ty: String,
    server: String,
    #[serde(default)]
    goal: serde_yaml::Value,
    #[serde(default)]
    result: BTreeMap<String, String>,
    success: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    #[serde(rename = "type")]
    ty: String,
    name: String,
    #[serde(default)]
    request: serde_yaml::Value,
    #[serde(default)]
    response: BTreeMap<String, String>,
    success: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPublish {
    #[serde(rename = "type")]
    ty: String,
    topic: String,
    #[serde(default)]
    message: serde_yaml::Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTopic {
    #[serde(rename = "type")]
    ty: String,
    topic: String,
    rule: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawExecute {
    server: Option<String>,
}

#[cfg(test)]
#[path = "manifest_tests.rs"]
mod tests;
