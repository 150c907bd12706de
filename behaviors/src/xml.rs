//! BehaviorTree.CPP XML: import (v4, and v3 read too) and export (v4).
//!
//! Import is as lenient as BT.CPP's own parser (tinyxml2): a raw `&` or `>` inside attribute
//! values (as in BT.CPP's scripting example) is accepted and kept as written. Reading is
//! streaming (quick-xml), with source lines for every node. `<include path=.../>` is
//! resolved relative to the including file. v3 forms are upgraded on import:
//! `<Action ID="X">` (and Condition/Control/Decorator), `SubTreePlus`, `SequenceStar`,
//! `RetryUntilSuccesful`, Parallel's `success_threshold`/`failure_threshold`,
//! SubTree's `__shared_blackboard`.

use crate::library::{Category, PortDir};
use crate::tree::{Node, NodeModel, Tree, TreeDef, TreeError};
use std::path::{Path, PathBuf};

/// Reads a BT.CPP XML file (and the files it includes).
pub fn load_file(path: &Path) -> Result<Tree, TreeError> {
    let mut stack = Vec::new();
    let mut tree = load_inner(path, &mut stack)?;
    if tree.name.is_empty() {
        tree.name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "tree".into());
    }
    Ok(tree)
}

fn load_inner(path: &Path, stack: &mut Vec<PathBuf>) -> Result<Tree, TreeError> {
    let source = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| TreeError::File { source_name: source.clone(), message: e.to_string() })?;
    let canon = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    if stack.contains(&canon) {
        return Err(TreeError::File { source_name: source, message: "file includes itself (include cycle)".into() });
    }
    stack.push(canon);
    let (mut tree, includes) = parse_doc(&text, &source)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    for (inc, line) in includes {
        let p = dir.join(&inc);
        if !p.is_file() {
            return Err(TreeError::Invalid {
                source_name: source.clone(),
                tree: String::new(),
                node: "include".into(),
                line: Some(line),
                message: format!("included file '{inc}' not found (looked for {})", p.display()),
            });
        }
        let mut sub = load_inner(&p, stack)?;
        for t in &mut sub.trees {
            t.file.get_or_insert_with(|| p.display().to_string());
        }
        tree.trees.extend(sub.trees);
        tree.models.extend(sub.models);
    }
    stack.pop();
    Ok(tree)
}

/// Parses XML text with no includes (an include is an error here: it needs a file path).
pub fn parse(text: &str, source: &str) -> Result<Tree, TreeError> {
    let (tree, includes) = parse_doc(text, source)?;
    if let Some((inc, line)) = includes.first() {
        return Err(TreeError::Invalid {
            source_name: source.into(),
            tree: String::new(),
            node: "include".into(),
            line: Some(*line),
            message: format!("cannot resolve include '{inc}' without a file path"),
        });
    }
    Ok(tree)
}

/// 1-based line of a byte offset, by binary search over line starts (computed once).
struct Lines(Vec<usize>);

impl Lines {
    fn new(text: &str) -> Self {
        Lines(
            std::iter::once(0)
                .chain(text.bytes().enumerate().filter(|(_, c)| *c == b'\n').map(|(i, _)| i + 1))
                .collect(),
        )
    }
    fn line(&self, offset: usize) -> u32 {
        self.0.partition_point(|start| *start <= offset) as u32
    }
}

/// An element as read: name, attributes in order, children, text, source line.
#[derive(Debug, Default)]
struct El {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<El>,
    text: String,
    line: u32,
}

impl El {
    fn attr(&self, k: &str) -> Option<&str> {
        self.attrs.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str())
    }
}

/// Reads the element tree with quick-xml (streaming, no DOM). As lenient as tinyxml2 about
/// attribute values: a raw `&` that is not an entity, or `<`, is kept as written.
fn read_elements(text: &str, source: &str) -> Result<El, TreeError> {
    use quick_xml::events::{BytesStart, Event};
    let lines = Lines::new(text);
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().trim_text(true);
    let syntax = |offset: u64, message: String| {
        let offset = offset as usize;
        let line = lines.line(offset);
        let line_start = lines.0.get(line.saturating_sub(1) as usize).copied().unwrap_or(0);
        TreeError::Syntax {
            source_name: source.into(),
            line: line as usize,
            column: offset.saturating_sub(line_start) + 1,
            message,
        }
    };
    let element = |e: &BytesStart, offset: u64| -> Result<El, TreeError> {
        let mut el = El { name: e.name().as_ref().to_string(), line: lines.line(offset as usize), ..El::default() };
        for a in e.attributes() {
            let a = a.map_err(|err| syntax(offset, format!("in <{}>: {err}", el.name)))?;
            let value = a
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map(|v| v.into_owned())
                .unwrap_or_else(|_| a.value.to_string());
            el.attrs.push((a.key.as_ref().to_string(), value));
        }
        Ok(el)
    };
    let mut stack: Vec<El> = Vec::new();
    let mut top: Option<El> = None;
    loop {
        // Skipped whitespace lies between the last event and this one's '<'.
        let last = reader.buffer_position() as usize;
        let offset =
            (last + text.as_bytes().get(last..).and_then(|b| b.iter().position(|c| *c == b'<')).unwrap_or(0)) as u64;
        let event = reader.read_event().map_err(|e| syntax(reader.error_position(), e.to_string()))?;
        match event {
            Event::Start(e) => stack.push(element(&e, offset)?),
            Event::Empty(e) => {
                let el = element(&e, offset)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None if top.is_none() => top = Some(el),
                    None => return Err(syntax(offset, "more than one top-level element".into())),
                }
            }
            Event::End(_) => {
                let Some(el) = stack.pop() else {
                    return Err(syntax(offset, "closing tag without an opening one".into()));
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None if top.is_none() => top = Some(el),
                    None => return Err(syntax(offset, "more than one top-level element".into())),
                }
            }
            Event::Text(t) => {
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                if let Some(el) = stack.last_mut() {
                    let name = r.to_string();
                    let c = match name.as_str() {
                        "amp" => Some('&'),
                        "lt" => Some('<'),
                        "gt" => Some('>'),
                        "quot" => Some('"'),
                        "apos" => Some('\''),
                        _ => r.resolve_char_ref().ok().flatten(),
                    };
                    match c {
                        Some(c) => el.text.push(c),
                        None => el.text.push_str(&format!("&{name};")),
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if let Some(open) = stack.last() {
        return Err(syntax(
            text.len() as u64,
            format!("the file ends inside <{}> (opened on line {})", open.name, open.line),
        ));
    }
    top.ok_or_else(|| syntax(0, "no XML element in the file".into()))
}

type Includes = Vec<(String, u32)>;

fn parse_doc(text: &str, source: &str) -> Result<(Tree, Includes), TreeError> {
    let root = read_elements(text, source)?;
    let invalid = |el: &El, tree: &str, message: String| TreeError::Invalid {
        source_name: source.into(),
        tree: tree.into(),
        node: el.name.clone(),
        line: Some(el.line),
        message,
    };
    if root.name != "root" {
        return Err(invalid(&root, "", format!("the top element must be <root>, got <{}>", root.name)));
    }
    let v3 = match root.attr("BTCPP_format") {
        Some("4") => false,
        Some("3") | None => true,
        Some(other) => return Err(invalid(&root, "", format!("BTCPP_format=\"{other}\" is not supported (3 or 4)"))),
    };
    let mut tree = Tree {
        name: String::new(),
        goal: None,
        main_tree: root.attr("main_tree_to_execute").map(str::to_string),
        trees: Vec::new(),
        models: Vec::new(),
    };
    let mut includes = Vec::new();
    for el in root.children {
        match el.name.as_str() {
            "BehaviorTree" => {
                let id = el.attr("ID").map(str::to_string);
                let tname = id.clone().unwrap_or_default();
                if el.children.len() != 1 {
                    return Err(invalid(
                        &el,
                        &tname,
                        format!("<BehaviorTree> must have exactly one root node, found {}", el.children.len()),
                    ));
                }
                let Some(top) = el.children.into_iter().next() else { continue };
                tree.trees.push(TreeDef { id, root: element_to_node(top, v3, 0, source)?, file: None });
            }
            "TreeNodesModel" => {
                for m in &el.children {
                    let category = match m.name.as_str() {
                        "Action" => Category::Action,
                        "Condition" => Category::Condition,
                        "Control" => Category::Control,
                        "Decorator" => Category::Decorator,
                        "SubTree" => Category::SubTree,
                        other => return Err(invalid(m, "", format!("unknown model kind <{other}> in TreeNodesModel"))),
                    };
                    let id = m.attr("ID").ok_or_else(|| invalid(m, "", "a node model needs an ID".into()))?;
                    let mut ports = Vec::new();
                    for p in &m.children {
                        let dir = match p.name.as_str() {
                            "input_port" => PortDir::Input,
                            "output_port" => PortDir::Output,
                            "inout_port" => PortDir::Inout,
                            _ => continue,
                        };
                        let name = p.attr("name").ok_or_else(|| invalid(p, "", "a port needs a name".into()))?;
                        ports.push((
                            dir,
                            name.to_string(),
                            p.attr("default").map(str::to_string),
                            p.text.trim().to_string(),
                        ));
                    }
                    tree.models.push(NodeModel { category, id: id.to_string(), ports });
                }
            }
            "include" => {
                let path = el.attr("path").ok_or_else(|| invalid(&el, "", "<include> needs a 'path'".into()))?;
                includes.push((path.to_string(), el.line));
            }
            other => {
                return Err(invalid(
                    &el,
                    "",
                    format!("unexpected <{other}> under <root> (expected BehaviorTree, TreeNodesModel, include)"),
                ));
            }
        }
    }
    if tree.trees.is_empty() && includes.is_empty() && tree.models.is_empty() {
        return Err(TreeError::File { source_name: source.into(), message: "no <BehaviorTree> in the file".into() });
    }
    Ok((tree, includes))
}

/// Deepest nesting of nodes a tree may have.
pub const MAX_DEPTH: usize = 200;

fn element_to_node(mut el: El, v3: bool, depth: usize, source: &str) -> Result<Node, TreeError> {
    let invalid = |message: String| TreeError::Invalid {
        source_name: source.into(),
        tree: String::new(),
        node: el.name.clone(),
        line: Some(el.line),
        message,
    };
    if depth > MAX_DEPTH {
        return Err(invalid(format!("tree nested more than {MAX_DEPTH} levels deep")));
    }
    let generic_form =
        matches!(el.name.as_str(), "Action" | "Condition" | "Control" | "Decorator") && el.attr("ID").is_some();
    let mut id =
        if generic_form { el.attr("ID").unwrap_or_default().to_string() } else { std::mem::take(&mut el.name) };
    if !crate::tree::is_name(&id) {
        return Err(TreeError::Invalid {
            source_name: source.into(),
            tree: String::new(),
            node: id.clone(),
            line: Some(el.line),
            message: format!("'{id}' is not a valid node type (letters, digits, '_', '-', '.')"),
        });
    }
    // v3 names (and a typo BT.CPP v3 shipped) become v4 names.
    match id.as_str() {
        "SubTreePlus" => id = "SubTree".into(),
        "SequenceStar" => id = "SequenceWithMemory".into(),
        "RetryUntilSuccesful" => id = "RetryUntilSuccessful".into(),
        _ => {}
    }
    let mut node = Node {
        id,
        name: None,
        attrs: Vec::with_capacity(el.attrs.len()),
        children: Vec::with_capacity(el.children.len()),
        line: Some(el.line),
    };
    for (k, v) in el.attrs {
        match k.as_str() {
            "name" => node.name = Some(v),
            "ID" if generic_form => {}
            "__shared_blackboard" | "__autoremap" if node.id == "SubTree" => node.attrs.push(("_autoremap".into(), v)),
            "success_threshold" if v3 && node.id == "Parallel" => node.attrs.push(("success_count".into(), v)),
            "failure_threshold" if v3 && node.id == "Parallel" => node.attrs.push(("failure_count".into(), v)),
            _ => node.attrs.push((k, v)),
        }
    }
    for c in el.children {
        node.children.push(element_to_node(c, v3, depth + 1, source)?);
    }
    Ok(node)
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("&#10;"),
            _ => out.push(c),
        }
    }
    out
}

/// Writes BT.CPP v4 XML (`BTCPP_format="4"`), which Groot2 and Nav2 read.
pub fn to_xml(tree: &Tree) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<root BTCPP_format=\"4\"");
    if let Some(m) = &tree.main_tree {
        out.push_str(&format!(" main_tree_to_execute=\"{}\"", escape(m)));
    }
    out.push_str(">\n");
    for t in &tree.trees {
        match &t.id {
            Some(id) => out.push_str(&format!("  <BehaviorTree ID=\"{}\">\n", escape(id))),
            None => out.push_str("  <BehaviorTree>\n"),
        }
        write_node(&t.root, 2, &mut out);
        out.push_str("  </BehaviorTree>\n");
    }
    if !tree.models.is_empty() {
        out.push_str("  <TreeNodesModel>\n");
        for m in &tree.models {
            let kind = m.category.xml_name();
            if m.ports.is_empty() {
                out.push_str(&format!("    <{kind} ID=\"{}\"/>\n", escape(&m.id)));
                continue;
            }
            out.push_str(&format!("    <{kind} ID=\"{}\">\n", escape(&m.id)));
            for (dir, name, default, desc) in &m.ports {
                out.push_str(&format!("      <{} name=\"{}\"", dir.xml_name(), escape(name)));
                if let Some(d) = default {
                    out.push_str(&format!(" default=\"{}\"", escape(d)));
                }
                if desc.is_empty() {
                    out.push_str("/>\n");
                } else {
                    out.push_str(&format!(">{}</{}>\n", escape(desc), dir.xml_name()));
                }
            }
            out.push_str(&format!("    </{kind}>\n"));
        }
        out.push_str("  </TreeNodesModel>\n");
    }
    out.push_str("</root>\n");
    out
}

fn write_node(node: &Node, depth: usize, out: &mut String) {
    let pad = "  ".repeat(depth);
    out.push_str(&format!("{pad}<{}", node.id));
    if let Some(n) = &node.name {
        out.push_str(&format!(" name=\"{}\"", escape(n)));
    }
    for (k, v) in &node.attrs {
        out.push_str(&format!(" {k}=\"{}\"", escape(v)));
    }
    if node.children.is_empty() {
        out.push_str("/>\n");
    } else {
        out.push_str(">\n");
        for c in &node.children {
            write_node(c, depth + 1, out);
        }
        out.push_str(&format!("{pad}</{}>\n", node.id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_about_raw_ampersands_and_angle_brackets_in_attributes() {
        let t = parse(
            "<root BTCPP_format=\"4\">\n<BehaviorTree>\n<Precondition if=\"A>-B && color != BLUE\" else='FAILURE'>\n<!-- a && b < c -->\n<Script code=\"x := 1 &amp; 2\"/></Precondition></BehaviorTree></root>",
            "t.xml",
        )
        .unwrap();
        let pre = &t.trees[0].root;
        assert_eq!(pre.attr("if"), Some("A>-B && color != BLUE"));
        assert_eq!(pre.line, Some(3));
        assert_eq!(pre.children[0].attr("code"), Some("x := 1 & 2"));
    }

    #[test]
    fn v3_forms_are_upgraded() {
        let t = parse(
            "<root main_tree_to_execute=\"M\"><BehaviorTree ID=\"M\"><SequenceStar><Action ID=\"Say\" msg=\"hi\"/><SubTreePlus ID=\"S\" __autoremap=\"true\"/><Parallel success_threshold=\"1\" failure_threshold=\"1\"><A/><B/></Parallel></SequenceStar></BehaviorTree><BehaviorTree ID=\"S\"><AlwaysSuccess/></BehaviorTree></root>",
            "v3.xml",
        )
        .unwrap();
        let root = &t.trees[0].root;
        assert_eq!(root.id, "SequenceWithMemory");
        assert_eq!(root.children[0].id, "Say");
        assert_eq!(root.children[0].attrs, vec![("msg".to_string(), "hi".to_string())]);
        assert_eq!(root.children[1].id, "SubTree");
        assert_eq!(root.children[1].attr("_autoremap"), Some("true"));
        assert_eq!(root.children[2].attr("success_count"), Some("1"));
        assert_eq!(t.main_tree.as_deref(), Some("M"));
    }

    #[test]
    fn export_round_trips() {
        let t = parse(
            "<root BTCPP_format=\"4\"><BehaviorTree ID=\"Main\"><Sequence name=\"s\"><Script code=\"a := 'x&quot;y' \"/><Foo bar=\"1 &lt; 2\"/></Sequence></BehaviorTree><TreeNodesModel><Action ID=\"Foo\"><input_port name=\"bar\" default=\"3\">how much</input_port></Action></TreeNodesModel></root>",
            "t.xml",
        )
        .unwrap();
        let xml = to_xml(&t);
        let back = parse(&xml, "back.xml").unwrap();
        assert!(back.same_as(&t), "{xml}");
        assert_eq!(back.models[0].ports[0].3, "how much");
    }

    #[test]
    fn errors_have_lines() {
        let e = parse("<root BTCPP_format=\"4\">\n<BehaviorTree>\n<Sequence>\n</BehaviorTree>\n</root>", "bad.xml")
            .unwrap_err();
        assert!(e.to_string().starts_with("bad.xml: line 4"), "{e}");
        let e = parse(
            "<root BTCPP_format=\"4\">\n<BehaviorTree ID=\"a\">\n<A/>\n<B/>\n</BehaviorTree>\n</root>",
            "two.xml",
        )
        .unwrap_err();
        assert!(e.to_string().contains("line 2") && e.to_string().contains("exactly one root node"), "{e}");
        let e = parse("<root BTCPP_format=\"4\"><include path=\"x.xml\"/></root>", "inc.xml").unwrap_err();
        assert!(e.to_string().contains("include 'x.xml'"), "{e}");
        let e = parse("<tree/>", "t.xml").unwrap_err();
        assert!(e.to_string().contains("must be <root>"), "{e}");
    }
}
