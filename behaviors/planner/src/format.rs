//! The planning format: a compact text form of a tree for a language model to write, one
//! node per call-like term, mapping 1:1 onto arbor's tree model:
//!
//! ```text
//! sequence(navigate_to(target=kitchen), fallback(has_seen(entity=alice), scan()), retry(num_attempts=3, capture_photo(entity=alice)))
//! ```
//!
//! A node is `name(args)`: `name` is a built-in's YAML name or a skill; `key=value` args are
//! ports (values are bare words, numbers or "quoted text"); node args are children, in order.
//! `refuse("reason")` at the top is the model declining the goal.

use arbor_behaviors::tree::{Node, Tree};
use arbor_behaviors::{NodeLibrary, TreeError};

/// What the model wrote: a tree, or a refusal.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    Tree(Tree),
    Refused(String),
}

/// Renders a single-tree document in the planning format (the inverse of [`parse`]).
pub fn render(tree: &Tree, lib: &NodeLibrary) -> Option<String> {
    let [only] = tree.trees.as_slice() else { return None };
    let mut out = String::new();
    render_node(&only.root, lib, &mut out);
    Some(out)
}

fn render_node(node: &Node, lib: &NodeLibrary, out: &mut String) {
    out.push_str(lib.yaml_name(&node.id));
    out.push('(');
    let mut first = true;
    let mut sep = |out: &mut String| {
        if !first {
            out.push_str(", ");
        }
        first = false;
    };
    for (k, v) in &node.attrs {
        sep(out);
        out.push_str(k);
        out.push('=');
        out.push_str(&quote_if_needed(v));
    }
    for c in &node.children {
        sep(out);
        render_node(c, lib, out);
    }
    out.push(')');
}

fn is_word(v: &str) -> bool {
    !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn quote_if_needed(v: &str) -> String {
    if is_word(v) { v.to_string() } else { format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")) }
}

struct P<'a> {
    s: &'a [u8],
    i: usize,
    src: &'a str,
}

impl P<'_> {
    fn err(&self, message: String) -> TreeError {
        TreeError::Syntax {
            source_name: "<plan>".into(),
            line: 1,
            column: self.i + 1,
            message: format!("{message} in plan `{}`", self.src),
        }
    }
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn word(&mut self) -> Option<String> {
        self.ws();
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || matches!(self.s[self.i], b'_' | b'-' | b'.'))
        {
            self.i += 1;
        }
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }
    fn quoted(&mut self) -> Result<String, TreeError> {
        let mut out = Vec::new();
        loop {
            match self.s.get(self.i) {
                None => return Err(self.err("text not closed".into())),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(String::from_utf8_lossy(&out).into_owned());
                }
                Some(b'\\') if self.i + 1 < self.s.len() => {
                    out.push(self.s[self.i + 1]);
                    self.i += 2;
                }
                Some(c) => {
                    out.push(*c);
                    self.i += 1;
                }
            }
        }
    }
    fn node(&mut self, lib: &NodeLibrary, depth: usize) -> Result<Node, TreeError> {
        if depth > 32 {
            return Err(self.err("plan nested too deeply".into()));
        }
        let name = self.word().ok_or_else(|| self.err("expected a node name".into()))?;
        if !self.eat(b'(') {
            return Err(self.err(format!("expected '(' after '{name}'")));
        }
        let mut node = Node::new(lib.resolve_alias(&name));
        if self.eat(b')') {
            return Ok(node);
        }
        loop {
            self.ws();
            let save = self.i;
            let word = self.word().ok_or_else(|| self.err("expected a port or a child node".into()))?;
            if self.eat(b'=') {
                self.ws();
                let value = if self.s.get(self.i) == Some(&b'"') {
                    self.i += 1;
                    self.quoted()?
                } else {
                    self.word().ok_or_else(|| self.err(format!("expected a value for '{word}'")))?
                };
                node.attrs.push((word, value));
            } else {
                self.i = save;
                node.children.push(self.node(lib, depth + 1)?);
            }
            if self.eat(b')') {
                return Ok(node);
            }
            if !self.eat(b',') {
                return Err(self.err("expected ',' or ')'".into()));
            }
        }
    }
}

/// Parses planning text. `goal` and `name` become the document's.
pub fn parse(text: &str, lib: &NodeLibrary, name: &str, goal: Option<&str>) -> Result<Plan, TreeError> {
    let mut p = P { s: text.as_bytes(), i: 0, src: text };
    p.ws();
    if text[p.i..].starts_with("refuse(") {
        p.i += "refuse(".len();
        p.ws();
        let reason = if p.eat(b'"') { p.quoted()? } else { p.word().unwrap_or_default() };
        return Ok(Plan::Refused(reason));
    }
    let root = p.node(lib, 0)?;
    p.ws();
    if p.i < p.s.len() {
        return Err(p.err("unexpected text after the plan".into()));
    }
    Ok(Plan::Tree(Tree::single(name, goal.map(str::to_string), root)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_tree_model() {
        let lib = NodeLibrary::builtin();
        let text = "sequence(navigate_to(target=kitchen), fallback(has_seen(entity=alice), scan()), retry(num_attempts=3, say(text=\"hello, \\\"you\\\"\")))";
        let Plan::Tree(t) = parse(text, &lib, "p", Some("g")).unwrap() else { panic!() };
        assert_eq!(t.trees[0].root.id, "Sequence");
        assert_eq!(t.trees[0].root.children[2].id, "RetryUntilSuccessful");
        assert_eq!(t.trees[0].root.children[2].children[0].attr("text"), Some("hello, \"you\""));
        assert_eq!(render(&t, &lib).unwrap(), text);
        assert_eq!(
            parse("  refuse(\"cannot do that\")", &lib, "p", None).unwrap(),
            Plan::Refused("cannot do that".into())
        );
        assert!(parse("sequence(scan()", &lib, "p", None).is_err());
        assert!(parse("sequence(scan()) extra", &lib, "p", None).is_err());
        assert!(parse(&"sequence(".repeat(100), &lib, "p", None).unwrap_err().to_string().contains("too deeply"));
    }
}
