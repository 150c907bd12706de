//! arbor's YAML tree format.
//!
//! ```yaml
//! name: photographer
//! goal: photograph each person who looks at the robot
//! root:
//!   sequence:
//!     - navigate_to: {target: kitchen}
//!     - retry:
//!         num_attempts: 3
//!         child:
//!           capture_photo: {entity: alice}
//!     - reactive_sequence:
//!         - in_view: {entity: alice}
//!         - look_at: {entity: alice}
//!       name: keep_looking
//! ```
//!
//! A node is a map with exactly one key naming its type (a built-in node or a skill), plus an
//! optional `name` (for control nodes and decorators it may also stand inside the body). The value of a control node is the list of its children; of a decorator,
//! its parameters and `child`; of a leaf, its parameters (or nothing).

use crate::tree::{Arity, Node, NodeType, Tree, TreeError};
use crate::value::{Params, Value};
use serde_yaml::{Mapping, Value as Y};
use std::path::Path;

/// Reads and parses a tree file. Errors name the file and the line or node.
pub fn load_file(path: &Path) -> Result<Tree, TreeError> {
    let source = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| TreeError::File { source_name: source.clone(), message: e.to_string() })?;
    parse(&text, &source)
}

/// Parses tree YAML; `source` names it in errors (a file path, "<planner>", ...).
pub fn parse(text: &str, source: &str) -> Result<Tree, TreeError> {
    let doc: Y = serde_yaml::from_str(text).map_err(|e| syntax(source, &e))?;
    let Y::Mapping(top) = doc else {
        return Err(TreeError::File {
            source_name: source.into(),
            message: "a tree file is a map with 'name' and 'root'".into(),
        });
    };
    let file_err = |message: String| TreeError::File { source_name: source.into(), message };
    for key in top.keys() {
        match key.as_str() {
            Some("name" | "goal" | "root") => {}
            _ => {
                return Err(file_err(format!("unknown top-level key {} (expected name, goal, root)", show(key))));
            }
        }
    }
    let name = match top.get("name") {
        Some(Y::String(s)) => s.clone(),
        Some(other) => {
            return Err(file_err(format!("'name' must be text, got {}", show(other))));
        }
        None => "tree".to_string(),
    };
    let goal = match top.get("goal") {
        Some(Y::String(s)) => Some(s.clone()),
        None | Some(Y::Null) => None,
        Some(other) => {
            return Err(file_err(format!("'goal' must be text, got {}", show(other))));
        }
    };
    let root = top.get("root").ok_or_else(|| file_err("missing 'root' (the tree's top node)".into()))?;
    let root = parse_node(root, None, source)?;
    Ok(Tree { name, goal, root })
}

fn syntax(source: &str, e: &serde_yaml::Error) -> TreeError {
    let (line, column) = e.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
    TreeError::Syntax { source_name: source.into(), line, column, message: e.to_string() }
}

fn show(v: &Y) -> String {
    match v {
        Y::String(s) => format!("'{s}'"),
        other => serde_yaml::to_string(other).map(|s| s.trim().to_string()).unwrap_or_else(|_| "?".into()),
    }
}

fn parse_node(y: &Y, parent: Option<(&str, usize)>, source: &str) -> Result<Node, TreeError> {
    let path_of = |ty: &str| match parent {
        None => ty.to_string(),
        Some((p, i)) => format!("{p}/{ty}[{i}]"),
    };
    let invalid = |node: String, message: String| TreeError::Invalid { source_name: source.into(), node, message };
    let Y::Mapping(map) = y else {
        let here = path_of("?");
        return Err(invalid(here, format!("a node is a map like '{{skill_name: {{param: value}}}}', got {}", show(y))));
    };
    let mut name = None;
    let mut ty_entry = None;
    for (k, v) in map {
        match k.as_str() {
            Some("name") => match v {
                Y::String(s) => name = Some(s.clone()),
                other => {
                    return Err(invalid(path_of("?"), format!("'name' must be text, got {}", show(other))));
                }
            },
            Some(t) => {
                if let Some((prev, _)) = ty_entry {
                    return Err(invalid(
                        path_of(t),
                        format!("a node has exactly one type key, found '{prev}' and '{t}'"),
                    ));
                }
                ty_entry = Some((t, v));
            }
            None => {
                return Err(invalid(path_of("?"), format!("node keys are text, got {}", show(k))));
            }
        }
    }
    let Some((ty_name, body)) = ty_entry else {
        return Err(invalid(path_of("?"), "node has no type key".into()));
    };
    let path = path_of(ty_name);
    let ty = NodeType::from_name(ty_name);
    let mut node = Node { ty, name, params: Params::new(), children: Vec::new() };
    let parse_children = |list: &[Y]| -> Result<Vec<Node>, TreeError> {
        list.iter().enumerate().map(|(i, c)| parse_node(c, Some((&path, i)), source)).collect()
    };
    match (node.ty.arity(), body) {
        (Arity::Many, Y::Sequence(list)) => node.children = parse_children(list)?,
        (Arity::Many, Y::Mapping(m)) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    (Some("children"), Y::Sequence(list)) => node.children = parse_children(list)?,
                    (Some("name"), Y::String(s)) => node.name = Some(s.clone()),
                    (Some(k), v) => {
                        node.params.insert(
                            k.to_string(),
                            value(v).map_err(|m| invalid(path.clone(), format!("parameter '{k}': {m}")))?,
                        );
                    }
                    (None, _) => {
                        return Err(invalid(path.clone(), format!("parameter names are text, got {}", show(k))));
                    }
                }
            }
        }
        (Arity::Many, other) => {
            return Err(invalid(path.clone(), format!("'{ty_name}' takes a list of children, got {}", show(other))));
        }
        (Arity::One, Y::Mapping(m)) => {
            for (k, v) in m {
                match k.as_str() {
                    Some("child") => node.children = vec![parse_node(v, Some((&path, 0)), source)?],
                    Some("name") if v.is_string() => node.name = v.as_str().map(str::to_string),
                    Some(k) => {
                        node.params.insert(
                            k.to_string(),
                            value(v).map_err(|m| invalid(path.clone(), format!("parameter '{k}': {m}")))?,
                        );
                    }
                    None => {
                        return Err(invalid(path.clone(), format!("parameter names are text, got {}", show(k))));
                    }
                }
            }
        }
        (Arity::One, other) => {
            return Err(invalid(
                path.clone(),
                format!("'{ty_name}' takes a map with its parameters and 'child', got {}", show(other)),
            ));
        }
        (Arity::Leaf, Y::Null) => {}
        (Arity::Leaf, Y::Mapping(m)) => {
            for (k, v) in m {
                let Some(k) = k.as_str() else {
                    return Err(invalid(path.clone(), format!("parameter names are text, got {}", show(k))));
                };
                node.params.insert(
                    k.to_string(),
                    value(v).map_err(|m| invalid(path.clone(), format!("parameter '{k}': {m}")))?,
                );
            }
        }
        (Arity::Leaf, Y::Sequence(_)) => {
            return Err(invalid(
                path.clone(),
                format!("'{ty_name}' is a leaf (a skill or condition) and takes no children"),
            ));
        }
        (Arity::Leaf, other) => {
            return Err(invalid(path.clone(), format!("'{ty_name}' takes a map of parameters, got {}", show(other))));
        }
    }
    Ok(node)
}

fn value(y: &Y) -> Result<Value, String> {
    match y {
        Y::Bool(b) => Ok(Value::Bool(*b)),
        Y::Number(n) => n.as_f64().map(Value::Number).ok_or_else(|| format!("unreadable number {n}")),
        Y::String(s) => Ok(Value::Text(s.clone())),
        other => Err(format!("must be text, a number or a bool, got {}", show(other))),
    }
}

/// Writes a tree in arbor's YAML form. Deterministic: the same tree gives the same bytes.
pub fn to_yaml(tree: &Tree) -> String {
    let mut top = Mapping::new();
    top.insert("name".into(), Y::String(tree.name.clone()));
    if let Some(g) = &tree.goal {
        top.insert("goal".into(), Y::String(g.clone()));
    }
    top.insert("root".into(), node_to_yaml(&tree.root));
    // Serialising a Value built from strings, numbers and maps cannot fail.
    serde_yaml::to_string(&Y::Mapping(top)).unwrap_or_default()
}

fn value_to_yaml(v: &Value) -> Y {
    match v {
        Value::Bool(b) => Y::Bool(*b),
        Value::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => Y::Number((*n as i64).into()),
        Value::Number(n) => Y::Number((*n).into()),
        Value::Text(s) => Y::String(s.clone()),
    }
}

fn node_to_yaml(node: &Node) -> Y {
    let params = || node.params.iter().map(|(k, v)| (Y::String(k.clone()), value_to_yaml(v))).collect::<Mapping>();
    let body = match node.ty.arity() {
        Arity::Many if node.params.is_empty() => Y::Sequence(node.children.iter().map(node_to_yaml).collect()),
        Arity::Many => {
            let mut m = params();
            m.insert("children".into(), Y::Sequence(node.children.iter().map(node_to_yaml).collect()));
            Y::Mapping(m)
        }
        Arity::One => {
            let mut m = params();
            if let Some(c) = node.children.first() {
                m.insert("child".into(), node_to_yaml(c));
            }
            Y::Mapping(m)
        }
        Arity::Leaf if node.params.is_empty() => Y::Null,
        Arity::Leaf => Y::Mapping(params()),
    };
    let mut m = Mapping::new();
    m.insert(Y::String(node.ty.name().to_string()), body);
    if let Some(n) = &node.name {
        m.insert("name".into(), Y::String(n.clone()));
    }
    Y::Mapping(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::skill::{ParamSpec, ParamType, SkillRegistry, SkillSpec};

    const TREE: &str = "
name: demo
goal: take a photo of alice
root:
  sequence:
    - navigate_to: {target: kitchen}
    - retry:
        num_attempts: 3
        child:
          capture_photo: {entity: alice}
    - reactive_sequence:
        - in_view: {entity: alice}
        - always_success:
      name: guarded
";

    fn registry() -> SkillRegistry {
        let mut r = SkillRegistry::new();
        r.register(SkillSpec::action("navigate_to", "go", vec![ParamSpec::required("target", ParamType::Target, "")]));
        r.register(SkillSpec::action(
            "capture_photo",
            "photo",
            vec![ParamSpec::optional("entity", ParamType::Entity, "")],
        ));
        r.register(SkillSpec::condition("in_view", "seen", vec![ParamSpec::required("entity", ParamType::Entity, "")]));
        r
    }

    #[test]
    fn parses_checks_and_round_trips() {
        let t = parse(TREE, "demo.yaml").unwrap();
        assert_eq!(t.name, "demo");
        assert_eq!(t.root.size(), 7);
        assert_eq!(t.root.children[2].name.as_deref(), Some("guarded"));
        t.check("demo.yaml", &registry(), None).unwrap();
        let back = parse(&to_yaml(&t), "again").unwrap();
        assert_eq!(back, t);
        assert_eq!(to_yaml(&back), to_yaml(&t));
    }

    fn check_err(text: &str) -> String {
        match parse(text, "bad.yaml") {
            Err(e) => e.to_string(),
            Ok(t) => t.check("bad.yaml", &registry(), None).unwrap_err().to_string(),
        }
    }

    #[test]
    fn errors_name_file_and_line_or_node() {
        let e = check_err("root:\n  sequence:\n    - navigate_to: {target: kitchen\n");
        assert!(e.starts_with("bad.yaml: line"), "{e}");
        let e = check_err("root:\n  sequence:\n    - fly_to: {target: kitchen}\n");
        assert!(e.contains("at node 'sequence/fly_to[0]'") && e.contains("unknown node or skill 'fly_to'"), "{e}");
        let e = check_err("root:\n  sequence:\n    - navigate_to: {}\n");
        assert!(e.contains("sequence/navigate_to[0]") && e.contains("missing required parameter 'target'"), "{e}");
        let e = check_err("root:\n  sequence:\n    - navigate_to: {target: 5}\n");
        assert!(e.contains("must be place or entity name"), "{e}");
        let e = check_err("root:\n  sequence: []\n");
        assert!(e.contains("needs at least one child"), "{e}");
        let e = check_err("root:\n  retry:\n    num_attempts: 0\n    child: {always_success: }\n");
        assert!(e.contains("'num_attempts' must be a number in [1, 100]"), "{e}");
        let e = check_err("root:\n  inverter: {}\n");
        assert!(e.contains("takes exactly one child"), "{e}");
        let e = check_err("roots: {}\n");
        assert!(e.contains("unknown top-level key 'roots'"), "{e}");
        let e = check_err("root:\n  sequence:\n    - navigate_to: {target: kitchen}\n      capture_photo: {}\n");
        assert!(e.contains("exactly one type key"), "{e}");
        let e = check_err("root:\n  sequence:\n    - navigate_to: {target: [1, 2]}\n");
        assert!(e.contains("parameter 'target': must be text, a number or a bool"), "{e}");
        let e = check_err("- just\n- a list\n");
        assert!(e.contains("a tree file is a map"), "{e}");
    }
}
