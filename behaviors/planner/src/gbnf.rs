//! A small GBNF recogniser (the subset the grammar generator writes): literals, character
//! classes, rule references, groups, alternatives, `? * + {m,n}`. It lets tests check what
//! the generated grammar accepts without a model, and lets the planner double-check output.

use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Lit(Vec<char>),
    Class { negated: bool, items: Vec<(char, char)> },
    Rule(String),
    Seq(Vec<Expr>),
    Alt(Vec<Expr>),
    Rep(Box<Expr>, usize, Option<usize>),
}

#[derive(Debug, Clone)]
pub struct Grammar {
    rules: BTreeMap<String, Expr>,
}

struct Lexer<'a> {
    c: Vec<char>,
    i: usize,
    line: &'a str,
}

impl Lexer<'_> {
    fn ws(&mut self) {
        while self.i < self.c.len() && self.c[self.i].is_whitespace() {
            self.i += 1;
        }
    }
    fn err(&self, m: &str) -> String {
        format!("grammar: {m} at column {} of `{}`", self.i + 1, self.line)
    }
    fn escaped(&mut self) -> Result<char, String> {
        let c = *self.c.get(self.i).ok_or_else(|| self.err("dangling escape"))?;
        self.i += 1;
        Ok(match c {
            'n' => '\n',
            't' => '\t',
            'x' => {
                let hex: String = self.c.get(self.i..self.i + 2).ok_or_else(|| self.err("bad \\x"))?.iter().collect();
                self.i += 2;
                char::from_u32(u32::from_str_radix(&hex, 16).map_err(|_| self.err("bad \\x"))?).unwrap_or('\0')
            }
            other => other,
        })
    }
    fn alt(&mut self) -> Result<Expr, String> {
        let mut alts = vec![self.seq()?];
        loop {
            self.ws();
            if self.c.get(self.i) == Some(&'|') {
                self.i += 1;
                alts.push(self.seq()?);
            } else {
                break;
            }
        }
        Ok(if alts.len() == 1 { alts.remove(0) } else { Expr::Alt(alts) })
    }
    fn seq(&mut self) -> Result<Expr, String> {
        let mut items = Vec::new();
        loop {
            self.ws();
            let Some(&c) = self.c.get(self.i) else { break };
            let mut e = match c {
                '"' => {
                    self.i += 1;
                    let mut s = Vec::new();
                    loop {
                        match self.c.get(self.i) {
                            None => return Err(self.err("unclosed literal")),
                            Some('"') => {
                                self.i += 1;
                                break;
                            }
                            Some('\\') => {
                                self.i += 1;
                                s.push(self.escaped()?);
                            }
                            Some(&ch) => {
                                s.push(ch);
                                self.i += 1;
                            }
                        }
                    }
                    Expr::Lit(s)
                }
                '[' => {
                    self.i += 1;
                    let negated = self.c.get(self.i) == Some(&'^');
                    if negated {
                        self.i += 1;
                    }
                    let mut items = Vec::new();
                    loop {
                        let ch = match self.c.get(self.i) {
                            None => return Err(self.err("unclosed class")),
                            Some(']') => {
                                self.i += 1;
                                break;
                            }
                            Some('\\') => {
                                self.i += 1;
                                self.escaped()?
                            }
                            Some(&ch) => {
                                self.i += 1;
                                ch
                            }
                        };
                        if self.c.get(self.i) == Some(&'-') && self.c.get(self.i + 1).is_some_and(|n| *n != ']') {
                            self.i += 1;
                            let hi = if self.c.get(self.i) == Some(&'\\') {
                                self.i += 1;
                                self.escaped()?
                            } else {
                                let h = self.c[self.i];
                                self.i += 1;
                                h
                            };
                            items.push((ch, hi));
                        } else {
                            items.push((ch, ch));
                        }
                    }
                    Expr::Class { negated, items }
                }
                '(' => {
                    self.i += 1;
                    let e = self.alt()?;
                    self.ws();
                    if self.c.get(self.i) != Some(&')') {
                        return Err(self.err("expected ')'"));
                    }
                    self.i += 1;
                    e
                }
                c if c.is_ascii_alphanumeric() || c == '-' || c == '_' => {
                    let start = self.i;
                    while self.i < self.c.len()
                        && (self.c[self.i].is_ascii_alphanumeric() || matches!(self.c[self.i], '-' | '_'))
                    {
                        self.i += 1;
                    }
                    Expr::Rule(self.c[start..self.i].iter().collect())
                }
                _ => break,
            };
            loop {
                match self.c.get(self.i) {
                    Some('?') => e = Expr::Rep(Box::new(e), 0, Some(1)),
                    Some('*') => e = Expr::Rep(Box::new(e), 0, None),
                    Some('+') => e = Expr::Rep(Box::new(e), 1, None),
                    Some('{') => {
                        let end =
                            self.c[self.i..].iter().position(|c| *c == '}').ok_or_else(|| self.err("unclosed {"))?
                                + self.i;
                        let body: String = self.c[self.i + 1..end].iter().collect();
                        let (lo, hi) = match body.split_once(',') {
                            Some((a, b)) => (
                                a.trim().parse().map_err(|_| self.err("bad {m,n}"))?,
                                if b.trim().is_empty() {
                                    None
                                } else {
                                    Some(b.trim().parse().map_err(|_| self.err("bad {m,n}"))?)
                                },
                            ),
                            None => {
                                let n = body.trim().parse().map_err(|_| self.err("bad {m}"))?;
                                (n, Some(n))
                            }
                        };
                        self.i = end;
                        e = Expr::Rep(Box::new(e), lo, hi);
                    }
                    _ => break,
                }
                self.i += 1;
            }
            items.push(e);
        }
        Ok(if items.len() == 1 { items.remove(0) } else { Expr::Seq(items) })
    }
}

impl Grammar {
    /// Parses GBNF text (one rule per line).
    pub fn parse(text: &str) -> Result<Grammar, String> {
        let mut rules = BTreeMap::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let (name, body) = line.split_once("::=").ok_or_else(|| format!("grammar: no '::=' in `{line}`"))?;
            let mut lx = Lexer { c: body.chars().collect(), i: 0, line };
            let e = lx.alt()?;
            lx.ws();
            if lx.i != lx.c.len() {
                return Err(lx.err("unexpected text"));
            }
            rules.insert(name.trim().to_string(), e);
        }
        for e in rules.values() {
            check_refs(e, &rules)?;
        }
        Ok(Grammar { rules })
    }

    /// Whether the whole input matches rule `root`.
    pub fn accepts(&self, input: &str) -> bool {
        let chars: Vec<char> = input.chars().collect();
        let Some(root) = self.rules.get("root") else { return false };
        self.ends(root, &BTreeSet::from([0]), &chars, 0).contains(&chars.len())
    }

    /// All positions where `e` can end when started at any of `starts`.
    fn ends(&self, e: &Expr, starts: &BTreeSet<usize>, s: &[char], depth: usize) -> BTreeSet<usize> {
        if depth > 200 || starts.is_empty() {
            return BTreeSet::new();
        }
        match e {
            Expr::Lit(l) => {
                starts.iter().filter(|&&p| s.get(p..p + l.len()) == Some(&l[..])).map(|p| p + l.len()).collect()
            }
            Expr::Class { negated, items } => starts
                .iter()
                .filter(|&&p| s.get(p).is_some_and(|c| items.iter().any(|(a, b)| a <= c && c <= b) != *negated))
                .map(|p| p + 1)
                .collect(),
            Expr::Rule(r) => match self.rules.get(r) {
                Some(e) => self.ends(e, starts, s, depth + 1),
                None => BTreeSet::new(),
            },
            Expr::Seq(items) => items.iter().fold(starts.clone(), |cur, it| self.ends(it, &cur, s, depth + 1)),
            Expr::Alt(alts) => alts.iter().flat_map(|a| self.ends(a, starts, s, depth + 1)).collect(),
            Expr::Rep(inner, lo, hi) => {
                let mut out = if *lo == 0 { starts.clone() } else { BTreeSet::new() };
                let mut cur = starts.clone();
                let mut n = 0;
                while !cur.is_empty() && hi.is_none_or(|h| n < h) {
                    let next = self.ends(inner, &cur, s, depth + 1);
                    n += 1;
                    // Only positions that moved forward can lead anywhere new.
                    cur = next.into_iter().filter(|p| !cur.contains(p) || *lo > n).collect();
                    if n >= *lo {
                        out.extend(cur.iter().copied());
                    }
                    if n > s.len() + 1 {
                        break;
                    }
                }
                out
            }
        }
    }
}

impl Grammar {
    /// A random string the grammar derives (for tests): alternatives and repetition counts
    /// drawn from `rng`; past `max_depth` rule expansions the first alternative is taken
    /// (the generator puts the terminating one first).
    pub fn sample(&self, rng: &mut arbor_core::Rng, max_depth: usize) -> String {
        let mut out = String::new();
        if let Some(root) = self.rules.get("root") {
            self.derive(root, rng, 0, max_depth, &mut out);
        }
        out
    }

    fn derive(&self, e: &Expr, rng: &mut arbor_core::Rng, depth: usize, max: usize, out: &mut String) {
        let pick = |rng: &mut arbor_core::Rng, n: usize| (rng.next_u64() % n.max(1) as u64) as usize;
        match e {
            Expr::Lit(l) => out.extend(l.iter()),
            Expr::Class { negated: true, .. } => out.push('a'),
            Expr::Class { items, .. } => {
                let (a, b) = items[pick(rng, items.len())];
                let span = (b as u32).saturating_sub(a as u32) + 1;
                out.push(char::from_u32(a as u32 + (rng.next_u64() % u64::from(span)) as u32).unwrap_or(a));
            }
            Expr::Rule(r) => {
                if let Some(e) = self.rules.get(r) {
                    self.derive(e, rng, depth + 1, max, out);
                }
            }
            Expr::Seq(v) => v.iter().for_each(|x| self.derive(x, rng, depth, max, out)),
            Expr::Alt(v) => {
                let i = if depth > max { 0 } else { pick(rng, v.len()) };
                self.derive(&v[i], rng, depth, max, out);
            }
            Expr::Rep(x, lo, hi) => {
                let top = hi.unwrap_or(lo + 3).min(lo + 3);
                let n = if depth > max { *lo } else { lo + pick(rng, top - lo + 1) };
                for _ in 0..n {
                    self.derive(x, rng, depth, max, out);
                }
            }
        }
    }
}

fn check_refs(e: &Expr, rules: &BTreeMap<String, Expr>) -> Result<(), String> {
    match e {
        Expr::Rule(r) if !rules.contains_key(r) => Err(format!("grammar: rule '{r}' is not defined")),
        Expr::Seq(v) | Expr::Alt(v) => v.iter().try_for_each(|x| check_refs(x, rules)),
        Expr::Rep(x, _, _) => check_refs(x, rules),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_the_subset() {
        let g = Grammar::parse("root ::= \"a\" (b | \"c\"){1,3} [x-z]? d*\nb ::= \"b\"\nd ::= [^q]").unwrap();
        for ok in ["ab", "acbc", "abbbx", "acz", "abxrst"] {
            assert!(g.accepts(ok), "{ok}");
        }
        for bad in ["a", "abbbbq", "aq", "b", "abxq"] {
            assert!(!g.accepts(bad), "{bad}");
        }
        assert!(Grammar::parse("root ::= missing").unwrap_err().contains("'missing' is not defined"));
    }
}
