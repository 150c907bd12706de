//! ROS 2 interface definitions (`.msg`, `.srv`, `.action` under `share/<pkg>/` of the ROS
//! prefixes) read as field trees, to check a skill manifest's ROS 2 bindings when the node loads
//! it (a wrong field name or type is an error naming the skill and the field), and to build each
//! goal, request or message as complete, correctly typed JSON: every field present (defaults for
//! what the template leaves out), integers as integers, fixed arrays at their length. r2r's
//! untyped clients panic on JSON of a wrong shape; what this module builds cannot be.

#![cfg_attr(not(feature = "ros2"), allow(dead_code, reason = "the ROS 2 node's; tested without ROS"))]

use anyhow::{Context, Result, bail};
use arbor_behaviors::manifest::{DeclaredSkill, RosBinding, SkillManifest, placeholders};
use arbor_behaviors::{ParamType, Params, Value};
use serde_json::Value as J;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq)]
pub enum Base {
    Bool,
    /// Integer types: signed, bits.
    Int(bool, u32),
    Float,
    String,
    /// A message type, `pkg/msg/Name`.
    Msg(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Array {
    No,
    /// `T[]` or `T[<=n]`.
    Seq(Option<usize>),
    /// `T[n]`.
    Fixed(usize),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub base: Base,
    pub array: Array,
}

/// The definitions found under the ROS prefixes, parsed once each.
#[derive(Debug, Default)]
pub struct Interfaces {
    prefixes: Vec<PathBuf>,
    msgs: BTreeMap<String, Vec<Field>>,
    /// Texts given directly (tests): `pkg/kind/Name` -> text.
    texts: BTreeMap<String, String>,
}

fn base_of(ty: &str, pkg: &str) -> Base {
    let t = ty.split("<=").next().unwrap_or(ty);
    match t {
        "bool" => Base::Bool,
        "byte" | "char" | "uint8" => Base::Int(false, 8),
        "int8" => Base::Int(true, 8),
        "int16" => Base::Int(true, 16),
        "uint16" => Base::Int(false, 16),
        "int32" => Base::Int(true, 32),
        "uint32" => Base::Int(false, 32),
        "int64" => Base::Int(true, 64),
        "uint64" => Base::Int(false, 64),
        "float32" | "float64" => Base::Float,
        "string" | "wstring" => Base::String,
        "Header" => Base::Msg("std_msgs/msg/Header".into()),
        other => match other.split('/').collect::<Vec<_>>()[..] {
            [p, n] => Base::Msg(format!("{p}/msg/{n}")),
            [p, _, n] => Base::Msg(format!("{p}/msg/{n}")),
            _ => Base::Msg(format!("{pkg}/msg/{other}")),
        },
    }
}

/// The fields of one part of a definition (a `.msg`, or a section of `.srv`/`.action`).
pub fn parse_fields(text: &str, pkg: &str) -> Vec<Field> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let mut words = line.split_whitespace();
        let (Some(ty), Some(name)) = (words.next(), words.next()) else { continue };
        if name.contains('=') || words.next().is_some_and(|w| w.starts_with('=')) {
            continue; // a constant
        }
        let (base, array) = match ty.split_once('[') {
            None => (ty, Array::No),
            Some((b, rest)) => {
                let inner = rest.trim_end_matches(']');
                let array = if inner.is_empty() {
                    Array::Seq(None)
                } else if let Some(n) = inner.strip_prefix("<=") {
                    Array::Seq(n.parse().ok())
                } else {
                    inner.parse().map_or(Array::Seq(None), Array::Fixed)
                };
                (b, array)
            }
        };
        out.push(Field { name: name.to_string(), base: base_of(base, pkg), array });
    }
    out
}

impl Interfaces {
    pub fn new(prefixes: Vec<PathBuf>) -> Self {
        Self { prefixes, ..Default::default() }
    }

    /// Definitions given as text (`pkg/msg/Name` -> .msg text), for tests without ROS.
    #[cfg(test)]
    pub fn with_texts(texts: &[(&str, &str)]) -> Self {
        Self { texts: texts.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), ..Default::default() }
    }

    fn text(&self, pkg: &str, kind: &str, name: &str) -> Result<String> {
        let key = format!("{pkg}/{kind}/{name}");
        if let Some(t) = self.texts.get(&key) {
            return Ok(t.clone());
        }
        let tried: Vec<PathBuf> =
            self.prefixes.iter().map(|p| p.join("share").join(pkg).join(kind).join(format!("{name}.{kind}"))).collect();
        match tried.iter().find(|p| p.is_file()) {
            Some(f) => std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display())),
            None => bail!(
                "no definition of {key} under the ROS prefixes ({}); is its package installed and sourced?",
                if self.prefixes.is_empty() {
                    "AMENT_PREFIX_PATH is empty".to_string()
                } else {
                    self.prefixes.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
                }
            ),
        }
    }

    /// The fields of a message type `pkg/msg/Name`.
    pub fn msg(&mut self, full: &str) -> Result<Vec<Field>> {
        if let Some(f) = self.msgs.get(full) {
            return Ok(f.clone());
        }
        let (pkg, name) = split(full, "msg")?;
        let fields = parse_fields(&self.text(pkg, "msg", name)?, pkg);
        self.msgs.insert(full.to_string(), fields.clone());
        Ok(fields)
    }

    /// The sections of an interface: `action` (goal, result, feedback), `srv` (request,
    /// response) or `msg` (message), each with its fields.
    pub fn parts(&mut self, iface: &str) -> Result<BTreeMap<&'static str, Vec<Field>>> {
        let kind = iface.split('/').nth(1).unwrap_or("");
        let names: &[&'static str] = match kind {
            "action" => &["goal", "result", "feedback"],
            "srv" => &["request", "response"],
            "msg" => return Ok([("message", self.msg(iface)?)].into_iter().collect()),
            _ => bail!("'{iface}' is not an interface type (pkg/msg/Name, pkg/srv/Name or pkg/action/Name)"),
        };
        let (pkg, name) = split(iface, kind)?;
        let text = self.text(pkg, kind, name)?;
        // Sections are separated by lines of `---` (a section may be empty: Trigger's request).
        let mut sections: Vec<String> = vec![String::new()];
        for line in text.lines() {
            if line.trim() == "---" {
                sections.push(String::new());
            } else if let Some(last) = sections.last_mut() {
                last.push_str(line);
                last.push('\n');
            }
        }
        if sections.len() != names.len() {
            bail!("{iface}: expected {} sections separated by ---, found {}", names.len(), sections.len());
        }
        Ok(names.iter().zip(sections).map(|(n, s)| (*n, parse_fields(&s, pkg))).collect())
    }

    /// As [`parts`](Self::parts), for a binding that needs this kind of interface (`action`,
    /// `srv`, `msg`): a message type given to an action binding is an error, not a missing section.
    pub fn parts_as(&mut self, iface: &str, kind: &str) -> Result<BTreeMap<&'static str, Vec<Field>>> {
        if iface.split('/').nth(1) != Some(kind) {
            bail!("'{iface}' is not of kind {kind}: this binding needs pkg/{kind}/Name");
        }
        self.parts(iface)
    }

    /// JSON of a message with every field at its default.
    pub fn default_of(&mut self, fields: &[Field]) -> Result<J> {
        let mut m = serde_json::Map::new();
        for f in fields {
            let one = |me: &mut Self| -> Result<J> {
                Ok(match &f.base {
                    Base::Bool => J::Bool(false),
                    Base::Int(..) => J::from(0),
                    Base::Float => J::from(0.0),
                    Base::String => J::String(String::new()),
                    Base::Msg(t) => {
                        let sub = me.msg(t)?;
                        me.default_of(&sub)?
                    }
                })
            };
            let v = match f.array {
                Array::No => one(self)?,
                Array::Seq(_) => J::Array(vec![]),
                Array::Fixed(n) => J::Array((0..n).map(|_| one(self)).collect::<Result<_>>()?),
            };
            m.insert(f.name.clone(), v);
        }
        Ok(J::Object(m))
    }

    /// The type of the field at a dotted path (`pose.header.frame_id`, `path.poses[0]`).
    pub fn field_at(&mut self, fields: &[Field], path: &str) -> Result<Field> {
        let mut cur = fields.to_vec();
        let mut found: Option<Field> = None;
        for part in path.split('.') {
            let (name, indexed) = match part.split_once('[') {
                Some((n, _)) => (n, true),
                None => (part, false),
            };
            let f = cur.iter().find(|f| f.name == name).cloned().with_context(|| {
                format!(
                    "no field '{name}' (fields: {})",
                    cur.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", ")
                )
            })?;
            let f = if indexed {
                if f.array == Array::No {
                    bail!("'{name}' is not an array");
                }
                Field { array: Array::No, ..f }
            } else {
                f
            };
            cur = match (&f.base, &f.array) {
                (Base::Msg(t), Array::No) => self.msg(t)?,
                _ => vec![],
            };
            found = Some(f);
        }
        found.context("an empty field path")
    }

    /// Checks a template against the fields (`ports`: the skill's inputs, for placeholders).
    pub fn check(&mut self, fields: &[Field], t: &J, ports: &[arbor_behaviors::ParamSpec], at: &str) -> Result<()> {
        let J::Object(map) = t else {
            if t.is_null() {
                return Ok(());
            }
            bail!("{at}: a message template is a map of fields");
        };
        for (k, v) in map {
            let here = if at.is_empty() { k.clone() } else { format!("{at}.{k}") };
            let f = fields.iter().find(|f| &f.name == k).with_context(|| {
                format!(
                    "no field '{here}' (fields here: {})",
                    fields.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", ")
                )
            })?;
            self.check_value(f, v, ports, &here)?;
        }
        Ok(())
    }

    fn check_value(&mut self, f: &Field, v: &J, ports: &[arbor_behaviors::ParamSpec], at: &str) -> Result<()> {
        // A whole-value placeholder: the port's type must fit the field.
        if let J::String(s) = v
            && let Some(p) = whole_placeholder(s)
        {
            let port =
                ports.iter().find(|x| x.name == p).with_context(|| format!("{at}: '{{{p}}}' is no input port"))?;
            return port_fits(&port.ty, f, at);
        }
        match (&f.array, v) {
            (Array::No, _) => self.check_one(f, v, ports, at),
            (Array::Fixed(n), J::Array(a)) if a.len() != *n => bail!("{at}: a fixed array of {n}, got {}", a.len()),
            (Array::Seq(Some(n)), J::Array(a)) if a.len() > *n => bail!("{at}: at most {n} elements, got {}", a.len()),
            (_, J::Array(a)) => {
                let one = Field { array: Array::No, ..f.clone() };
                for (i, x) in a.iter().enumerate() {
                    self.check_value(&one, x, ports, &format!("{at}[{i}]"))?;
                }
                Ok(())
            }
            _ => bail!("{at}: an array field, got {v}"),
        }
    }

    fn check_one(&mut self, f: &Field, v: &J, ports: &[arbor_behaviors::ParamSpec], at: &str) -> Result<()> {
        match (&f.base, v) {
            (Base::Bool, J::Bool(_)) | (Base::Float, J::Number(_)) => Ok(()),
            (Base::Int(signed, bits), J::Number(n)) => int_fits(n.as_f64().unwrap_or(f64::NAN), *signed, *bits, at),
            (Base::String, J::String(s)) => {
                for p in placeholders(s) {
                    if !ports.iter().any(|x| x.name == p) {
                        bail!("{at}: '{{{p}}}' is no input port");
                    }
                }
                Ok(())
            }
            (Base::Msg(t), J::Object(_)) => {
                let sub = self.msg(t)?;
                self.check(&sub, v, ports, at)
            }
            (b, v) => bail!("{at}: a {} field, got {v}", base_name(b)),
        }
    }

    /// The JSON to send: defaults, the template over them, placeholders replaced by the call's
    /// values in the field's type. `places` resolve a place port into a pose.
    pub fn build(
        &mut self,
        fields: &[Field],
        t: &J,
        params: &Params,
        places: &BTreeMap<String, [f64; 2]>,
        frame: &str,
    ) -> Result<J> {
        let mut msg = self.default_of(fields)?;
        if let J::Object(map) = t {
            for (k, v) in map {
                let Some(f) = fields.iter().find(|f| &f.name == k) else { bail!("no field '{k}'") };
                let value = self.value(f, v, params, places, frame).with_context(|| format!("field '{k}'"))?;
                msg[k.as_str()] = value;
            }
        }
        Ok(msg)
    }

    fn value(
        &mut self,
        f: &Field,
        v: &J,
        params: &Params,
        places: &BTreeMap<String, [f64; 2]>,
        frame: &str,
    ) -> Result<J> {
        if let J::String(s) = v
            && let Some(p) = whole_placeholder(s)
        {
            let given = params.get(p).with_context(|| format!("the call has no value for '{p}'"))?;
            return self.port_value(f, given, places, frame);
        }
        match (&f.array, v) {
            (Array::No, _) => self.one(f, v, params, places, frame),
            (_, J::Array(a)) => {
                let one = Field { array: Array::No, ..f.clone() };
                Ok(J::Array(a.iter().map(|x| self.value(&one, x, params, places, frame)).collect::<Result<_>>()?))
            }
            _ => bail!("an array field, got {v}"),
        }
    }

    fn one(
        &mut self,
        f: &Field,
        v: &J,
        params: &Params,
        places: &BTreeMap<String, [f64; 2]>,
        frame: &str,
    ) -> Result<J> {
        Ok(match (&f.base, v) {
            (Base::String, J::String(s)) => J::String(arbor_behaviors::manifest::substitute(s, params)),
            (Base::Int(signed, bits), J::Number(n)) => {
                let x = n.as_f64().unwrap_or(f64::NAN);
                int_fits(x, *signed, *bits, "value")?;
                int_json(x)
            }
            (Base::Float | Base::Bool, _) => v.clone(),
            (Base::Msg(t), J::Object(_)) => {
                let sub = self.msg(t)?;
                self.build(&sub, v, params, places, frame)?
            }
            _ => bail!("a {} field, got {v}", base_name(&f.base)),
        })
    }

    /// A port's value as a field's JSON (numbers to integers where the field is one, a place or
    /// a `x;y;yaw` pose to a Pose/PoseStamped/Point/Pose2D, JSON text parsed and checked).
    fn port_value(&mut self, f: &Field, v: &Value, places: &BTreeMap<String, [f64; 2]>, frame: &str) -> Result<J> {
        match (&f.base, &f.array, v) {
            (Base::Bool, Array::No, Value::Bool(b)) => Ok(J::Bool(*b)),
            (Base::Float, Array::No, Value::Number(n)) => Ok(J::from(*n)),
            (Base::Int(s, b), Array::No, Value::Number(n)) => {
                if n.fract() != 0.0 {
                    bail!("{n} is not a whole number");
                }
                int_fits(*n, *s, *b, "value")?;
                Ok(int_json(*n))
            }
            (Base::String, Array::No, v) => Ok(J::String(arbor_behaviors::manifest::value_text(v))),
            (Base::Msg(t), Array::No, Value::Text(s)) if pose_type(t) => {
                let (x, y, yaw) = match (places.get(s.as_str()), arbor_behaviors::skill::parse_pose(s)) {
                    (Some(p), _) => (p[0], p[1], 0.0),
                    (None, Some(p)) => p,
                    (None, None) => bail!("'{s}' is neither a known place nor a pose x;y;yaw"),
                };
                let sub = self.msg(t)?;
                let pose = serde_json::json!({"position": {"x": x, "y": y, "z": 0.0},
                    "orientation": {"x": 0.0, "y": 0.0, "z": (yaw / 2.0).sin(), "w": (yaw / 2.0).cos()}});
                let tpl = match t.as_str() {
                    "geometry_msgs/msg/PoseStamped" => serde_json::json!({"header": {"frame_id": frame}, "pose": pose}),
                    "geometry_msgs/msg/Pose" => pose,
                    "geometry_msgs/msg/Point" => serde_json::json!({"x": x, "y": y, "z": 0.0}),
                    _ => serde_json::json!({"x": x, "y": y, "theta": yaw}),
                };
                self.build(&sub, &tpl, &Params::new(), places, frame)
            }
            (_, _, Value::Text(s)) => {
                // JSON text (a structured port, a value an earlier node left): checked, then typed.
                let j: J = serde_json::from_str(s).with_context(|| format!("'{s}' is not JSON"))?;
                self.check_value(f, &j, &[], "value")?;
                let one = Field { array: f.array.clone(), ..f.clone() };
                self.value(&one, &j, &Params::new(), places, frame)
            }
            (_, _, v) => bail!("{v} does not fit a {} field", base_name(&f.base)),
        }
    }

    /// Checks a manifest's ROS 2 bindings against the definitions: interfaces exist, templates
    /// name real fields with values of their types, result/response fields and rules exist.
    pub fn check_manifest(&mut self, m: &SkillManifest) -> std::result::Result<(), arbor_behaviors::ManifestError> {
        for s in &m.skills {
            let Some(b) = &s.ros2 else { continue };
            if let Err(e) = self.check_binding(s, b) {
                let (field, msg) = e;
                return Err(m.err(&s.spec.name, Some(&field), msg));
            }
        }
        Ok(())
    }

    fn check_binding(&mut self, s: &DeclaredSkill, b: &RosBinding) -> std::result::Result<(), (String, String)> {
        let ports = &s.spec.params;
        fn err(field: &'static str) -> impl Fn(anyhow::Error) -> (String, String) {
            move |e| (field.to_string(), format!("{e:#}"))
        }
        let outputs = |me: &mut Self,
                       fields: &[Field],
                       map: &BTreeMap<String, String>,
                       f: &str|
         -> std::result::Result<(), (String, String)> {
            for (port, path) in map {
                me.field_at(fields, path).map_err(|e| (format!("{f}.{port}"), format!("{path}: {e:#}")))?;
            }
            Ok(())
        };
        match b {
            RosBinding::Action { interface, goal, result, success, .. } => {
                let parts = self.parts_as(interface, "action").map_err(err("ros2.action.type"))?;
                self.check(&parts["goal"], goal, ports, "").map_err(err("ros2.action.goal"))?;
                outputs(self, &parts["result"], result, "ros2.action.result")?;
                if let Some(r) = success {
                    self.field_at(&parts["result"], &r.field).map_err(err("ros2.action.success"))?;
                }
            }
            RosBinding::Service { interface, request, response, success, .. } => {
                let parts = self.parts_as(interface, "srv").map_err(err("ros2.service.type"))?;
                self.check(&parts["request"], request, ports, "").map_err(err("ros2.service.request"))?;
                outputs(self, &parts["response"], response, "ros2.service.response")?;
                if let Some(r) = success {
                    self.field_at(&parts["response"], &r.field).map_err(err("ros2.service.success"))?;
                }
            }
            RosBinding::Publish { interface, message, .. } => {
                let parts = self.parts_as(interface, "msg").map_err(err("ros2.publish.type"))?;
                self.check(&parts["message"], message, ports, "").map_err(err("ros2.publish.message"))?;
            }
            RosBinding::Topic { interface, rule, .. } => {
                let parts = self.parts_as(interface, "msg").map_err(err("ros2.topic.type"))?;
                self.field_at(&parts["message"], &rule.field).map_err(err("ros2.topic.rule"))?;
            }
            RosBinding::ExecuteSkill { .. } => {}
        }
        Ok(())
    }
}

fn split<'a>(full: &'a str, kind: &str) -> Result<(&'a str, &'a str)> {
    match full.split('/').collect::<Vec<_>>()[..] {
        [p, k, n] if k == kind && !p.is_empty() && !n.is_empty() => Ok((p, n)),
        [p, n] if kind == "msg" => Ok((p, n)),
        _ => bail!("'{full}' is not a {kind} type (pkg/{kind}/Name)"),
    }
}

fn whole_placeholder(s: &str) -> Option<&str> {
    let inner = s.strip_prefix('{')?.strip_suffix('}')?;
    arbor_behaviors::manifest::is_word(inner).then_some(inner)
}

fn pose_type(t: &str) -> bool {
    matches!(
        t,
        "geometry_msgs/msg/PoseStamped"
            | "geometry_msgs/msg/Pose"
            | "geometry_msgs/msg/Point"
            | "geometry_msgs/msg/Pose2D"
    )
}

fn base_name(b: &Base) -> String {
    match b {
        Base::Bool => "bool".into(),
        Base::Int(s, bits) => format!("{}int{bits}", if *s { "" } else { "u" }),
        Base::Float => "float".into(),
        Base::String => "string".into(),
        Base::Msg(t) => t.clone(),
    }
}

fn int_fits(x: f64, signed: bool, bits: u32, at: &str) -> Result<()> {
    let (lo, hi) = if signed {
        (-(2f64.powi(bits as i32 - 1)), 2f64.powi(bits as i32 - 1) - 1.0)
    } else {
        (0.0, 2f64.powi(bits as i32) - 1.0)
    };
    if x.fract() != 0.0 || x < lo || x > hi {
        bail!("{at}: {x} does not fit a {}int{bits}", if signed { "" } else { "u" });
    }
    Ok(())
}

fn int_json(x: f64) -> J {
    if x < 0.0 { J::from(x as i64) } else { J::from(x as u64) }
}

/// Whether a port of type `ty` can fill field `f` (at load; the value is checked again when sent).
fn port_fits(ty: &ParamType, f: &Field, at: &str) -> Result<()> {
    let ok = match (ty, &f.base, &f.array) {
        (ParamType::Json, _, _) => true,
        (ParamType::Bool, Base::Bool, Array::No) => true,
        (ParamType::Number { .. }, Base::Float, Array::No) => true,
        (ParamType::Int { .. }, Base::Int(..) | Base::Float, Array::No) => true,
        (
            ParamType::Text { .. }
            | ParamType::Enum { .. }
            | ParamType::Entity
            | ParamType::Place
            | ParamType::Target
            | ParamType::Pose
            | ParamType::Script,
            Base::String,
            Array::No,
        ) => true,
        (ParamType::Place | ParamType::Pose | ParamType::Target, Base::Msg(t), Array::No) => pose_type(t),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        let arr = if f.array == Array::No { "" } else { "[]" };
        bail!("{at}: a port of type {ty} cannot fill a {}{arr} field", base_name(&f.base))
    }
}

/// A result or response field as a blackboard value: numbers, bools and strings as they are;
/// messages and arrays as JSON text (a later node's JSON port reads them back).
pub fn to_value(v: &J) -> Value {
    match v {
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => Value::Number(n.as_f64().unwrap_or(0.0)),
        J::String(s) => Value::Text(s.clone()),
        other => Value::Text(other.to_string()),
    }
}

/// Loads the interfaces of this process's ROS prefixes (`$AMENT_PREFIX_PATH`).
pub fn from_env() -> Interfaces {
    Interfaces::new(crate::ros_msgdef::prefixes())
}

#[cfg(test)]
#[path = "ros_iface_tests.rs"]
mod tests;
