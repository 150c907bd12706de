//! BehaviorTree.CPP's FileLogger2 format (`.btlog`), which Groot2 opens to replay a run:
//!
//! | bytes | what |
//! |---|---|
//! | 18 | `BTCPP4-FileLogger2` |
//! | 1 | protocol, 1 |
//! | 4 | length N of the XML, little-endian i32 |
//! | N | the tree as BT.CPP v4 XML, every node of the main tree with its `_uid` |
//! | 8 | first timestamp, microseconds, little-endian i64 (arbor writes sim time: 0) |
//! | 9 each | transition: 6 bytes timestamp (us since the first), 2 bytes node uid, 1 byte status |
//!
//! Statuses are BT.CPP's: 0 idle, 1 running, 2 success, 3 failure, 4 skipped. Uids number the
//! nodes depth-first from 1, which is the order of arbor's executor arena.

use crate::record::TickEvent;
use crate::recording::Recording;
use crate::{NodeStatus, xml, yaml};

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
    if tree.trees.len() > 1 {
        return Err(err(
            "the tree has subtrees; Groot2 logs of trees with subtrees are not written yet (arbor's arena expands them, Groot2 expects them apart)".into(),
        ));
    }
    // Groot2 needs the tree's ID.
    if let Some(t) = tree.trees.first_mut()
        && t.id.is_none()
    {
        t.id = Some(if tree.name.is_empty() { "MainTree".into() } else { tree.name.clone() });
        tree.main_tree = t.id.clone();
    }
    let xml = xml::to_xml_with_uids(&tree);
    let elements = xml.matches(" _uid=\"").count();
    if elements != rec.tree.nodes.len() {
        return Err(err(format!(
            "the tree's XML has {elements} nodes but the recording's node table has {}",
            rec.tree.nodes.len()
        )));
    }
    let uid: std::collections::HashMap<&str, u16> =
        rec.tree.nodes.iter().enumerate().map(|(i, n)| (n.path.as_str(), (i + 1) as u16)).collect();
    let mut out = Vec::with_capacity(xml.len() + 64 + 9 * rec.transitions().count());
    out.extend_from_slice(MAGIC);
    out.push(PROTOCOL);
    out.extend_from_slice(&(xml.len() as i32).to_le_bytes());
    out.extend_from_slice(xml.as_bytes());
    out.extend_from_slice(&0i64.to_le_bytes());
    let all = rec.frames.iter().flat_map(|f| f.records.iter()).chain(rec.closing_records.iter());
    for r in all {
        let TickEvent::Transition { node, to, .. } = &r.event else { continue };
        let Some(&u) = uid.get(node.as_str()) else {
            return Err(err(format!("tick {}: transition of node '{node}', which the tree does not have", r.tick)));
        };
        out.extend_from_slice(&r.t_us.to_le_bytes()[..6]);
        out.extend_from_slice(&u.to_le_bytes());
        out.push(code(*to));
    }
    Ok(out)
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
