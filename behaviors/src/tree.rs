//! The tree model, independent of file format and engine, and the checks every tree passes
//! before its first tick.
//!
//! A [`Tree`] is a document: one or more behavior trees (the main one and its subtrees), as in
//! a BehaviorTree.CPP XML file. A [`Node`] keeps its type ID, instance name, attributes (ports
//! and pre/post conditions, as text, in file order) and children. Checking resolves each node
//! against the [`NodeLibrary`] and reports every problem with the tree, the node path and, for
//! XML, the line.

use crate::library::{
    Category, Children, Implementation, NodeLibrary, PASSTHROUGH_ATTRS, POST_CONDITIONS, PRE_CONDITIONS, PortDir,
    PortSpec,
};
use crate::script::Script;
use crate::skill::{ParamSpec, ParamType, Vocabulary, check_param_value, parse_text};
use std::collections::BTreeSet;
use std::fmt;

/// One node of a tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The node type: a built-in ID (`Sequence`), a skill (`navigate_to`), a subtree reference
    /// (`SubTree`), or a foreign ID loaded leniently.
    pub id: String,
    /// An optional instance name.
    pub name: Option<String>,
    /// Ports, remappings and pre/post conditions, as written, in file order.
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Node>,
    /// 1-based line in the source file (XML), when known.
    pub line: Option<u32>,
}

impl Node {
    pub fn new(id: &str) -> Self {
        Self { id: id.into(), name: None, attrs: Vec::new(), children: Vec::new(), line: None }
    }

    pub fn with_attr(mut self, k: &str, v: &str) -> Self {
        self.attrs.push((k.into(), v.into()));
        self
    }

    pub fn with_children(mut self, children: Vec<Node>) -> Self {
        self.children = children;
        self
    }

    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Number of nodes in this subtree.
    pub fn size(&self) -> usize {
        1 + self.children.iter().map(Node::size).sum::<usize>()
    }

    /// Comparison that ignores source lines (for round-trip checks).
    pub fn same_as(&self, other: &Node) -> bool {
        self.id == other.id
            && self.name == other.name
            && self.attrs == other.attrs
            && self.children.len() == other.children.len()
            && self.children.iter().zip(&other.children).all(|(a, b)| a.same_as(b))
    }
}

/// One behavior tree of a document.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeDef {
    /// The `BehaviorTree ID`; may be absent in a single-tree file.
    pub id: Option<String>,
    pub root: Node,
    /// The file this tree came from when it is not the document's own (an `<include>`), so
    /// that errors name the right file and line.
    pub file: Option<String>,
}

/// A node type declared by the document itself (BT.CPP's `TreeNodesModel`).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeModel {
    pub category: Category,
    pub id: String,
    /// (direction, name, default, description)
    pub ports: Vec<(PortDir, String, Option<String>, String)>,
}

/// A document of one or more trees.
#[derive(Debug, Clone, PartialEq)]
pub struct Tree {
    /// Document name (arbor YAML `name`; the file stem for XML).
    pub name: String,
    /// The goal in plain language this tree was written or generated for.
    pub goal: Option<String>,
    /// The tree to execute, if named (`main_tree_to_execute`, YAML `main_tree`).
    pub main_tree: Option<String>,
    pub trees: Vec<TreeDef>,
    pub models: Vec<NodeModel>,
}

impl Tree {
    /// A document holding a single anonymous tree.
    pub fn single(name: &str, goal: Option<String>, root: Node) -> Self {
        Self {
            name: name.into(),
            goal,
            main_tree: None,
            trees: vec![TreeDef { id: None, root, file: None }],
            models: Vec::new(),
        }
    }

    /// The tree to execute: `main_tree` if given, else the first.
    pub fn main(&self) -> Option<&TreeDef> {
        match &self.main_tree {
            Some(id) => self.find(id),
            None => self.trees.first(),
        }
    }

    pub fn find(&self, id: &str) -> Option<&TreeDef> {
        self.trees.iter().find(|t| t.id.as_deref() == Some(id))
    }

    /// Nodes in all trees.
    pub fn size(&self) -> usize {
        self.trees.iter().map(|t| t.root.size()).sum()
    }

    /// Comparison that ignores source lines.
    pub fn same_as(&self, other: &Tree) -> bool {
        self.main_tree == other.main_tree
            && self.trees.len() == other.trees.len()
            && self.trees.iter().zip(&other.trees).all(|(a, b)| a.id == b.id && a.root.same_as(&b.root))
            && self.models == other.models
    }

    /// Adds the document's own node declarations to a library.
    pub fn declare_models(&self, lib: &mut NodeLibrary) {
        for m in &self.models {
            let ports = m
                .ports
                .iter()
                .map(|(dir, name, default, description)| PortSpec {
                    name: name.clone(),
                    dir: *dir,
                    ty: ParamType::Text { max_len: usize::MAX },
                    required: false,
                    default: default.clone(),
                    description: description.clone(),
                })
                .collect();
            lib.declare(&m.id, m.category, ports);
        }
    }

    /// Checks the document against the node library (and, if given, the names the world
    /// knows). `lenient` loads undeclared nodes as generic ones, keeping their ports.
    pub fn check(
        &self,
        source: &str,
        lib: &NodeLibrary,
        vocab: Option<&Vocabulary>,
        lenient: bool,
    ) -> Result<CheckedTree, TreeError> {
        self.clone().into_checked(source, lib, vocab, lenient)
    }

    /// As [`Tree::check`], taking the tree (no copy).
    pub fn into_checked(
        self,
        source: &str,
        lib: &NodeLibrary,
        vocab: Option<&Vocabulary>,
        lenient: bool,
    ) -> Result<CheckedTree, TreeError> {
        let mut lib = lib.clone();
        self.declare_models(&mut lib);
        let ids: Vec<&str> = self.trees.iter().filter_map(|t| t.id.as_deref()).collect();
        let mut seen = BTreeSet::new();
        for (i, t) in self.trees.iter().enumerate() {
            if let Some(id) = &t.id
                && !seen.insert(id.as_str())
            {
                return Err(TreeError::Invalid {
                    source_name: source.into(),
                    tree: id.clone(),
                    node: String::new(),
                    line: t.root.line,
                    message: format!("tree ID '{id}' is defined twice (tree #{})", i + 1),
                });
            }
        }
        let main_id = self.main().map(|m| m.id.clone()).ok_or_else(|| TreeError::File {
            source_name: source.into(),
            message: match &self.main_tree {
                Some(m) => format!("main tree '{m}' is not defined (trees: {})", ids.join(", ")),
                None => "the document has no tree".into(),
            },
        })?;
        let mut cx = CheckCx { source, lib: &lib, vocab, lenient, ids: &ids, warnings: Vec::new() };
        for t in &self.trees {
            cx.source = t.file.as_deref().unwrap_or(source);
            let tree_name = t.id.clone().unwrap_or_default();
            let mut path = lib.yaml_name(&t.root.id).to_string();
            cx.node(&t.root, &tree_name, &mut path)?;
        }
        // Subtree references must not form a cycle, starting from any tree.
        for t in &self.trees {
            let mut stack = vec![t.id.clone().unwrap_or_default()];
            self.no_cycles(&t.root, &mut stack, source, &lib)?;
        }
        let warnings = cx.warnings;
        Ok(CheckedTree { tree: self, lib, warnings, main: main_id })
    }

    fn no_cycles(
        &self,
        node: &Node,
        stack: &mut Vec<String>,
        source: &str,
        lib: &NodeLibrary,
    ) -> Result<(), TreeError> {
        if let Some(target) = subtree_target(node, lib, self) {
            if stack.iter().any(|s| s == target) {
                let mut chain = stack.clone();
                chain.push(target.to_string());
                return Err(TreeError::Invalid {
                    source_name: source.into(),
                    tree: stack[0].clone(),
                    node: node.id.clone(),
                    line: node.line,
                    message: format!("recursive subtree: {}", chain.join(" -> ")),
                });
            }
            if let Some(def) = self.find(target) {
                stack.push(target.to_string());
                self.no_cycles(&def.root, stack, source, lib)?;
                stack.pop();
            }
        }
        for c in &node.children {
            self.no_cycles(c, stack, source, lib)?;
        }
        Ok(())
    }
}

/// The tree a node refers to, if it is a subtree reference: `<SubTree ID="X">`, or a node
/// whose type is a tree of the document (`<X/>`).
pub fn subtree_target<'a>(node: &'a Node, lib: &NodeLibrary, doc: &Tree) -> Option<&'a str> {
    if node.id == "SubTree" {
        return node.attr("ID");
    }
    if lib.get(&node.id).is_none() && doc.find(&node.id).is_some() {
        return Some(&node.id);
    }
    None
}

/// A document that passed [`Tree::check`]: the only kind the executor accepts. Carries the
/// library it was checked against (with the document's own declarations).
#[derive(Debug, Clone)]
pub struct CheckedTree {
    tree: Tree,
    lib: NodeLibrary,
    main: Option<String>,
    /// What lenient loading let through (undeclared nodes), one line each.
    pub warnings: Vec<String>,
}

impl CheckedTree {
    pub fn tree(&self) -> &Tree {
        &self.tree
    }
    pub fn library(&self) -> &NodeLibrary {
        &self.lib
    }
    /// The ID of the tree to execute (`None` for a single anonymous tree).
    pub fn main_id(&self) -> Option<&str> {
        self.main.as_deref()
    }
}

impl fmt::Display for CheckedTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} trees, {} nodes)", self.tree.name, self.tree.trees.len(), self.tree.size())
    }
}

struct CheckCx<'a> {
    source: &'a str,
    lib: &'a NodeLibrary,
    vocab: Option<&'a Vocabulary>,
    lenient: bool,
    ids: &'a [&'a str],
    warnings: Vec<String>,
}

/// Names that BT.CPP XML can carry as element and attribute names (node types, ports).
pub fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Whether a port value is a blackboard reference `{key}`; returns the key.
pub fn blackboard_ref(value: &str) -> Option<&str> {
    let v = value.trim();
    let inner = v.strip_prefix('{')?.strip_suffix('}')?;
    (!inner.is_empty() && !inner.contains(['{', '}'])).then_some(inner)
}

impl CheckCx<'_> {
    fn err(&self, tree: &str, path: &str, node: &Node, message: String) -> TreeError {
        TreeError::Invalid {
            source_name: self.source.into(),
            tree: tree.into(),
            node: path.into(),
            line: node.line,
            message,
        }
    }

    fn node(&mut self, node: &Node, tree: &str, path: &mut String) -> Result<(), TreeError> {
        let spec = self.lib.get(&node.id);
        let doc_tree = spec.is_none() && self.ids.contains(&node.id.as_str());
        let (category, children_rule) = match spec {
            Some(s) => (s.category, s.children),
            None if doc_tree => (Category::SubTree, Children::None),
            None if self.lenient => {
                let cat = match node.children.len() {
                    0 => Category::Action,
                    1 => Category::Decorator,
                    _ => Category::Control,
                };
                self.warnings.push(format!(
                    "{}: {}: undeclared node '{}' loaded as a generic {}",
                    self.source,
                    location(tree, path, node.line),
                    node.id,
                    format!("{cat:?}").to_lowercase()
                ));
                (cat, Children::AtLeast(0))
            }
            None => {
                let hint = suggest(
                    &node.id,
                    self.lib.iter().map(|s| s.id.as_str()).chain(self.lib.iter().filter_map(|s| s.alias)),
                );
                return Err(self.err(
                    tree,
                    path,
                    node,
                    format!(
                        "unknown node type '{}'{hint} (use --lenient to load undeclared nodes as generic ones)",
                        node.id
                    ),
                ));
            }
        };
        if !children_rule.accepts(node.children.len()) {
            return Err(self.err(
                tree,
                path,
                node,
                format!("'{}' takes {}, got {}", node.id, children_rule.describe(), node.children.len()),
            ));
        }
        let is_subtree = category == Category::SubTree;
        if is_subtree {
            let target = if doc_tree { Some(node.id.as_str()) } else { node.attr("ID") };
            match target {
                None => {
                    return Err(self.err(
                        tree,
                        path,
                        node,
                        "SubTree needs an 'ID' attribute naming a tree of this file".into(),
                    ));
                }
                Some(t) if !self.ids.contains(&t) => {
                    return Err(self.err(
                        tree,
                        path,
                        node,
                        format!("subtree '{t}' is not defined in this file (trees: {})", self.ids.join(", ")),
                    ));
                }
                Some(_) => {}
            }
        }
        let generic = spec.is_none_or(|s| s.implementation == Implementation::Declared);
        for (k, v) in &node.attrs {
            if PRE_CONDITIONS.contains(&k.as_str()) || POST_CONDITIONS.contains(&k.as_str()) {
                Script::parse(v).map_err(|e| self.err(tree, path, node, format!("attribute '{k}': {e}")))?;
                continue;
            }
            if PASSTHROUGH_ATTRS.contains(&k.as_str()) || (is_subtree && k == "ID") {
                continue;
            }
            match spec.and_then(|s| s.port(k)) {
                Some(port) => {
                    self.port_value(port, v).map_err(|m| self.err(tree, path, node, m))?;
                    if matches!(port.dir, PortDir::Output) && blackboard_ref(v).is_none() {
                        self.warnings.push(format!(
                            "{}: {}: output port '{}' of '{}' has the literal value '{v}', not a blackboard key: nothing the node writes there can be read",
                            self.source,
                            location(tree, path, node.line),
                            port.name,
                            node.id
                        ));
                    }
                }
                // A subtree's other attributes remap its ports; generic nodes keep theirs.
                None if is_subtree || generic => {}
                None => {
                    let ports: Vec<&str> =
                        spec.map(|s| s.ports.iter().map(|p| p.name.as_str()).collect()).unwrap_or_default();
                    let hint = suggest(k, ports.iter().copied());
                    let known = if ports.is_empty() {
                        "it has none".to_string()
                    } else {
                        format!("ports: {}", ports.join(", "))
                    };
                    return Err(self.err(tree, path, node, format!("'{}' has no port '{k}'{hint} ({known})", node.id)));
                }
            }
        }
        if let Some(s) = spec {
            for p in s.ports.iter().filter(|p| p.required) {
                if node.attr(&p.name).is_none() {
                    return Err(self.err(
                        tree,
                        path,
                        node,
                        format!("missing required port '{}' ({}) of '{}'", p.name, p.ty, node.id),
                    ));
                }
            }
        }
        for (i, c) in node.children.iter().enumerate() {
            let len = path.len();
            push_segment(path, self.lib.yaml_name(&c.id), i);
            self.node(c, tree, path)?;
            path.truncate(len);
        }
        Ok(())
    }

    fn port_value(&self, port: &PortSpec, v: &str) -> Result<(), String> {
        if blackboard_ref(v).is_some() {
            return Ok(());
        }
        if v.trim_start().starts_with('{') {
            return Err(format!("port '{}': '{v}' is not a valid blackboard reference (write '{{key}}')", port.name));
        }
        if matches!(port.dir, PortDir::Output) {
            // BT.CPP loads it (and fails only if the node writes to it); arbor warns.
            return Ok(());
        }
        let spec = ParamSpec {
            name: port.name.clone(),
            ty: port.ty.clone(),
            required: port.required,
            default: None,
            description: String::new(),
        };
        let value = parse_text(&port.ty, v);
        check_param_value(&spec, &value, self.vocab).map_err(|e| e.to_string())
    }
}

/// Appends `/name[i]` to a node path without formatting machinery.
pub fn push_segment(path: &mut String, name: &str, i: usize) {
    path.push('/');
    path.push_str(name);
    path.push('[');
    let mut buf = [0u8; 20];
    let (mut k, mut n) = (buf.len(), i);
    loop {
        k -= 1;
        buf[k] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    path.push_str(std::str::from_utf8(&buf[k..]).unwrap_or("?"));
    path.push(']');
}

fn location(tree: &str, path: &str, line: Option<u32>) -> String {
    let mut s = String::new();
    if let Some(l) = line {
        s.push_str(&format!("line {l}: "));
    }
    if tree.is_empty() {
        s.push_str(&format!("at node '{path}'"));
    } else {
        s.push_str(&format!("tree '{tree}', at node '{path}'"));
    }
    s
}

/// " (did you mean 'X'?)" for the closest known name, if one is close.
fn suggest<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> String {
    let lower = name.to_lowercase();
    known
        .map(|k| (edit_distance(&lower, &k.to_lowercase()), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min()
        .map(|(_, k)| format!(" (did you mean '{k}'?)"))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Everything that can be wrong with a tree: the file, the place in it, and what.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TreeError {
    #[error("{source_name}: line {line}, column {column}: {message}")]
    Syntax { source_name: String, line: usize, column: usize, message: String },
    #[error("{source_name}: {}: {message}", location(tree, node, *line))]
    Invalid { source_name: String, tree: String, node: String, line: Option<u32>, message: String },
    #[error("{source_name}: {message}")]
    File { source_name: String, message: String },
}

impl fmt::Display for Tree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tree '{}' ({} nodes)", self.name, self.size())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_and_refs() {
        assert_eq!(suggest("Sequense", ["Sequence", "Fallback"].into_iter()), " (did you mean 'Sequence'?)");
        assert_eq!(suggest("Zzz", ["Sequence"].into_iter()), "");
        assert_eq!(blackboard_ref(" {goal} "), Some("goal"));
        assert_eq!(blackboard_ref("{}"), None);
        assert_eq!(blackboard_ref("goal"), None);
    }
}
