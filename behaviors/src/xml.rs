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
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
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

/// Counts lines as the reader moves forward (offsets only grow), without a table.
struct LineCounter<'a> {
    text: &'a [u8],
    offset: usize,
    line: u32,
}

impl LineCounter<'_> {
    fn line_at(&mut self, offset: usize) -> u32 {
        let offset = offset.min(self.text.len());
        if offset >= self.offset {
            self.line += self.text[self.offset..offset].iter().filter(|c| **c == b'\n').count() as u32;
        } else {
            self.line = 1 + self.text[..offset].iter().filter(|c| **c == b'\n').count() as u32;
        }
        self.offset = offset;
        self.line
    }
}

/// Attribute name under which element text (port descriptions) is kept while reading.
const TEXT: &str = "#text";

/// Reads the element tree with quick-xml (streaming, no DOM) straight into [`Node`]s (element
/// name as `id`, every attribute kept). As lenient as tinyxml2 about attribute values: a raw
/// `&` that is not an entity is kept as written.
fn read_elements(text: &str, source: &str) -> Result<Node, TreeError> {
    use quick_xml::events::{BytesStart, Event};
    let mut lines = LineCounter { text: text.as_bytes(), offset: 0, line: 1 };
    let mut reader = quick_xml::Reader::from_str(text);
    // Text is kept whole (a port description is trimmed where it is read): trimming each
    // event would eat the spaces around an entity (`all &quot;x&quot; y` -> `all"x"y`).
    reader.config_mut().trim_text(false);
    let syntax = |lines: &mut LineCounter, offset: u64, message: String| {
        let offset = (offset as usize).min(text.len());
        let line = lines.line_at(offset);
        let line_start = text.as_bytes()[..offset].iter().rposition(|c| *c == b'\n').map_or(0, |p| p + 1);
        TreeError::Syntax { source_name: source.into(), line: line as usize, column: offset - line_start + 1, message }
    };
    let element = |lines: &mut LineCounter, e: &BytesStart, offset: u64| -> Result<Node, TreeError> {
        let mut node = Node::new(e.name().as_ref());
        node.line = Some(lines.line_at(offset as usize));
        for a in e.attributes() {
            let a = a.map_err(|err| syntax(lines, offset, format!("in <{}>: {err}", node.id)))?;
            let value = a
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map(|v| v.into_owned())
                .unwrap_or_else(|_| a.value.to_string());
            node.attrs.push((a.key.as_ref().to_string(), value));
        }
        Ok(node)
    };
    let mut stack: Vec<Node> = Vec::new();
    let mut top: Option<Node> = None;
    let bytes = text.as_bytes();
    loop {
        // Skipped whitespace lies between the last event and this one's '<'.
        let last = reader.buffer_position() as usize;
        let offset = (last + bytes.get(last..).and_then(|b| b.iter().position(|c| *c == b'<')).unwrap_or(0)) as u64;
        let event = match reader.read_event() {
            Ok(e) => e,
            Err(e) => return Err(syntax(&mut lines, reader.error_position(), e.to_string())),
        };
        let done = match event {
            Event::Start(e) => {
                stack.push(element(&mut lines, &e, offset)?);
                None
            }
            Event::Empty(e) => Some(element(&mut lines, &e, offset)?),
            Event::End(_) => match stack.pop() {
                Some(n) => Some(n),
                None => return Err(syntax(&mut lines, offset, "closing tag without an opening one".into())),
            },
            Event::Text(t) => {
                if let Some(n) = stack.last_mut() {
                    push_text(n, &t.xml10_content());
                }
                None
            }
            Event::GeneralRef(r) => {
                if let Some(n) = stack.last_mut() {
                    let c = match &*r {
                        "amp" => Some('&'),
                        "lt" => Some('<'),
                        "gt" => Some('>'),
                        "quot" => Some('"'),
                        "apos" => Some('\''),
                        _ => r.resolve_char_ref().ok().flatten(),
                    };
                    match c {
                        Some(c) => push_text(n, c.encode_utf8(&mut [0u8; 4])),
                        None => push_text(n, &format!("&{};", &*r)),
                    }
                }
                None
            }
            Event::Eof => break,
            _ => None,
        };
        if let Some(n) = done {
            match stack.last_mut() {
                Some(parent) => parent.children.push(n),
                None if top.is_none() => top = Some(n),
                None => return Err(syntax(&mut lines, offset, "more than one top-level element".into())),
            }
        }
    }
    if let Some(open) = stack.last() {
        let msg = format!("the file ends inside <{}> (opened on line {})", open.id, open.line.unwrap_or(0));
        return Err(syntax(&mut lines, text.len() as u64, msg));
    }
    top.ok_or_else(|| syntax(&mut lines, 0, "no XML element in the file".into()))
}

fn push_text(n: &mut Node, t: &str) {
    match n.attrs.iter_mut().find(|(k, _)| k == TEXT) {
        Some((_, v)) => v.push_str(t),
        None => n.attrs.push((TEXT.into(), t.to_string())),
    }
}

type Includes = Vec<(String, u32)>;

fn parse_doc(text: &str, source: &str) -> Result<(Tree, Includes), TreeError> {
    let root = read_elements(text, source)?;
    let invalid = |el: &Node, tree: &str, message: String| TreeError::Invalid {
        source_name: source.into(),
        tree: tree.into(),
        node: el.id.clone(),
        line: el.line,
        message,
    };
    if root.id != "root" {
        return Err(invalid(&root, "", format!("the top element must be <root>, got <{}>", root.id)));
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
        match el.id.as_str() {
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
                    let category = match m.id.as_str() {
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
                        let dir = match p.id.as_str() {
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
                            p.attr(TEXT).unwrap_or_default().trim().to_string(),
                        ));
                    }
                    tree.models.push(NodeModel { category, id: id.to_string(), ports });
                }
            }
            "include" => {
                let path = el.attr("path").ok_or_else(|| invalid(&el, "", "<include> needs a 'path'".into()))?;
                includes.push((path.to_string(), el.line.unwrap_or(0)));
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

/// Turns an element as read into a tree node, in place: `<Action ID="X">` forms, v3 names,
/// the `name` attribute, depth and name checks.
fn element_to_node(mut node: Node, v3: bool, depth: usize, source: &str) -> Result<Node, TreeError> {
    let invalid = |node: &Node, message: String| TreeError::Invalid {
        source_name: source.into(),
        tree: String::new(),
        node: node.id.clone(),
        line: node.line,
        message,
    };
    if depth > MAX_DEPTH {
        return Err(invalid(&node, format!("tree nested more than {MAX_DEPTH} levels deep")));
    }
    if matches!(node.id.as_str(), "Action" | "Condition" | "Control" | "Decorator")
        && let Some(pos) = node.attrs.iter().position(|(k, _)| k == "ID")
    {
        node.id = node.attrs.remove(pos).1;
    }
    if !crate::tree::is_name(&node.id) {
        return Err(invalid(&node, format!("'{}' is not a valid node type (letters, digits, '_', '-', '.')", node.id)));
    }
    // v3 names (and a typo BT.CPP v3 shipped) become v4 names.
    match node.id.as_str() {
        "SubTreePlus" => node.id = "SubTree".into(),
        "SequenceStar" => node.id = "SequenceWithMemory".into(),
        "RetryUntilSuccesful" => node.id = "RetryUntilSuccessful".into(),
        _ => {}
    }
    if let Some(pos) = node.attrs.iter().position(|(k, _)| k == "name") {
        node.name = Some(node.attrs.remove(pos).1);
    }
    let (subtree, parallel) = (node.id == "SubTree", v3 && node.id == "Parallel");
    node.attrs.retain(|(k, _)| k != TEXT);
    for (k, _) in &mut node.attrs {
        let renamed = match k.as_str() {
            "__shared_blackboard" | "__autoremap" if subtree => "_autoremap",
            "success_threshold" if parallel => "success_count",
            "failure_threshold" if parallel => "failure_count",
            _ => continue,
        };
        *k = renamed.to_string();
    }
    let children = std::mem::take(&mut node.children);
    node.children.reserve_exact(children.len());
    for c in children {
        node.children.push(element_to_node(c, v3, depth + 1, source)?);
    }
    Ok(node)
}

fn escape(s: &str) -> String {
    escape_as(s, false)
}

/// Escapes text for an XML attribute: `& < > "`, newlines as `&#10;` (so they survive a
/// reader's normalization); `tinyxml2` escapes as BT.CPP's writer does instead (`'` too,
/// newlines as they are).
pub fn escape_as(s: &str, tinyxml2: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' if tinyxml2 => out.push_str("&apos;"),
            '\n' if !tinyxml2 => out.push_str("&#10;"),
            _ => out.push(c),
        }
    }
    out
}

/// Writes BT.CPP v4 XML (`BTCPP_format="4"`), which Groot2 and Nav2 read.
pub fn to_xml(tree: &Tree) -> String {
    to_xml_inner(tree, false)
}

/// As [`to_xml`], with the `_uid` attribute BT.CPP's loggers give every node (1, 2, ... in
/// depth-first order through the main tree), which Groot2 uses to map log transitions onto nodes.
pub fn to_xml_with_uids(tree: &Tree) -> String {
    to_xml_inner(tree, true)
}

fn to_xml_inner(tree: &Tree, uids: bool) -> String {
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
        let main = tree.main().is_some_and(|m| std::ptr::eq(m, t));
        let mut uid = if uids && main { Some(1) } else { None };
        write_node(&t.root, 2, &mut out, &mut uid);
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

fn write_node(node: &Node, depth: usize, out: &mut String, uid: &mut Option<u32>) {
    let pad = "  ".repeat(depth);
    out.push_str(&format!("{pad}<{}", node.id));
    if let Some(u) = uid {
        out.push_str(&format!(" _uid=\"{u}\""));
        *u += 1;
    }
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
            write_node(c, depth + 1, out, uid);
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

    /// What loads is what BT.CPP loads (issue: BT.CPP is the reference for what loads).
    #[test]
    fn loads_what_btcpp_loads_and_refuses_what_it_refuses() {
        let lib = crate::NodeLibrary::builtin();
        let load = |x: &str| parse(x, "t.xml").and_then(|t| t.check("t.xml", &lib, None, false));
        // v3 `<Action ID="Sleep"/>` is the built-in Sleep.
        let c = load("<root main_tree_to_execute=\"M\"><BehaviorTree ID=\"M\"><Sequence><Action ID=\"Sleep\" msec=\"10\"/></Sequence></BehaviorTree></root>").unwrap();
        assert!(crate::Executor::new(&c).is_ok());
        // Element names are case-sensitive: `sequence` is not `Sequence`.
        let e = load("<root BTCPP_format=\"4\"><BehaviorTree ID=\"M\"><sequence><AlwaysSuccess/></sequence></BehaviorTree></root>").unwrap_err();
        assert!(e.to_string().contains("unknown node type 'sequence'"), "{e}");
        // An output port with a literal value loads, with a warning naming the node.
        let c = load("<root BTCPP_format=\"4\"><BehaviorTree ID=\"M\"><Foo out=\"literal\"/></BehaviorTree><TreeNodesModel><Action ID=\"Foo\"><output_port name=\"out\"/></Action></TreeNodesModel></root>").unwrap();
        assert!(c.warnings.iter().any(|w| w.contains("output port 'out'") && w.contains("Foo")), "{:?}", c.warnings);
        // A model ID with spaces loads and survives XML -> YAML -> XML.
        let t = parse("<root BTCPP_format=\"4\"><BehaviorTree ID=\"M\"><AlwaysSuccess/></BehaviorTree><TreeNodesModel><Action ID=\"Foo Bar\"/></TreeNodesModel></root>", "t.xml").unwrap();
        let back = crate::yaml::parse(&crate::yaml::to_yaml(&t), "t.yaml").unwrap();
        assert_eq!(back.models[0].id, "Foo Bar");
        assert!(parse(&to_xml(&back), "back.xml").unwrap().same_as(&t));
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
