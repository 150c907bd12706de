//! ROS 2 message definitions as rosbag2's MCAP storage records them (schema encoding
//! `ros2msg`): the type's `.msg` text, then every type it uses, once each, after a line of 80 `=`
//! and `MSG: pkg/Type`. Read from `share/<pkg>/msg/<Type>.msg` under the ROS prefixes
//! (`$AMENT_PREFIX_PATH`), the files every ROS 2 install (and the PyPI wheels) ship.

#![cfg_attr(not(feature = "ros2"), allow(dead_code, reason = "the ROS 2 node's; tested without ROS"))]

use anyhow::{Context, Result, bail};
use std::collections::BTreeSet;
use std::path::PathBuf;

const BUILTIN: &[&str] = &[
    "bool", "byte", "char", "float32", "float64", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64",
    "uint64", "string", "wstring",
];

/// The ROS prefixes of this process: `$AMENT_PREFIX_PATH`.
pub fn prefixes() -> Vec<PathBuf> {
    std::env::var_os("AMENT_PREFIX_PATH").map(|v| std::env::split_paths(&v).collect()).unwrap_or_default()
}

/// (`sensor_msgs`, `Image`) of `sensor_msgs/msg/Image` or `sensor_msgs/Image`.
fn split(type_name: &str) -> Result<(&str, &str)> {
    let parts: Vec<&str> = type_name.split('/').collect();
    match parts.as_slice() {
        [pkg, "msg", name] | [pkg, name] if !pkg.is_empty() && !name.is_empty() => Ok((pkg, name)),
        _ => bail!("'{type_name}' is not a message type (pkg/msg/Type)"),
    }
}

fn msg_text(pkg: &str, name: &str, prefixes: &[PathBuf]) -> Result<String> {
    let tried: Vec<PathBuf> =
        prefixes.iter().map(|p| p.join("share").join(pkg).join("msg").join(format!("{name}.msg"))).collect();
    let found = tried.iter().find(|p| p.is_file()).with_context(|| {
        format!(
            "no definition of {pkg}/msg/{name} (looked in {})",
            tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        )
    })?;
    std::fs::read_to_string(found).with_context(|| format!("reading {}", found.display()))
}

/// The message types a `.msg` text uses (as `pkg/Type`), in order of first use.
fn used_types(text: &str, pkg: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let mut words = line.split_whitespace();
        let (Some(ty), Some(rest)) = (words.next(), words.next()) else { continue };
        // `TYPE NAME=value` is a constant, of a builtin type.
        if rest.contains('=') {
            continue;
        }
        let base = ty.split('[').next().unwrap_or(ty);
        let base = base.split("<=").next().unwrap_or(base);
        if BUILTIN.contains(&base) {
            continue;
        }
        let full = if base.contains('/') { base.replace("/msg/", "/") } else { format!("{pkg}/{base}") };
        if !out.contains(&full) {
            out.push(full);
        }
    }
    out
}

/// The `ros2msg` definition of `type_name` (`sensor_msgs/msg/Image`).
pub fn definition(type_name: &str, prefixes: &[PathBuf]) -> Result<String> {
    let (pkg, name) = split(type_name)?;
    let top = msg_text(pkg, name, prefixes)?;
    let mut out = top.trim_end().to_string();
    out.push('\n');
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut todo: Vec<String> = used_types(&top, pkg);
    todo.reverse();
    while let Some(t) = todo.pop() {
        if !seen.insert(t.clone()) {
            continue;
        }
        let (p, n) = split(&t)?;
        let text = msg_text(p, n, prefixes)?;
        out.push_str(&"=".repeat(80));
        out.push_str(&format!("\nMSG: {t}\n"));
        out.push_str(text.trim_end());
        out.push('\n');
        let mut more = used_types(&text, p);
        more.reverse();
        todo.extend(more.into_iter().filter(|m| !seen.contains(m)));
    }
    Ok(out)
}

/// The definitions of several types, failing on the first that cannot be found.
pub fn definitions<'a>(types: impl IntoIterator<Item = &'a str>, prefixes: &[PathBuf]) -> Result<Vec<String>> {
    types.into_iter().map(|t| definition(t, prefixes)).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;
    use std::path::Path;

    fn write(root: &Path, pkg: &str, name: &str, text: &str) {
        let d = root.join("share").join(pkg).join("msg");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(format!("{name}.msg")), text).unwrap();
    }

    #[test]
    fn a_definition_carries_its_dependencies_once() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        write(root, "builtin_interfaces", "Time", "int32 sec\nuint32 nanosec\n");
        write(root, "std_msgs", "Header", "builtin_interfaces/Time stamp\nstring frame_id\n");
        write(
            root,
            "sensor_msgs",
            "Image",
            "# a comment\nstd_msgs/Header header # stamp\nuint32 height\nstring encoding\nuint8[] data\nuint8 MAX=3\n",
        );
        write(root, "sensor_msgs", "Pair", "Image a\nImage[2] b\nstd_msgs/msg/Header h\n");
        let d = definition("sensor_msgs/msg/Image", &[root.to_path_buf()]).unwrap();
        let sep = "=".repeat(80);
        assert!(d.starts_with("# a comment\nstd_msgs/Header header"), "{d}");
        assert!(d.contains(&format!("{sep}\nMSG: std_msgs/Header\nbuiltin_interfaces/Time stamp")), "{d}");
        assert!(d.contains(&format!("{sep}\nMSG: builtin_interfaces/Time\nint32 sec")), "{d}");
        let p = definition("sensor_msgs/Pair", &[root.to_path_buf()]).unwrap();
        assert_eq!(p.matches("MSG: sensor_msgs/Image").count(), 1, "{p}");
        assert_eq!(p.matches("MSG: std_msgs/Header").count(), 1, "{p}");
        let e = definition("nav_msgs/msg/Odometry", &[root.to_path_buf()]).unwrap_err();
        assert!(e.to_string().contains("no definition of nav_msgs/msg/Odometry"), "{e}");
        assert!(definition("Odometry", &[]).is_err());
    }
}
