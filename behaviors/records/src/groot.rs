//! BehaviorTree.CPP's FileLogger2 format (`.btlog`), which Groot2 opens to replay a run:
//!
//! | bytes | what |
//! |---|---|
//! | 18 | `BTCPP4-FileLogger2` |
//! | 1 | protocol, 1 |
//! | 4 | length N of the XML, little-endian i32 |
//! | N | the tree as `WriteTreeToXML(tree, add_metadata, add_builtin_models)` writes it |
//! | 8 | first timestamp, microseconds, little-endian i64 (arbor writes sim time: 0) |
//! | 9 each | transition: 6 bytes timestamp (us since the first), 2 bytes node uid, 1 byte status |
//!
//! The XML is laid out as BT.CPP 4.8.2's logger writes it (checked byte for byte against
//! behaviortreepy's FileLogger in `behaviors/tests/btcpp_conformance.rs`): no XML declaration,
//! `<root BTCPP_format="4">`, four-space indentation, the main tree and then every subtree
//! *instance* as its own `<BehaviorTree ID=.. _fullpath=..>` (uids numbered depth-first through
//! the expanded tree, which is the order of arbor's executor arena), `name` on every node (the
//! node type when it has none), input ports with their defaults filled in, pre- then
//! post-conditions in BT.CPP's enum order, and a `TreeNodesModel` with BT.CPP's built-in models
//! and the library's own, sorted by ID. One thing is not imitated: for nodes with several ports
//! BT.CPP writes them in its `std::unordered_map`'s order; arbor writes defaults first, then the
//! ports in the order of the document (the same for every node with at most one given port).
//! Statuses are BT.CPP's: 0 idle, 1 running, 2 success, 3 failure (a skipped node keeps its
//! status and logs no transition).

use crate::recording::Recording;
use arbor_behaviors::library::{Category, Implementation, NodeLibrary, POST_CONDITIONS, PRE_CONDITIONS, PortDir};
use arbor_behaviors::record::TickEvent;
use arbor_behaviors::skill::ParamType;
use arbor_behaviors::tree::{Node, Tree, subtree_target};
use arbor_behaviors::{NodeStatus, yaml};
use std::fmt::Write as _;

/// BT.CPP 4.8.2's built-in node models, as its logger writes them.
const BUILTIN_MODELS: &str = include_str!("btcpp_builtin_models.xml");

const MAGIC: &[u8] = b"BTCPP4-FileLogger2";
const PROTOCOL: u8 = 1;

#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {message}")]
pub struct BtlogError {
    pub source_name: String,
    pub message: String,
}

fn code(s: NodeStatus) -> u8 {
    match s {
        NodeStatus::Idle => 0,
        NodeStatus::Running => 1,
        NodeStatus::Success => 2,
        NodeStatus::Failure => 3,
        NodeStatus::Skipped => 4,
    }
}

fn status(c: u8) -> Option<NodeStatus> {
    Some(match c {
        0 => NodeStatus::Idle,
        1 => NodeStatus::Running,
        2 => NodeStatus::Success,
        3 => NodeStatus::Failure,
        4 => NodeStatus::Skipped,
        _ => return None,
    })
}

/// Writes the `.btlog` bytes of a recording.
pub fn btlog(rec: &Recording) -> Result<Vec<u8>, BtlogError> {
    let name = rec.path.display().to_string();
    let err = |message: String| BtlogError { source_name: name.clone(), message };
    let mut tree = yaml::parse(&rec.tree.yaml, &name).map_err(|e| err(e.to_string()))?;
    // Groot2 needs the tree's ID.
    if let Some(t) = tree.trees.first_mut()
        && t.id.is_none()
    {
        t.id = Some(if tree.name.is_empty() { "MainTree".into() } else { tree.name.clone() });
        tree.main_tree = t.id.clone();
    }
    // The node types the recording names but the built-in library does not know (the robot's
    // skills) are declared from the recording's node table.
    let mut lib = NodeLibrary::builtin();
    tree.declare_models(&mut lib);
    for n in &rec.tree.nodes {
        if lib.get(&n.id).is_none() && tree.find(&n.id).is_none() {
            lib.declare(&n.id, n.category, Vec::new());
        }
    }
    let (xml, count) = logger_xml(&tree, &lib).map_err(err)?;
    if count != rec.tree.nodes.len() {
        return Err(err(format!(
            "the tree's XML has {count} nodes but the recording's node table has {}",
            rec.tree.nodes.len()
        )));
    }
    let uid: std::collections::HashMap<&str, u16> =
        rec.tree.nodes.iter().enumerate().map(|(i, n)| (n.path.as_str(), (i + 1) as u16)).collect();
    let mut transitions = Vec::new();
    let all = rec.frames.iter().flat_map(|f| f.records.iter()).chain(rec.closing_records.iter());
    for r in all {
        let TickEvent::Transition { node, to, .. } = &r.event else { continue };
        let Some(&u) = uid.get(node.as_str()) else {
            return Err(err(format!("tick {}: transition of node '{node}', which the tree does not have", r.tick)));
        };
        transitions.push((r.t_us, u, *to));
    }
    Ok(encode(&xml, 0, &transitions))
}

/// The `.btlog` bytes of a logger XML, a first timestamp and (us since it, uid, status).
pub fn encode(xml: &str, first_timestamp_us: i64, transitions: &[(u64, u16, NodeStatus)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(xml.len() + 64 + 9 * transitions.len());
    out.extend_from_slice(MAGIC);
    out.push(PROTOCOL);
    out.extend_from_slice(&(xml.len() as i32).to_le_bytes());
    out.extend_from_slice(xml.as_bytes());
    out.extend_from_slice(&first_timestamp_us.to_le_bytes());
    for (us, uid, to) in transitions {
        out.extend_from_slice(&us.to_le_bytes()[..6]);
        out.extend_from_slice(&uid.to_le_bytes());
        out.push(code(*to));
    }
    out
}

/// tinyxml2's attribute escaping, as BT.CPP's logger writes it.
fn escape(s: &str) -> String {
    arbor_behaviors::xml::escape_as(s, true)
}

/// BT.CPP's C++ type name for a port type (what its models print).
fn type_name(ty: &ParamType) -> &'static str {
    match ty {
        ParamType::Number { .. } => "double",
        ParamType::Int { .. } => "int",
        ParamType::Bool => "bool",
        _ => "std::string",
    }
}

struct Instance<'a> {
    id: &'a str,
    fullpath: String,
    /// The XML of the instance's tree, written as the uids are given.
    body: String,
}

struct LoggerXml<'a> {
    doc: &'a Tree,
    lib: &'a NodeLibrary,
    uid: u32,
    instances: Vec<Instance<'a>>,
}

impl<'a> LoggerXml<'a> {
    fn node(&mut self, node: &'a Node, depth: usize, out: &mut String, fullpath: &str) -> Result<(), String> {
        self.uid += 1;
        let uid = self.uid;
        let pad = "    ".repeat(depth);
        let target = subtree_target(node, self.lib, self.doc);
        let tag = if target.is_some() { "SubTree" } else { node.id.as_str() };
        let _ = write!(out, "{pad}<{tag}");
        let mut instance = None;
        if let Some(target) = target {
            let def = self.doc.find(target).ok_or_else(|| format!("subtree '{target}' is not defined"))?;
            let own = match node.name.as_deref() {
                Some(n) if n != target => n.to_string(),
                _ => format!("{target}::{uid}"),
            };
            let path = if fullpath.is_empty() { own } else { format!("{fullpath}/{own}") };
            let _ = write!(out, " ID=\"{}\" _fullpath=\"{}\" _uid=\"{uid}\"", escape(target), escape(&path));
            instance = Some((target, path, &def.root));
        } else {
            let name = node.name.as_deref().unwrap_or(&node.id);
            let _ = write!(out, " name=\"{}\" _uid=\"{uid}\"", escape(name));
            // Input ports the document leaves out, with their defaults.
            if let Some(spec) = self.lib.get(&node.id) {
                for p in &spec.ports {
                    if let (PortDir::Input, Some(d)) = (p.dir, &p.default)
                        && node.attr(&p.name).is_none()
                    {
                        let _ = write!(out, " {}=\"{}\"", p.name, escape(d));
                    }
                }
            }
        }
        let special = |k: &str| {
            k == "ID" || k.starts_with('_') // _autoremap, _uid, _fullpath, _description, conditions
        };
        for (k, v) in &node.attrs {
            if !special(k) {
                let _ = write!(out, " {k}=\"{}\"", escape(v));
            }
        }
        // std::map<PreCond/PostCond>: FAILURE_IF, SUCCESS_IF, SKIP_IF, WHILE_TRUE; ON_HALTED,
        // ON_FAILURE, ON_SUCCESS, ALWAYS.
        let post_order = [POST_CONDITIONS[3], POST_CONDITIONS[1], POST_CONDITIONS[0], POST_CONDITIONS[2]];
        for k in PRE_CONDITIONS.iter().chain(post_order.iter()) {
            if let Some(v) = node.attr(k) {
                let _ = write!(out, " {k}=\"{}\"", escape(v));
            }
        }
        if let Some((id, path, root)) = instance {
            out.push_str("/>\n");
            // The instance's own tree: its uids follow the SubTree node's.
            let slot = self.instances.len();
            self.instances.push(Instance { id, fullpath: path.clone(), body: String::new() });
            let mut body = String::new();
            self.node(root, 2, &mut body, &path)?;
            self.instances[slot].body = body;
            return Ok(());
        }
        if node.children.is_empty() {
            out.push_str("/>\n");
        } else {
            out.push_str(">\n");
            for c in &node.children {
                self.node(c, depth + 1, out, fullpath)?;
            }
            let _ = writeln!(out, "{pad}</{tag}>");
        }
        Ok(())
    }
}

/// The tree as BT.CPP's FileLogger2 writes it (`WriteTreeToXML(tree, true, true)`) and the
/// number of nodes in it (subtrees expanded).
pub fn logger_xml(doc: &Tree, lib: &NodeLibrary) -> Result<(String, usize), String> {
    let main = doc.main().ok_or("the document has no main tree")?;
    let mut w = LoggerXml { doc, lib, uid: 0, instances: Vec::new() };
    let mut body = String::new();
    w.node(&main.root, 2, &mut body, "")?;
    let mut out = String::from("<root BTCPP_format=\"4\">\n");
    let main_id = main.id.as_deref().unwrap_or("MainTree");
    let _ = write!(out, "    <BehaviorTree ID=\"{}\" _fullpath=\"\">\n{body}    </BehaviorTree>\n", escape(main_id));
    for inst in &w.instances {
        let _ = write!(
            out,
            "    <BehaviorTree ID=\"{}\" _fullpath=\"{}\">\n{}    </BehaviorTree>\n",
            escape(inst.id),
            escape(&inst.fullpath),
            inst.body
        );
    }
    // Models: BT.CPP's built-ins and the library's own node types, sorted by ID.
    let mut models: Vec<(String, String)> = Vec::new();
    let mut builtin_ids = std::collections::HashSet::new();
    let mut cur: Option<(String, String)> = None;
    // The file's models follow its header comment.
    let builtin = BUILTIN_MODELS.split_once("-->\n").map_or(BUILTIN_MODELS, |(_, models)| models);
    for line in builtin.lines() {
        if line.starts_with('<') && !line.starts_with("</") {
            if let Some(m) = cur.take() {
                models.push(m);
            }
            let id = line.split("ID=\"").nth(1).and_then(|r| r.split('"').next()).unwrap_or_default().to_string();
            builtin_ids.insert(id.clone());
            cur = Some((id, String::new()));
        }
        if let Some((_, text)) = cur.as_mut() {
            let _ = writeln!(text, "        {line}");
        }
    }
    models.extend(cur);
    for spec in lib.iter() {
        if builtin_ids.contains(&spec.id) || matches!(spec.implementation, Implementation::Builtin(_)) {
            continue;
        }
        let kind = match spec.category {
            Category::SubTree => continue,
            c => c.xml_name(),
        };
        let mut text = format!("        <{kind} ID=\"{}\"", escape(&spec.id));
        if spec.ports.is_empty() {
            text.push_str("/>\n");
        } else {
            text.push_str(">\n");
            for p in &spec.ports {
                let _ = write!(
                    text,
                    "            <{} name=\"{}\" type=\"{}\"",
                    p.dir.xml_name(),
                    escape(&p.name),
                    type_name(&p.ty)
                );
                if let Some(d) = &p.default {
                    let _ = write!(text, " default=\"{}\"", escape(d));
                }
                if p.description.is_empty() {
                    text.push_str("/>\n");
                } else {
                    let _ = writeln!(text, ">{}</{}>", escape(&p.description), p.dir.xml_name());
                }
            }
            let _ = writeln!(text, "        </{kind}>");
        }
        models.push((spec.id.clone(), text));
    }
    models.sort_by(|a, b| a.0.cmp(&b.0));
    out.push_str("    <TreeNodesModel>\n");
    for (_, text) in &models {
        out.push_str(text);
    }
    out.push_str("    </TreeNodesModel>\n</root>\n");
    Ok((out, w.uid as usize))
}

/// A `.btlog` read back: the XML and the transitions (us, uid, status).
#[derive(Debug, Clone, PartialEq)]
pub struct Btlog {
    pub xml: String,
    pub first_timestamp_us: i64,
    pub transitions: Vec<(u64, u16, NodeStatus)>,
}

/// Parses `.btlog` bytes (for checks and tools); errors name the byte offset.
pub fn parse_btlog(bytes: &[u8], source_name: &str) -> Result<Btlog, BtlogError> {
    let err = |message: String| BtlogError { source_name: source_name.to_string(), message };
    let rest =
        bytes.strip_prefix(MAGIC).ok_or_else(|| err("not a FileLogger2 log (no BTCPP4-FileLogger2 header)".into()))?;
    let (&protocol, rest) = rest.split_first().ok_or_else(|| err("ends after the header".into()))?;
    if protocol != PROTOCOL {
        return Err(err(format!("protocol {protocol}, expected {PROTOCOL}")));
    }
    let take = |rest: &[u8], n: usize, what: &str| -> Result<(Vec<u8>, usize), BtlogError> {
        if rest.len() < n {
            Err(err(format!("ends inside the {what} (byte {})", bytes.len() - rest.len())))
        } else {
            Ok((rest[..n].to_vec(), n))
        }
    };
    let (len, _) = take(rest, 4, "XML length")?;
    let n = i32::from_le_bytes([len[0], len[1], len[2], len[3]]);
    let n = usize::try_from(n).map_err(|_| err(format!("negative XML length {n}")))?;
    let rest = &rest[4..];
    let (xml, _) = take(rest, n, "XML")?;
    let xml = String::from_utf8(xml).map_err(|e| err(format!("the XML is not UTF-8: {e}")))?;
    let rest = &rest[n..];
    let (ts, _) = take(rest, 8, "first timestamp")?;
    let mut first = [0u8; 8];
    first.copy_from_slice(&ts);
    let rest = &rest[8..];
    if rest.len() % 9 != 0 {
        return Err(err(format!("{} bytes of transitions is not a multiple of 9", rest.len())));
    }
    let mut transitions = Vec::with_capacity(rest.len() / 9);
    for (i, t) in rest.chunks_exact(9).enumerate() {
        let mut us = [0u8; 8];
        us[..6].copy_from_slice(&t[..6]);
        let s = status(t[8]).ok_or_else(|| err(format!("transition {i}: unknown status {}", t[8])))?;
        transitions.push((u64::from_le_bytes(us), u16::from_le_bytes([t[6], t[7]]), s));
    }
    Ok(Btlog { xml, first_timestamp_us: i64::from_le_bytes(first), transitions })
}
