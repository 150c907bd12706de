//! The skill registry: every action and condition a tree may use, with typed parameters.
//! Trees are checked against it before the first tick; the planner's grammar is generated
//! from it.

use crate::value::Value;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// The type of one skill parameter.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ParamType {
    /// Free text, at most `max_len` characters.
    Text {
        max_len: usize,
    },
    /// A number in [min, max].
    Number {
        min: f64,
        max: f64,
    },
    Bool,
    /// The name of an entity (person or object) the robot knows.
    Entity,
    /// The name of a place on the map.
    Place,
    /// A place or an entity.
    Target,
    /// One of a fixed set of words.
    Enum {
        values: Vec<String>,
    },
    /// Code in BT.CPP's scripting language.
    Script,
    /// A whole number in [min, max] (counts, milliseconds).
    Int {
        min: f64,
        max: f64,
    },
    /// A 2-D pose written as BT.CPP writes one in a port: `x;y` or `x;y;yaw` (metres, radians).
    Pose,
    /// A structured value: JSON text (a ROS message field, a list of waypoints).
    Json,
}

impl fmt::Display for ParamType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamType::Text { max_len } => write!(f, "text (at most {max_len} characters)"),
            ParamType::Number { min, max } if *min <= -1e300 && *max >= 1e300 => f.write_str("number"),
            ParamType::Number { min, max } if *max >= 1e300 => write!(f, "number >= {min}"),
            ParamType::Number { min, max } if *min <= -1e300 => write!(f, "number <= {max}"),
            ParamType::Number { min, max } => write!(f, "number in [{min}, {max}]"),
            ParamType::Bool => f.write_str("bool"),
            ParamType::Entity => f.write_str("entity name"),
            ParamType::Place => f.write_str("place name"),
            ParamType::Target => f.write_str("place or entity name"),
            ParamType::Enum { values } => write!(f, "one of {}", values.join("|")),
            ParamType::Script => f.write_str("script"),
            ParamType::Int { min, max } if *max >= 1e15 => write!(f, "whole number >= {min}"),
            ParamType::Int { min, max } => write!(f, "whole number in [{min}, {max}]"),
            ParamType::Pose => f.write_str("pose (x;y or x;y;yaw)"),
            ParamType::Json => f.write_str("JSON"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParamSpec {
    pub name: String,
    #[serde(flatten)]
    pub ty: ParamType,
    pub required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    pub description: String,
}

impl ParamSpec {
    pub fn required(name: &str, ty: ParamType, description: &str) -> Self {
        Self { name: name.into(), ty, required: true, default: None, description: description.into() }
    }

    pub fn optional(name: &str, ty: ParamType, description: &str) -> Self {
        Self { name: name.into(), ty, required: false, default: None, description: description.into() }
    }

    pub fn with_default(name: &str, ty: ParamType, default: Value, description: &str) -> Self {
        Self { name: name.into(), ty, required: false, default: Some(default), description: description.into() }
    }
}

/// Whether a skill changes the world (action, may run over many ticks) or only checks it
/// (condition, answers in the tick it is asked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkillKind {
    Action,
    Condition,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SkillSpec {
    pub name: String,
    pub kind: SkillKind,
    pub description: String,
    pub params: Vec<ParamSpec>,
    /// Output ports: what a successful call leaves on the blackboard (`{key}` remapping).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<ParamSpec>,
}

impl SkillSpec {
    pub fn action(name: &str, description: &str, params: Vec<ParamSpec>) -> Self {
        Self { name: name.into(), kind: SkillKind::Action, description: description.into(), params, outputs: vec![] }
    }

    pub fn condition(name: &str, description: &str, params: Vec<ParamSpec>) -> Self {
        Self { name: name.into(), kind: SkillKind::Condition, description: description.into(), params, outputs: vec![] }
    }

    /// The same skill with output ports.
    pub fn with_outputs(mut self, outputs: Vec<ParamSpec>) -> Self {
        self.outputs = outputs;
        self
    }

    pub fn param(&self, name: &str) -> Option<&ParamSpec> {
        self.params.iter().find(|p| p.name == name)
    }
}

/// Names the world knows: places on the map and entities the robot knows of. Parameters of
/// type entity/place/target are checked against it when it is given.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Vocabulary {
    pub places: Vec<String>,
    pub entities: Vec<String>,
}

impl Vocabulary {
    fn has_place(&self, s: &str) -> bool {
        self.places.iter().any(|p| p == s)
    }
    fn has_entity(&self, s: &str) -> bool {
        self.entities.iter().any(|p| p == s)
    }
}

/// A problem with one parameter of one skill call.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParamError {
    #[error("port '{param}' must be {ty}, got {got}")]
    WrongType { param: String, ty: String, got: String },
    #[error("port '{param}': unknown {what} '{name}' (known: {known})")]
    UnknownName { param: String, what: &'static str, name: String, known: String },
}

/// The set of skills a robot offers. Ordered by name: listing and grammar output are stable.
#[derive(Debug, Clone, Default)]
pub struct SkillRegistry {
    skills: BTreeMap<String, SkillSpec>,
}

impl SkillRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a skill; a later registration of the same name replaces the earlier one
    /// (a robot backend may refine a generic skill).
    pub fn register(&mut self, spec: SkillSpec) {
        self.skills.insert(spec.name.clone(), spec);
    }

    pub fn get(&self, name: &str) -> Option<&SkillSpec> {
        self.skills.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &SkillSpec> {
        self.skills.values()
    }

    pub fn names(&self) -> Vec<&str> {
        self.skills.keys().map(String::as_str).collect()
    }

    pub fn len(&self) -> usize {
        self.skills.len()
    }

    pub fn is_empty(&self) -> bool {
        self.skills.is_empty()
    }
}

/// Reads a literal written as text (an XML attribute, a YAML scalar) as a value of type `ty`.
pub fn parse_text(ty: &ParamType, text: &str) -> Value {
    match ty {
        ParamType::Number { .. } | ParamType::Int { .. } => {
            text.trim().parse::<f64>().map(Value::Number).unwrap_or_else(|_| Value::Text(text.into()))
        }
        ParamType::Bool => match text.trim() {
            "true" | "True" | "TRUE" | "1" => Value::Bool(true),
            "false" | "False" | "FALSE" | "0" => Value::Bool(false),
            _ => Value::Text(text.into()),
        },
        _ => Value::Text(text.into()),
    }
}

/// A pose port's text, `x;y` or `x;y;yaw` (BT.CPP's convention for structured ports).
pub fn parse_pose(s: &str) -> Option<(f64, f64, f64)> {
    let parts: Vec<f64> = s.split(';').map(|p| p.trim().parse::<f64>()).collect::<Result<_, _>>().ok()?;
    match parts[..] {
        [x, y] if x.is_finite() && y.is_finite() => Some((x, y, 0.0)),
        [x, y, yaw] if x.is_finite() && y.is_finite() && yaw.is_finite() => Some((x, y, yaw)),
        _ => None,
    }
}

/// Checks one literal value against a parameter declaration (type, range, known names).
pub fn check_param_value(p: &ParamSpec, v: &Value, vocab: Option<&Vocabulary>) -> Result<(), ParamError> {
    let wrong = || ParamError::WrongType { param: p.name.clone(), ty: p.ty.to_string(), got: v.to_string() };
    let unknown = |what: &'static str, name: &str, known: Vec<&String>| ParamError::UnknownName {
        param: p.name.clone(),
        what,
        name: name.to_string(),
        known: known.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
    };
    match (&p.ty, v) {
        (ParamType::Text { max_len }, Value::Text(s)) if s.chars().count() <= *max_len => Ok(()),
        (ParamType::Script, Value::Text(s)) => crate::script::Script::parse(s)
            .map(|_| ())
            .map_err(|e| ParamError::WrongType { param: p.name.clone(), ty: "script".into(), got: e.to_string() }),
        (ParamType::Number { min, max }, Value::Number(n)) if n.is_finite() && *n >= *min && *n <= *max => Ok(()),
        (ParamType::Int { min, max }, Value::Number(n)) if n.fract() == 0.0 && *n >= *min && *n <= *max => Ok(()),
        (ParamType::Bool, Value::Bool(_)) => Ok(()),
        (ParamType::Pose, Value::Text(s)) if parse_pose(s).is_some() => Ok(()),
        (ParamType::Json, Value::Text(s)) if serde_json::from_str::<serde_json::Value>(s).is_ok() => Ok(()),
        (ParamType::Enum { values }, Value::Text(s)) if values.iter().any(|x| x == s) => Ok(()),
        (ParamType::Entity, Value::Text(s)) => match vocab {
            Some(voc) if !voc.has_entity(s) => Err(unknown("entity", s, voc.entities.iter().collect())),
            _ if s.is_empty() => Err(wrong()),
            _ => Ok(()),
        },
        (ParamType::Place, Value::Text(s)) => match vocab {
            Some(voc) if !voc.has_place(s) => Err(unknown("place", s, voc.places.iter().collect())),
            _ if s.is_empty() => Err(wrong()),
            _ => Ok(()),
        },
        (ParamType::Target, Value::Text(s)) => match vocab {
            Some(voc) if !voc.has_place(s) && !voc.has_entity(s) => {
                Err(unknown("place or entity", s, voc.places.iter().chain(voc.entities.iter()).collect()))
            }
            _ if s.is_empty() => Err(wrong()),
            _ => Ok(()),
        },
        _ => Err(wrong()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked_against_type_range_and_known_names() {
        let target = ParamSpec::required("target", ParamType::Target, "where to go");
        let speed =
            ParamSpec::with_default("speed", ParamType::Number { min: 0.1, max: 1.5 }, Value::Number(0.8), "m/s");
        let count = ParamSpec::required("count", ParamType::Int { min: 1.0, max: 5.0 }, "");
        let vocab = Vocabulary { places: vec!["kitchen".into()], entities: vec!["alice".into()] };
        assert!(check_param_value(&target, &Value::Text("alice".into()), Some(&vocab)).is_ok());
        assert!(check_param_value(&target, &Value::Text("anything".into()), None).is_ok());
        let e = check_param_value(&target, &Value::Number(3.0), None).unwrap_err();
        assert!(e.to_string().contains("must be place or entity name"), "{e}");
        let e = check_param_value(&target, &Value::Text("garage".into()), Some(&vocab)).unwrap_err();
        assert!(e.to_string().contains("unknown place or entity 'garage'"), "{e}");
        let e = check_param_value(&speed, &Value::Number(9.0), None).unwrap_err();
        assert!(e.to_string().contains("number in [0.1, 1.5]"), "{e}");
        assert!(check_param_value(&count, &Value::Number(2.5), None).is_err());
        assert_eq!(parse_text(&ParamType::Bool, "True"), Value::Bool(true));
        assert_eq!(parse_text(&ParamType::Int { min: 0.0, max: 9.0 }, " 7 "), Value::Number(7.0));
    }
}
