//! Pictures of trees: Graphviz DOT and Mermaid flowcharts.

use crate::tree::{Node, Tree};

fn label(node: &Node) -> String {
    let mut s = node.id.clone();
    if let Some(n) = &node.name {
        s = format!("{n}\\n({s})");
    }
    for (k, v) in node.attrs.iter().take(4) {
        s.push_str(&format!("\\n{k}={v}"));
    }
    s
}

fn shape(node: &Node) -> &'static str {
    match node.children.len() {
        0 => "box",
        1 => "diamond",
        _ => "ellipse",
    }
}

/// Graphviz DOT: one cluster per tree of the document.
pub fn to_dot(tree: &Tree) -> String {
    fn esc(s: &str) -> String {
        s.replace('"', "\\\"")
    }
    fn walk(node: &Node, id: &mut usize, out: &mut String) -> usize {
        let me = *id;
        *id += 1;
        out.push_str(&format!("    n{me} [label=\"{}\", shape={}];\n", esc(&label(node)), shape(node)));
        for c in &node.children {
            let cid = walk(c, id, out);
            out.push_str(&format!("    n{me} -> n{cid};\n"));
        }
        me
    }
    let mut out = format!("digraph \"{}\" {{\n  node [fontname=\"Helvetica\"];\n", esc(&tree.name));
    let mut id = 0;
    for (i, t) in tree.trees.iter().enumerate() {
        out.push_str(&format!(
            "  subgraph cluster_{i} {{\n    label=\"{}\";\n",
            esc(t.id.as_deref().unwrap_or(&tree.name))
        ));
        walk(&t.root, &mut id, &mut out);
        out.push_str("  }\n");
    }
    out.push_str("}\n");
    out
}

/// Mermaid flowchart (renders in GitHub and GitLab markdown).
pub fn to_mermaid(tree: &Tree) -> String {
    fn esc(s: &str) -> String {
        s.replace('"', "#quot;").replace("\\n", "<br/>")
    }
    fn walk(node: &Node, id: &mut usize, out: &mut String) -> usize {
        let me = *id;
        *id += 1;
        let l = esc(&label(node));
        let shaped = match node.children.len() {
            0 => format!("n{me}[\"{l}\"]"),
            1 => format!("n{me}{{\"{l}\"}}"),
            _ => format!("n{me}([\"{l}\"])"),
        };
        out.push_str(&format!("    {shaped}\n"));
        for c in &node.children {
            let cid = walk(c, id, out);
            out.push_str(&format!("    n{me} --> n{cid}\n"));
        }
        me
    }
    let mut out = String::from("flowchart TD\n");
    let mut id = 0;
    for (i, t) in tree.trees.iter().enumerate() {
        out.push_str(&format!("  subgraph t{i}[\"{}\"]\n", esc(t.id.as_deref().unwrap_or(&tree.name))));
        walk(&t.root, &mut id, &mut out);
        out.push_str("  end\n");
    }
    out
}
