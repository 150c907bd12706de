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
//! A node is a map with exactly one key naming its type (a built-in's YAML name such as
//! `sequence`, a BT.CPP ID such as `Sequence`, or a skill), plus an optional `name`. The value
//! of a control node is the list of its children (or a map with its ports and `children`); of a
//! decorator, its ports and `child`; of a leaf, its ports (or nothing).
//!
//! Several trees (subtrees) go under `trees:` as `- {id: MainTree, root: ...}` with an optional
//! `main_tree:`; node declarations (BT.CPP's TreeNodesModel) under `models:`.

use crate::library::{Category, Children, NodeLibrary, PortDir};
use crate::tree::{Node, NodeModel, Tree, TreeDef, TreeError, is_name};
use serde_yaml::{Mapping, Value as Y};
use std::path::Path;
use std::sync::OnceLock;

fn builtins() -> &'static NodeLibrary {
    static LIB: OnceLock<NodeLibrary> = OnceLock::new();
    LIB.get_or_init(NodeLibrary::builtin)
}

/// Reads and parses a tree file. Errors name the file and the line or node.
pub fn load_file(path: &Path) -> Result<Tree, TreeError> {
    let source = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| TreeError::File { source_name: source.clone(), message: e.to_string() })?;
    parse(&text, &source)
}

/// Parses tree YAML; `source` names it in errors (a file path, "<planner>", ...).
pub fn parse(text: &str, source: &str) -> Result<Tree, TreeError> {
    // A UTF-8 byte order mark (editors on Windows write one) is not a second document.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let doc: Y = serde_yaml::from_str(text).map_err(|e| syntax(source, &e))?;
    let Y::Mapping(top) = doc else {
        return Err(TreeError::File {
            source_name: source.into(),
            message: "a tree file is a map with 'name' and 'root' (or 'trees')".into(),
        });
    };
    let file_err = |message: String| TreeError::File { source_name: source.into(), message };
    for key in top.keys() {
        match key.as_str() {
            Some("name" | "goal" | "root" | "trees" | "main_tree" | "models") => {}
            _ => {
                return Err(file_err(format!(
                    "unknown top-level key {} (expected name, goal, root, trees, main_tree, models)",
                    show(key)
                )));
            }
        }
    }
    let text_field = |key: &str| -> Result<Option<String>, TreeError> {
        match top.get(key) {
            Some(Y::String(s)) => Ok(Some(s.clone())),
            None | Some(Y::Null) => Ok(None),
            Some(other) => Err(file_err(format!("'{key}' must be text, got {}", show(other)))),
        }
    };
    let name = text_field("name")?.unwrap_or_else(|| "tree".to_string());
    let goal = text_field("goal")?;
    let main_tree = text_field("main_tree")?;
    let trees = match (top.get("root"), top.get("trees")) {
        (Some(_), Some(_)) => {
            return Err(file_err("give either 'root' (one tree) or 'trees' (several), not both".into()));
        }
        (Some(root), None) => vec![TreeDef { id: None, root: parse_node(root, None, "", source)?, file: None }],
        (None, Some(Y::Sequence(list))) => {
            let mut out = Vec::new();
            for (i, t) in list.iter().enumerate() {
                let Y::Mapping(m) = t else {
                    return Err(file_err(format!("trees[{i}] must be a map with 'id' and 'root'")));
                };
                let id = match m.get("id") {
                    Some(Y::String(s)) => Some(s.clone()),
                    None => None,
                    Some(other) => return Err(file_err(format!("trees[{i}].id must be text, got {}", show(other)))),
                };
                if let Some(k) = m.keys().find(|k| !matches!(k.as_str(), Some("id" | "root"))) {
                    return Err(file_err(format!("trees[{i}]: unknown key {} (expected id, root)", show(k))));
                }
                let root = m.get("root").ok_or_else(|| file_err(format!("trees[{i}] has no 'root'")))?;
                out.push(TreeDef {
                    root: parse_node(root, None, id.as_deref().unwrap_or(""), source)?,
                    id,
                    file: None,
                });
            }
            out
        }
        (None, Some(other)) => return Err(file_err(format!("'trees' must be a list, got {}", show(other)))),
        (None, None) => return Err(file_err("missing 'root' (the tree's top node)".into())),
    };
    let models = match top.get("models") {
        None | Some(Y::Null) => Vec::new(),
        Some(v) => parse_models(v).map_err(|m| file_err(format!("models: {m}")))?,
    };
    Ok(Tree { name, goal, main_tree, trees, models })
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

/// A YAML scalar as attribute text.
fn scalar_text(y: &Y) -> Result<String, String> {
    match y {
        Y::Bool(b) => Ok(b.to_string()),
        Y::Number(n) => Ok(n.to_string()),
        Y::String(s) => Ok(s.clone()),
        other => Err(format!("must be text, a number or a bool, got {}", show(other))),
    }
}

fn parse_node(y: &Y, parent: Option<(&str, usize)>, tree: &str, source: &str) -> Result<Node, TreeError> {
    let lib = builtins();
    let path_of = |ty: &str| match parent {
        None => ty.to_string(),
        Some((p, i)) => format!("{p}/{ty}[{i}]"),
    };
    let invalid = |node: String, message: String| TreeError::Invalid {
        source_name: source.into(),
        tree: tree.into(),
        node,
        line: None,
        message,
    };
    let Y::Mapping(map) = y else {
        return Err(invalid(
            path_of("?"),
            format!("a node is a map like '{{skill_name: {{port: value}}}}', got {}", show(y)),
        ));
    };
    let mut name = None;
    let mut ty_entry = None;
    for (k, v) in map {
        match k.as_str() {
            Some("name") => match v {
                Y::String(s) => name = Some(s.clone()),
                other => return Err(invalid(path_of("?"), format!("'name' must be text, got {}", show(other)))),
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
            None => return Err(invalid(path_of("?"), format!("node keys are text, got {}", show(k)))),
        }
    }
    let Some((ty_name, body)) = ty_entry else {
        return Err(invalid(path_of("?"), "node has no type key".into()));
    };
    let path = path_of(ty_name);
    if !is_name(ty_name) {
        return Err(invalid(
            path,
            format!("'{ty_name}' is not a valid node type (letters, digits, '_', '-', '.'; not starting with a digit)"),
        ));
    }
    let id = lib.resolve_alias(ty_name).to_string();
    let mut node = Node { id, name, attrs: Vec::new(), children: Vec::new(), line: None };
    let rule = lib.get(&node.id).map(|s| s.children);
    let children_of = |list: &[Y]| -> Result<Vec<Node>, TreeError> {
        list.iter().enumerate().map(|(i, c)| parse_node(c, Some((&path, i)), tree, source)).collect()
    };
    let leaf_rule = matches!(rule, Some(Children::None));
    match body {
        Y::Null => {}
        Y::Sequence(list) if !leaf_rule => node.children = children_of(list)?,
        Y::Sequence(_) => {
            return Err(invalid(
                path.clone(),
                format!("'{ty_name}' is a leaf and takes a map of ports, not a list of children"),
            ));
        }
        Y::Mapping(m) => {
            for (k, v) in m {
                let Some(k) = k.as_str().filter(|k| is_name(k)) else {
                    return Err(invalid(
                        path.clone(),
                        format!("{} is not a valid port name (letters, digits, '_', '-', '.')", show(k)),
                    ));
                };
                match (k, v) {
                    ("children", Y::Sequence(list)) if !leaf_rule => node.children = children_of(list)?,
                    ("child", child @ Y::Mapping(_)) if !leaf_rule => {
                        node.children = vec![parse_node(child, Some((&path, 0)), tree, source)?]
                    }
                    ("name", Y::String(s)) => node.name = Some(s.clone()),
                    (k, v) => {
                        let text = scalar_text(v).map_err(|m| invalid(path.clone(), format!("port '{k}': {m}")))?;
                        node.attrs.push((k.to_string(), text));
                    }
                }
            }
        }
        other => {
            return Err(invalid(
                path.clone(),
                format!("'{ty_name}' takes a map of ports or a list of children, got {}", show(other)),
            ));
        }
    }
    Ok(node)
}

fn parse_models(v: &Y) -> Result<Vec<NodeModel>, String> {
    let Y::Sequence(list) = v else { return Err("must be a list".into()) };
    let mut out = Vec::new();
    for (i, m) in list.iter().enumerate() {
        let get = |k: &str| m.get(k).and_then(Y::as_str);
        let category = match get("category") {
            Some("action") => Category::Action,
            Some("condition") => Category::Condition,
            Some("control") => Category::Control,
            Some("decorator") => Category::Decorator,
            Some("subtree") => Category::SubTree,
            other => {
                return Err(format!(
                    "[{i}].category must be action|condition|control|decorator|subtree, got {other:?}"
                ));
            }
        };
        // Any non-empty text, as BT.CPP's TreeNodesModel (which it does not use to load) and
        // arbor's XML reader accept: an ID that is not a node-type name declares nothing a
        // tree can use, but the document round-trips.
        let id = get("id")
            .filter(|id| !id.trim().is_empty() && !id.chars().any(char::is_control))
            .ok_or_else(|| format!("[{i}] needs a non-empty 'id'"))?
            .to_string();
        let mut ports = Vec::new();
        if let Some(Y::Sequence(ps)) = m.get("ports") {
            for p in ps {
                let name = p
                    .get("name")
                    .and_then(Y::as_str)
                    .ok_or_else(|| format!("[{i}] ({id}): every port needs a 'name'"))?;
                let dir = match p.get("direction").and_then(Y::as_str) {
                    None | Some("input") => PortDir::Input,
                    Some("output") => PortDir::Output,
                    Some("inout") => PortDir::Inout,
                    Some(d) => {
                        return Err(format!("[{i}] ({id}): port '{name}': direction '{d}' (input|output|inout)"));
                    }
                };
                let default = p.get("default").map(scalar_text).transpose()?;
                let description = p.get("description").and_then(Y::as_str).unwrap_or_default().to_string();
                ports.push((dir, name.to_string(), default, description));
            }
        }
        out.push(NodeModel { category, id, ports });
    }
    Ok(out)
}

/// Writes a document in arbor's YAML form. Deterministic: the same tree gives the same bytes.
pub fn to_yaml(tree: &Tree) -> String {
    let mut top = Mapping::new();
    top.insert("name".into(), Y::String(tree.name.clone()));
    if let Some(g) = &tree.goal {
        top.insert("goal".into(), Y::String(g.clone()));
    }
    if let Some(m) = &tree.main_tree {
        top.insert("main_tree".into(), Y::String(m.clone()));
    }
    match tree.trees.as_slice() {
        [single] if single.id.is_none() => {
            top.insert("root".into(), node_to_yaml(&single.root));
        }
        many => {
            let list = many
                .iter()
                .map(|t| {
                    let mut m = Mapping::new();
                    if let Some(id) = &t.id {
                        m.insert("id".into(), Y::String(id.clone()));
                    }
                    m.insert("root".into(), node_to_yaml(&t.root));
                    Y::Mapping(m)
                })
                .collect();
            top.insert("trees".into(), Y::Sequence(list));
        }
    }
    if !tree.models.is_empty() {
        let list = tree
            .models
            .iter()
            .map(|m| {
                let mut y = Mapping::new();
                y.insert("category".into(), Y::String(format!("{:?}", m.category).to_lowercase()));
                y.insert("id".into(), Y::String(m.id.clone()));
                let ports: Vec<Y> = m
                    .ports
                    .iter()
                    .map(|(dir, name, default, description)| {
                        let mut p = Mapping::new();
                        p.insert("name".into(), Y::String(name.clone()));
                        let d = match dir {
                            PortDir::Input => "input",
                            PortDir::Output => "output",
                            PortDir::Inout => "inout",
                        };
                        p.insert("direction".into(), Y::String(d.into()));
                        if let Some(def) = default {
                            p.insert("default".into(), Y::String(def.clone()));
                        }
                        if !description.is_empty() {
                            p.insert("description".into(), Y::String(description.clone()));
                        }
                        Y::Mapping(p)
                    })
                    .collect();
                y.insert("ports".into(), Y::Sequence(ports));
                Y::Mapping(y)
            })
            .collect();
        top.insert("models".into(), Y::Sequence(list));
    }
    // Serialising a Value built from strings, numbers and maps cannot fail.
    serde_yaml::to_string(&Y::Mapping(top)).unwrap_or_default()
}

/// Attribute text as the plainest YAML scalar that reads back as the same text.
fn text_to_yaml(s: &str) -> Y {
    if s == "true" || s == "false" {
        return Y::Bool(s == "true");
    }
    if let Ok(i) = s.parse::<i64>()
        && i.to_string() == s
    {
        return Y::Number(i.into());
    }
    if let Ok(f) = s.parse::<f64>()
        && f.is_finite()
    {
        let n: serde_yaml::Number = f.into();
        if n.to_string() == s {
            return Y::Number(n);
        }
    }
    Y::String(s.to_string())
}

fn node_to_yaml(node: &Node) -> Y {
    let lib = builtins();
    let attrs = || node.attrs.iter().map(|(k, v)| (Y::String(k.clone()), text_to_yaml(v))).collect::<Mapping>();
    let rule = lib.get(&node.id).map(|s| s.children);
    let decorator = matches!(rule, Some(Children::One)) || (rule.is_none() && node.children.len() == 1);
    let body = if node.children.is_empty() {
        if node.attrs.is_empty() { Y::Null } else { Y::Mapping(attrs()) }
    } else if decorator {
        let mut m = attrs();
        m.insert("child".into(), node_to_yaml(&node.children[0]));
        Y::Mapping(m)
    } else if node.attrs.is_empty() {
        Y::Sequence(node.children.iter().map(node_to_yaml).collect())
    } else {
        let mut m = attrs();
        m.insert("children".into(), Y::Sequence(node.children.iter().map(node_to_yaml).collect()));
        Y::Mapping(m)
    };
    let mut m = Mapping::new();
    m.insert(Y::String(lib.yaml_name(&node.id).to_string()), body);
    if let Some(n) = &node.name {
        m.insert("name".into(), Y::String(n.clone()));
    }
    Y::Mapping(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_byte_order_mark_is_not_a_second_document() {
        let t = parse("\u{feff}name: t\nroot:\n  say: {text: hi}\n", "bom.yaml").unwrap();
        assert_eq!(t.name, "t");
        let x = crate::xml::parse(
            "\u{feff}<root BTCPP_format=\"4\"><BehaviorTree ID=\"M\"><AlwaysSuccess/></BehaviorTree></root>",
            "bom.xml",
        );
        assert!(x.is_ok(), "{x:?}");
    }

    #[test]
    fn scalars_round_trip_as_text() {
        for s in ["1", "1.0", "0.30", "-1", "1e3", "true", "abc", "007", "{goal}", "", "3.14"] {
            let y = text_to_yaml(s);
            assert_eq!(scalar_text(&y).unwrap(), s, "{s} -> {y:?}");
            let text = serde_yaml::to_string(&y).unwrap();
            let back: Y = serde_yaml::from_str(&text).unwrap();
            assert_eq!(scalar_text(&back).unwrap(), s, "{s} -> {text}");
        }
    }

    #[test]
    fn aliases_and_ids_are_the_same_node() {
        let a = parse("root:\n  sequence:\n    - always_success:\n", "a").unwrap();
        let b = parse("root:\n  Sequence:\n    - AlwaysSuccess:\n", "b").unwrap();
        assert!(a.same_as(&b));
        assert_eq!(a.trees[0].root.id, "Sequence");
        assert!(to_yaml(&b).contains("sequence:"));
    }

    #[test]
    fn multi_tree_documents_round_trip() {
        let text = "name: doc\nmain_tree: Main\ntrees:\n  - id: Main\n    root:\n      sequence:\n        - subtree: {ID: Sub, target: '{goal}'}\n  - id: Sub\n    root:\n      always_success:\nmodels:\n  - {category: action, id: Foo, ports: [{name: x, direction: output}]}\n";
        let t = parse(text, "doc").unwrap();
        assert_eq!(t.trees.len(), 2);
        assert_eq!(t.main().unwrap().id.as_deref(), Some("Main"));
        assert_eq!(t.models[0].ports[0].0, PortDir::Output);
        let back = parse(&to_yaml(&t), "again").unwrap();
        assert!(back.same_as(&t), "{}", to_yaml(&t));
    }
}
