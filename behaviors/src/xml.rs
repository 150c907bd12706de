//! BehaviorTree.CPP XML: import (v4, and v3 read too) and export (v4).
//!
//! Import is as lenient as BT.CPP's own parser (tinyxml2): raw `&`, `<` and `>` inside
//! attribute values (as in BT.CPP's scripting example) are accepted. `<include path=.../>` is
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

/// Makes text that tinyxml2 accepts acceptable to a strict XML parser without moving any
/// line: escapes `&` that does not start an entity, and `<`/`>` inside attribute values.
/// Works on bytes (every character it looks at is ASCII) and copies untouched runs whole.
pub fn sanitize(text: &str) -> String {
    let b = text.as_bytes();
    let n = b.len();
    let mut out: Vec<u8> = Vec::with_capacity(n + 16);
    let (mut i, mut run) = (0, 0);
    let mut in_tag = false;
    let mut quote: Option<u8> = None;
    let emit = |out: &mut Vec<u8>, run: &mut usize, at: usize, replacement: &[u8], skip: usize| {
        out.extend_from_slice(&b[*run..at]);
        out.extend_from_slice(replacement);
        *run = at + skip;
    };
    while i < n {
        match (b[i], quote) {
            (b'<', None) if !in_tag => {
                // Comments, CDATA and processing instructions pass through untouched.
                let special = [(&b"<!--"[..], &b"-->"[..]), (b"<![CDATA[", b"]]>"), (b"<?", b"?>")]
                    .into_iter()
                    .find(|(open, _)| b[i..].starts_with(open));
                match special {
                    Some((open, close)) => {
                        let from = i + open.len();
                        i = b[from..]
                            .windows(close.len())
                            .position(|w| w == close)
                            .map_or(n, |p| from + p + close.len());
                        continue;
                    }
                    None => in_tag = true,
                }
            }
            (b'>', None) => in_tag = false,
            (b'"' | b'\'', None) if in_tag => quote = Some(b[i]),
            (c, Some(q)) if c == q => quote = None,
            (b'<', Some(_)) => emit(&mut out, &mut run, i, b"&lt;", 1),
            (b'>', Some(_)) => emit(&mut out, &mut run, i, b"&gt;", 1),
            (b'&', _) => {
                let rest = &b[i + 1..n.min(i + 12)];
                let entity = rest.iter().position(|c| *c == b';').is_some_and(|e| {
                    let name = &rest[..e];
                    e > 0
                        && ([&b"amp"[..], b"lt", b"gt", b"quot", b"apos"].contains(&name)
                            || (name[0] == b'#'
                                && name.len() > 1
                                && name[1..].iter().all(|c| c.is_ascii_hexdigit() || *c == b'x')))
                });
                if !entity {
                    emit(&mut out, &mut run, i, b"&amp;", 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    out.extend_from_slice(&b[run..]);
    // Only ASCII bytes were inserted or replaced, at ASCII positions: still UTF-8.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
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

type Includes = Vec<(String, u32)>;

fn parse_doc(text: &str, source: &str) -> Result<(Tree, Includes), TreeError> {
    let clean = sanitize(text);
    let doc = roxmltree::Document::parse(&clean).map_err(|e| {
        let pos = e.pos();
        TreeError::Syntax {
            source_name: source.into(),
            line: pos.row as usize,
            column: pos.col as usize,
            message: e.to_string(),
        }
    })?;
    let lines = Lines::new(&clean);
    let line_of = |n: roxmltree::Node| lines.line(n.range().start);
    let root = doc.root_element();
    let invalid = |n: roxmltree::Node, tree: &str, message: String| TreeError::Invalid {
        source_name: source.into(),
        tree: tree.into(),
        node: n.tag_name().name().into(),
        line: Some(line_of(n)),
        message,
    };
    if root.tag_name().name() != "root" {
        return Err(invalid(root, "", format!("the top element must be <root>, got <{}>", root.tag_name().name())));
    }
    let v3 = match root.attribute("BTCPP_format") {
        Some("4") => false,
        Some("3") | None => true,
        Some(other) => return Err(invalid(root, "", format!("BTCPP_format=\"{other}\" is not supported (3 or 4)"))),
    };
    let mut tree = Tree {
        name: String::new(),
        goal: None,
        main_tree: root.attribute("main_tree_to_execute").map(str::to_string),
        trees: Vec::new(),
        models: Vec::new(),
    };
    let mut includes = Vec::new();
    for el in root.children().filter(|n| n.is_element()) {
        match el.tag_name().name() {
            "BehaviorTree" => {
                let id = el.attribute("ID").map(str::to_string);
                let tname = id.clone().unwrap_or_default();
                let kids: Vec<_> = el.children().filter(|n| n.is_element()).collect();
                let [top] = kids.as_slice() else {
                    return Err(invalid(
                        el,
                        &tname,
                        format!("<BehaviorTree> must have exactly one root node, found {}", kids.len()),
                    ));
                };
                tree.trees.push(TreeDef { id, root: element_to_node(*top, v3, &line_of, 0, source)?, file: None });
            }
            "TreeNodesModel" => {
                for m in el.children().filter(|n| n.is_element()) {
                    let category = match m.tag_name().name() {
                        "Action" => Category::Action,
                        "Condition" => Category::Condition,
                        "Control" => Category::Control,
                        "Decorator" => Category::Decorator,
                        "SubTree" => Category::SubTree,
                        other => return Err(invalid(m, "", format!("unknown model kind <{other}> in TreeNodesModel"))),
                    };
                    let id = m.attribute("ID").ok_or_else(|| invalid(m, "", "a node model needs an ID".into()))?;
                    let mut ports = Vec::new();
                    for p in m.children().filter(|n| n.is_element()) {
                        let dir = match p.tag_name().name() {
                            "input_port" => PortDir::Input,
                            "output_port" => PortDir::Output,
                            "inout_port" => PortDir::Inout,
                            _ => continue,
                        };
                        let name = p.attribute("name").ok_or_else(|| invalid(p, "", "a port needs a name".into()))?;
                        let desc = p.text().map(|t| t.trim().to_string()).unwrap_or_default();
                        ports.push((dir, name.to_string(), p.attribute("default").map(str::to_string), desc));
                    }
                    tree.models.push(NodeModel { category, id: id.to_string(), ports });
                }
            }
            "include" => {
                let path = el.attribute("path").ok_or_else(|| invalid(el, "", "<include> needs a 'path'".into()))?;
                includes.push((path.to_string(), line_of(el)));
            }
            other => {
                return Err(invalid(
                    el,
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

fn element_to_node(
    el: roxmltree::Node,
    v3: bool,
    line_of: &dyn Fn(roxmltree::Node) -> u32,
    depth: usize,
    source: &str,
) -> Result<Node, TreeError> {
    let tag = el.tag_name().name();
    if depth > MAX_DEPTH {
        return Err(TreeError::Invalid {
            source_name: source.into(),
            tree: String::new(),
            node: tag.into(),
            line: Some(line_of(el)),
            message: format!("tree nested more than {MAX_DEPTH} levels deep"),
        });
    }
    let generic_form = matches!(tag, "Action" | "Condition" | "Control" | "Decorator") && el.attribute("ID").is_some();
    let mut id = if generic_form { el.attribute("ID").unwrap_or(tag).to_string() } else { tag.to_string() };
    if !crate::tree::is_name(&id) {
        return Err(TreeError::Invalid {
            source_name: source.into(),
            tree: String::new(),
            node: tag.into(),
            line: Some(line_of(el)),
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
    let mut node = Node { id, name: None, attrs: Vec::new(), children: Vec::new(), line: Some(line_of(el)) };
    for a in el.attributes() {
        let (k, v) = (a.name(), a.value());
        match k {
            "name" => node.name = Some(v.to_string()),
            "ID" if generic_form => {}
            "__shared_blackboard" if node.id == "SubTree" => node.attrs.push(("_autoremap".into(), v.to_string())),
            "__autoremap" if node.id == "SubTree" => node.attrs.push(("_autoremap".into(), v.to_string())),
            "success_threshold" if v3 && node.id == "Parallel" => {
                node.attrs.push(("success_count".into(), v.to_string()))
            }
            "failure_threshold" if v3 && node.id == "Parallel" => {
                node.attrs.push(("failure_count".into(), v.to_string()))
            }
            _ => node.attrs.push((k.to_string(), v.to_string())),
        }
    }
    for c in el.children().filter(|n| n.is_element()) {
        node.children.push(element_to_node(c, v3, line_of, depth + 1, source)?);
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
    fn sanitize_keeps_lines_and_escapes_attribute_values() {
        let raw = "<root>\n<Precondition if=\"A>-B && color != BLUE\" else='x<y'>\n<!-- a && b < c -->\n</Precondition></root>";
        let s = sanitize(raw);
        assert_eq!(s.lines().count(), raw.lines().count());
        assert!(s.contains("if=\"A&gt;-B &amp;&amp; color != BLUE\""), "{s}");
        assert!(s.contains("else='x&lt;y'"), "{s}");
        assert!(s.contains("<!-- a && b < c -->"), "{s}");
        assert_eq!(sanitize("<a b=\"&amp; &#10;\"/>"), "<a b=\"&amp; &#10;\"/>");
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
