//! BehaviorTree.CPP's scripting language, as used by `Script`, `ScriptCondition`,
//! `Precondition` and the `_skipIf`/`_while`/`_onSuccess`/... attributes.
//!
//! Statements separated by `;`. Expressions: numbers, `'strings'`, `true`/`false`, blackboard
//! keys (identifiers, `@key` for the root blackboard), enum names (declared in the node
//! library), `:=` (create/overwrite), `=` (assign an existing key), `+= -= *= /=`, `+ - * /`,
//! `..` (string concatenation), `== != < <= > >=`, `&& || !`, `& | ^ ~`, `? :`, parentheses.
//!
//! Scripts are parsed once at load time; keys are bound to blackboard slots then, so running a
//! script does no name lookups.
//!
//! Over 600 lines: one small language (BT.CPP's scripting): lexer, parser and evaluator together.

use crate::value::Value;
use std::fmt;

/// A blackboard slot index.
pub type Slot = u32;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("script '{script}': column {column}: {message}")]
pub struct ScriptError {
    pub script: String,
    pub column: usize,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Concat,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
    BitAnd,
    BitOr,
    BitXor,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnOp {
    Neg,
    Not,
    BitNot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignOp {
    /// `:=` creates or overwrites.
    Define,
    /// `=` requires the key to exist.
    Set,
    Add,
    Sub,
    Mul,
    Div,
}

/// A variable: its name in the script and, once bound, its slot.
#[derive(Debug, Clone, PartialEq)]
pub struct Var {
    pub name: String,
    pub slot: Slot,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Lit(Value),
    Var(Var),
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Ternary(Box<Expr>, Box<Expr>, Box<Expr>),
    Assign(AssignOp, Var, Box<Expr>),
}

/// A parsed script: one or more statements; its value is the last statement's.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    pub source: String,
    pub stmts: Vec<Expr>,
}

/// Where scripts read and write blackboard values.
pub trait Env {
    fn get(&self, slot: Slot) -> Option<&Value>;
    fn set(&mut self, slot: Slot, value: Value);
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Str(String),
    Ident(String),
    Op(&'static str),
}

const OPS: [&str; 27] = [
    ":=", "+=", "-=", "*=", "/=", "==", "!=", "<=", ">=", "&&", "||", "..", "=", "<", ">", "+", "-", "*", "/", "!",
    "&", "|", "^", "~", "?", ":", ";",
];

fn lex(src: &str) -> Result<Vec<(Tok, usize)>, ScriptError> {
    let err = |column: usize, message: String| ScriptError { script: src.to_string(), column, message };
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' || c == ')' {
            out.push((Tok::Op(if c == '(' { "(" } else { ")" }), col));
            i += 1;
        } else if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) {
            let start = i;
            if c == '0' && matches!(chars.get(i + 1), Some('x' | 'X')) {
                i += 2;
                while i < chars.len() && chars[i].is_ascii_hexdigit() {
                    i += 1;
                }
                let text: String = chars[start + 2..i].iter().collect();
                let n = i64::from_str_radix(&text, 16).map_err(|_| err(col, format!("bad hex number '0x{text}'")))?;
                out.push((Tok::Num(n as f64), col));
                continue;
            }
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                // `1..2` is not a number followed by a concatenation in BT.CPP either; stop at `..`.
                if chars[i] == '.' && chars.get(i + 1) == Some(&'.') {
                    break;
                }
                i += 1;
            }
            if i < chars.len() && matches!(chars[i], 'e' | 'E') {
                let save = i;
                i += 1;
                if i < chars.len() && matches!(chars[i], '+' | '-') {
                    i += 1;
                }
                if i < chars.len() && chars[i].is_ascii_digit() {
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                } else {
                    i = save;
                }
            }
            let text: String = chars[start..i].iter().collect();
            let n = text.parse::<f64>().map_err(|_| err(col, format!("bad number '{text}'")))?;
            out.push((Tok::Num(n), col));
        } else if c == '\'' || c == '"' {
            let quote = c;
            let start = i + 1;
            i += 1;
            while i < chars.len() && chars[i] != quote {
                i += 1;
            }
            if i >= chars.len() {
                return Err(err(col, "string not closed".into()));
            }
            out.push((Tok::Str(chars[start..i].iter().collect()), col));
            i += 1;
        } else if c.is_alphabetic() || c == '_' || c == '@' {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((Tok::Ident(chars[start..i].iter().collect()), col));
        } else {
            let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
            match OPS.iter().find(|op| rest.starts_with(**op)) {
                Some(op) => {
                    out.push((Tok::Op(op), col));
                    i += op.chars().count();
                }
                None => return Err(err(col, format!("unexpected character '{c}'"))),
            }
        }
    }
    Ok(out)
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<(Tok, usize)>,
    pos: usize,
    depth: usize,
}

/// Deepest nesting of parentheses/unary operators a script may have.
const MAX_DEPTH: usize = 64;

impl Parser<'_> {
    fn err(&self, message: String) -> ScriptError {
        let column = self.toks.get(self.pos).map(|t| t.1).unwrap_or(self.src.chars().count() + 1);
        ScriptError { script: self.src.to_string(), column, message }
    }
    fn peek_op(&self) -> Option<&'static str> {
        match self.toks.get(self.pos) {
            Some((Tok::Op(o), _)) => Some(o),
            _ => None,
        }
    }
    fn eat(&mut self, op: &str) -> bool {
        if self.peek_op() == Some(op) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn statement(&mut self) -> Result<Expr, ScriptError> {
        if let (Some((Tok::Ident(name), _)), Some((Tok::Op(op), _))) =
            (self.toks.get(self.pos), self.toks.get(self.pos + 1))
        {
            let aop = match *op {
                ":=" => Some(AssignOp::Define),
                "=" => Some(AssignOp::Set),
                "+=" => Some(AssignOp::Add),
                "-=" => Some(AssignOp::Sub),
                "*=" => Some(AssignOp::Mul),
                "/=" => Some(AssignOp::Div),
                _ => None,
            };
            if let Some(aop) = aop {
                let var = Var { name: name.clone(), slot: 0 };
                self.pos += 2;
                let value = self.ternary()?;
                return Ok(Expr::Assign(aop, var, Box::new(value)));
            }
        }
        self.ternary()
    }

    fn ternary(&mut self) -> Result<Expr, ScriptError> {
        let cond = self.binary(0)?;
        if self.eat("?") {
            let a = self.ternary()?;
            if !self.eat(":") {
                return Err(self.err("expected ':' in 'cond ? a : b'".into()));
            }
            let b = self.ternary()?;
            return Ok(Expr::Ternary(Box::new(cond), Box::new(a), Box::new(b)));
        }
        Ok(cond)
    }

    fn binary(&mut self, min_prec: u8) -> Result<Expr, ScriptError> {
        let mut lhs = self.unary()?;
        while let Some(op) = self.peek_op() {
            let (prec, bop) = match op {
                "||" => (1, BinOp::Or),
                "&&" => (2, BinOp::And),
                "|" => (3, BinOp::BitOr),
                "^" => (4, BinOp::BitXor),
                "&" => (5, BinOp::BitAnd),
                "==" => (6, BinOp::Eq),
                "!=" => (6, BinOp::Ne),
                "<" => (7, BinOp::Lt),
                "<=" => (7, BinOp::Le),
                ">" => (7, BinOp::Gt),
                ">=" => (7, BinOp::Ge),
                ".." => (8, BinOp::Concat),
                "+" => (9, BinOp::Add),
                "-" => (9, BinOp::Sub),
                "*" => (10, BinOp::Mul),
                "/" => (10, BinOp::Div),
                _ => break,
            };
            if prec < min_prec {
                break;
            }
            self.pos += 1;
            let rhs = self.binary(prec + 1)?;
            lhs = Expr::Binary(bop, Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Expr, ScriptError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(format!("expression nested more than {MAX_DEPTH} deep")));
        }
        let r = self.unary_inner();
        self.depth -= 1;
        r
    }

    fn unary_inner(&mut self) -> Result<Expr, ScriptError> {
        for (op, uop) in [("-", UnOp::Neg), ("!", UnOp::Not), ("~", UnOp::BitNot)] {
            if self.eat(op) {
                return Ok(Expr::Unary(uop, Box::new(self.unary()?)));
            }
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, ScriptError> {
        let Some((tok, _)) = self.toks.get(self.pos).cloned() else {
            return Err(self.err("expression expected, found the end".into()));
        };
        self.pos += 1;
        match tok {
            Tok::Num(n) => Ok(Expr::Lit(Value::Number(n))),
            Tok::Str(s) => Ok(Expr::Lit(Value::Text(s))),
            Tok::Ident(name) if name == "true" => Ok(Expr::Lit(Value::Bool(true))),
            Tok::Ident(name) if name == "false" => Ok(Expr::Lit(Value::Bool(false))),
            Tok::Ident(name) => Ok(Expr::Var(Var { name, slot: 0 })),
            Tok::Op("(") => {
                let e = self.ternary()?;
                if !self.eat(")") {
                    return Err(self.err("expected ')'".into()));
                }
                Ok(e)
            }
            Tok::Op(op) => {
                self.pos -= 1;
                Err(self.err(format!("unexpected '{op}'")))
            }
        }
    }
}

impl Script {
    /// Parses a script. Variables are unbound (slot 0) until [`Script::bind`].
    pub fn parse(src: &str) -> Result<Script, ScriptError> {
        let toks = lex(src)?;
        let mut p = Parser { src, toks, pos: 0, depth: 0 };
        let mut stmts = Vec::new();
        while p.pos < p.toks.len() {
            if p.eat(";") {
                continue;
            }
            stmts.push(p.statement()?);
            if p.pos < p.toks.len() && !p.eat(";") {
                return Err(p.err("expected ';' between statements".into()));
            }
        }
        if stmts.is_empty() {
            return Err(ScriptError { script: src.into(), column: 1, message: "empty script".into() });
        }
        Ok(Script { source: src.to_string(), stmts })
    }

    /// Binds every variable: `enum_value` turns enum names into numbers; other names get a
    /// blackboard slot from `slot_of`.
    pub fn bind(&mut self, enum_value: &dyn Fn(&str) -> Option<f64>, slot_of: &mut dyn FnMut(&str) -> Slot) {
        fn walk(e: &mut Expr, en: &dyn Fn(&str) -> Option<f64>, slot_of: &mut dyn FnMut(&str) -> Slot) {
            match e {
                Expr::Lit(_) => {}
                Expr::Var(v) => match en(&v.name) {
                    Some(n) => *e = Expr::Lit(Value::Number(n)),
                    None => v.slot = slot_of(&v.name),
                },
                Expr::Unary(_, a) => walk(a, en, slot_of),
                Expr::Binary(_, a, b) => {
                    walk(a, en, slot_of);
                    walk(b, en, slot_of);
                }
                Expr::Ternary(a, b, c) => {
                    walk(a, en, slot_of);
                    walk(b, en, slot_of);
                    walk(c, en, slot_of);
                }
                Expr::Assign(_, v, a) => {
                    v.slot = slot_of(&v.name);
                    walk(a, en, slot_of);
                }
            }
        }
        for s in &mut self.stmts {
            walk(s, enum_value, slot_of);
        }
    }

    /// Every variable name the script reads or writes, in order of appearance.
    pub fn variables(&self) -> Vec<&str> {
        fn walk<'a>(e: &'a Expr, out: &mut Vec<&'a str>) {
            match e {
                Expr::Lit(_) => {}
                Expr::Var(v) => out.push(&v.name),
                Expr::Unary(_, a) => walk(a, out),
                Expr::Binary(_, a, b) => {
                    walk(a, out);
                    walk(b, out);
                }
                Expr::Ternary(a, b, c) => {
                    walk(a, out);
                    walk(b, out);
                    walk(c, out);
                }
                Expr::Assign(_, v, a) => {
                    out.push(&v.name);
                    walk(a, out);
                }
            }
        }
        let mut out = Vec::new();
        for s in &self.stmts {
            walk(s, &mut out);
        }
        out
    }

    /// Runs the script; returns the value of the last statement.
    pub fn eval(&self, env: &mut dyn Env) -> Result<Value, String> {
        let mut last = Value::Bool(true);
        for s in &self.stmts {
            last = eval(s, env)?;
        }
        Ok(last)
    }

    /// Runs the script and reads its value as a condition.
    pub fn eval_bool(&self, env: &mut dyn Env) -> Result<bool, String> {
        self.eval(env).and_then(|v| truthy(&v))
    }
}

impl fmt::Display for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

fn num(v: &Value) -> Result<f64, String> {
    match v {
        Value::Number(n) => Ok(*n),
        Value::Bool(b) => Ok(if *b { 1.0 } else { 0.0 }),
        Value::Text(s) => s.trim().parse::<f64>().map_err(|_| format!("'{s}' is not a number")),
    }
}

fn truthy(v: &Value) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) => Ok(*n != 0.0),
        Value::Text(s) => match s.as_str() {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(format!("'{s}' is not a boolean")),
        },
    }
}

/// Equality as BT.CPP compares: numbers numerically (text that parses counts as a number),
/// otherwise as text.
pub fn loosely_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Text(x), Value::Text(y)) => {
            x == y || matches!((x.parse::<f64>(), y.parse::<f64>()), (Ok(p), Ok(q)) if p == q)
        }
        _ => match (num(a), num(b)) {
            (Ok(x), Ok(y)) => x == y,
            _ => a.to_string() == b.to_string(),
        },
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::Text(s) => s.clone(),
        Value::Number(n) => crate::value::format_number(*n),
        Value::Bool(b) => b.to_string(),
    }
}

fn eval(e: &Expr, env: &mut dyn Env) -> Result<Value, String> {
    Ok(match e {
        Expr::Lit(v) => v.clone(),
        Expr::Var(v) => env.get(v.slot).cloned().ok_or_else(|| format!("blackboard key '{}' is not set", v.name))?,
        Expr::Unary(op, a) => {
            let a = eval(a, env)?;
            match op {
                UnOp::Neg => Value::Number(-num(&a)?),
                UnOp::Not => Value::Bool(!truthy(&a)?),
                UnOp::BitNot => Value::Number(!(num(&a)? as i64) as f64),
            }
        }
        Expr::Binary(op, a, b) => {
            if *op == BinOp::And {
                return Ok(Value::Bool(truthy(&eval(a, env)?)? && truthy(&eval(b, env)?)?));
            }
            if *op == BinOp::Or {
                return Ok(Value::Bool(truthy(&eval(a, env)?)? || truthy(&eval(b, env)?)?));
            }
            let (x, y) = (eval(a, env)?, eval(b, env)?);
            match op {
                BinOp::Add => Value::Number(num(&x)? + num(&y)?),
                BinOp::Sub => Value::Number(num(&x)? - num(&y)?),
                BinOp::Mul => Value::Number(num(&x)? * num(&y)?),
                BinOp::Div => {
                    let d = num(&y)?;
                    if d == 0.0 {
                        return Err("division by zero".into());
                    }
                    Value::Number(num(&x)? / d)
                }
                BinOp::Concat => Value::Text(text(&x) + &text(&y)),
                BinOp::Eq => Value::Bool(loosely_equal(&x, &y)),
                BinOp::Ne => Value::Bool(!loosely_equal(&x, &y)),
                BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                    let ord = match (num(&x), num(&y)) {
                        (Ok(p), Ok(q)) => p.partial_cmp(&q),
                        _ => Some(text(&x).cmp(&text(&y))),
                    };
                    let Some(ord) = ord else { return Ok(Value::Bool(false)) };
                    Value::Bool(match op {
                        BinOp::Lt => ord.is_lt(),
                        BinOp::Le => ord.is_le(),
                        BinOp::Gt => ord.is_gt(),
                        _ => ord.is_ge(),
                    })
                }
                BinOp::BitAnd => Value::Number(((num(&x)? as i64) & (num(&y)? as i64)) as f64),
                BinOp::BitOr => Value::Number(((num(&x)? as i64) | (num(&y)? as i64)) as f64),
                BinOp::BitXor => Value::Number(((num(&x)? as i64) ^ (num(&y)? as i64)) as f64),
                BinOp::And | BinOp::Or => Value::Bool(false),
            }
        }
        Expr::Ternary(c, a, b) => {
            if truthy(&eval(c, env)?)? {
                eval(a, env)?
            } else {
                eval(b, env)?
            }
        }
        Expr::Assign(op, var, a) => {
            let rhs = eval(a, env)?;
            let value = match op {
                AssignOp::Define => rhs,
                AssignOp::Set => {
                    if env.get(var.slot).is_none() {
                        return Err(format!("'{}' is not set: use ':=' to create it", var.name));
                    }
                    rhs
                }
                _ => {
                    let cur = env
                        .get(var.slot)
                        .cloned()
                        .ok_or_else(|| format!("blackboard key '{}' is not set", var.name))?;
                    match (op, &cur) {
                        (AssignOp::Add, Value::Text(s)) => Value::Text(s.clone() + &text(&rhs)),
                        (AssignOp::Add, _) => Value::Number(num(&cur)? + num(&rhs)?),
                        (AssignOp::Sub, _) => Value::Number(num(&cur)? - num(&rhs)?),
                        (AssignOp::Mul, _) => Value::Number(num(&cur)? * num(&rhs)?),
                        _ => {
                            let d = num(&rhs)?;
                            if d == 0.0 {
                                return Err("division by zero".into());
                            }
                            Value::Number(num(&cur)? / d)
                        }
                    }
                }
            };
            env.set(var.slot, value.clone());
            value
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(Default)]
    struct Map {
        names: Vec<String>,
        values: BTreeMap<Slot, Value>,
    }
    impl Env for Map {
        fn get(&self, slot: Slot) -> Option<&Value> {
            self.values.get(&slot)
        }
        fn set(&mut self, slot: Slot, value: Value) {
            self.values.insert(slot, value);
        }
    }
    impl Map {
        fn run(&mut self, src: &str) -> Result<Value, String> {
            let mut s = Script::parse(src).map_err(|e| e.to_string())?;
            let names = &mut self.names;
            let enums = |n: &str| match n {
                "RED" => Some(1.0),
                "BLUE" => Some(2.0),
                "THE_ANSWER" => Some(42.0),
                _ => None,
            };
            s.bind(&enums, &mut |n| match names.iter().position(|x| x == n) {
                Some(i) => i as Slot,
                None => {
                    names.push(n.to_string());
                    (names.len() - 1) as Slot
                }
            });
            s.eval(self)
        }
    }

    #[test]
    fn btcpp_scripting_example() {
        let mut m = Map::default();
        m.run(" msg:='hello world' ").unwrap();
        m.run(" A:=THE_ANSWER; B:=3.14; color:=RED ").unwrap();
        assert_eq!(m.run("A>-B && color != BLUE").unwrap(), Value::Bool(true));
        assert_eq!(m.run("msg").unwrap(), Value::Text("hello world".into()));
    }

    #[test]
    fn operators_and_precedence() {
        let mut m = Map::default();
        assert_eq!(m.run("1 + 2 * 3").unwrap(), Value::Number(7.0));
        assert_eq!(m.run("(1 + 2) * 3").unwrap(), Value::Number(9.0));
        assert_eq!(m.run("x := 5; x += 2; x").unwrap(), Value::Number(7.0));
        assert_eq!(m.run("x > 6 ? 'big' : 'small'").unwrap(), Value::Text("big".into()));
        assert_eq!(m.run("'a' .. 'b' .. 3").unwrap(), Value::Text("ab3".into()));
        assert_eq!(m.run("!(x == 7) || false").unwrap(), Value::Bool(false));
        assert_eq!(m.run("0x0F & 6 | 1").unwrap(), Value::Number(7.0));
        assert_eq!(m.run("s := 'ab'; s += 'c'; s").unwrap(), Value::Text("abc".into()));
        assert_eq!(m.run("'3' == 3.0").unwrap(), Value::Bool(true));
        assert_eq!(m.run("1e3 + .5").unwrap(), Value::Number(1000.5));
    }

    #[test]
    fn errors_are_clear() {
        let mut m = Map::default();
        assert!(m.run("y = 3").unwrap_err().contains("'y' is not set"));
        assert!(m.run("z + 1").unwrap_err().contains("'z' is not set"));
        assert!(m.run("1 / 0").unwrap_err().contains("division by zero"));
        let e = Script::parse("a := (1 + ").unwrap_err();
        assert!(e.to_string().contains("expression expected"), "{e}");
        let e = Script::parse("a := 'open").unwrap_err();
        assert_eq!(e.column, 6, "{e}");
        assert!(Script::parse("a := 1 b := 2").unwrap_err().message.contains("expected ';'"));
        assert!(Script::parse("  ").unwrap_err().message.contains("empty"));
        assert!(Script::parse("a $ b").unwrap_err().message.contains("unexpected character '$'"));
        let deep = format!("{}1{}", "(".repeat(100), ")".repeat(100));
        assert!(Script::parse(&deep).unwrap_err().message.contains("nested more than"));
        assert!(Script::parse(&"-".repeat(1000)).is_err());
    }
}
