//! Type checking and compilation in one pass: each syntax node becomes a typed closure.
//!
//! Constants are folded, and reads of a slot compared with a constant (`profile.age > 30`,
//! `profile.country in ['US', 'CA']`) get closures that borrow the slot's value instead of
//! cloning it: that is the shape of almost every marketing rule.

use std::cmp::Ordering;
use std::sync::Arc;

use regex::Regex;

use crate::ast::{BinaryOp, Expr, ExprKind, Literal, Span, UnaryOp};
use crate::env::{Activation, Env, Root, Scope};
use crate::error::{EvalError, ExprError};
use crate::time::{Duration, NANOS_PER_SECOND, Timestamp, format_duration, format_timestamp};
use crate::value::{TWO_POW_63, Type, Value};
use crate::{parser, suggest};

type Node = Box<dyn Fn(&Ctx<'_>) -> Result<Value, EvalError> + Send + Sync>;

/// What evaluation sees: the caller's activation and the comprehension variables in scope.
struct Ctx<'a> {
    act: &'a dyn Activation,
    locals: Option<&'a Local<'a>>,
}

struct Local<'a> {
    value: Value,
    parent: Option<&'a Local<'a>>,
}

impl Ctx<'_> {
    fn local(&self, depth: usize) -> &Value {
        let mut frame = self.locals.expect("locals resolved at compile time");
        for _ in 0..depth {
            frame = frame.parent.expect("locals resolved at compile time");
        }
        &frame.value
    }
}

/// What the expression's value must be where it is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expected {
    Bool,
    Number,
    Any,
}

/// A compiled expression: evaluation never parses or looks up a name.
pub struct Program {
    node: Node,
    result_type: Type,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("result_type", &self.result_type)
            .finish_non_exhaustive()
    }
}

impl Program {
    pub fn eval(&self, act: &dyn Activation) -> Result<Value, EvalError> {
        (self.node)(&Ctx { act, locals: None })
    }

    /// A condition: anything but `true` (an error included) is reported as such.
    pub fn eval_bool(&self, act: &dyn Activation) -> Result<bool, EvalError> {
        match self.eval(act)? {
            Value::Bool(b) => Ok(b),
            other => Err(wrong_type("bool", &other)),
        }
    }

    pub fn eval_number(&self, act: &dyn Activation) -> Result<f64, EvalError> {
        match self.eval(act)? {
            Value::Int(i) => Ok(i as f64),
            Value::Double(d) => Ok(d),
            other => Err(wrong_type("number", &other)),
        }
    }

    pub fn result_type(&self) -> &Type {
        &self.result_type
    }
}

/// Parses, type-checks and compiles `src`.
pub fn compile(
    src: &str,
    env: &mut Env,
    scope: Scope,
    expected: Expected,
) -> Result<Program, ExprError> {
    let expr = parser::parse(src)?;
    let mut compiler = Compiler {
        env,
        scope,
        locals: Vec::new(),
    };
    let (ty, compiled) = compiler.expr(&expr)?;
    let fits = match expected {
        Expected::Bool => ty.fits(&Type::Bool),
        Expected::Number => ty.is_numeric() || ty.is_dyn(),
        Expected::Any => true,
    };
    if !fits {
        let want = if expected == Expected::Bool {
            "a condition (bool)"
        } else {
            "a number"
        };
        return Err(ExprError::new(
            expr.span,
            format!("expression must be {want}, but it is {ty}"),
        ));
    }
    Ok(Program {
        node: compiled.into_node(),
        result_type: ty,
    })
}

fn wrong_type(expected: &'static str, found: &Value) -> EvalError {
    EvalError::WrongType(format!("expected {expected}, found {}", found.type_of()).into())
}

/// A compiled sub-expression, kept open while its parent may specialise on it.
enum Compiled {
    Const(Value),
    Slot(SlotRef),
    Node(Node),
}

#[derive(Clone)]
struct SlotRef {
    root: Root,
    slot: u32,
    name: Arc<str>,
}

impl SlotRef {
    fn read<'a>(&self, ctx: &Ctx<'a>) -> Result<&'a Value, EvalError> {
        ctx.act
            .get(self.root, self.slot)
            .ok_or_else(|| EvalError::NoSuchField(self.name.clone()))
    }
}

impl Compiled {
    fn into_node(self) -> Node {
        match self {
            Compiled::Const(v) => Box::new(move |_| Ok(v.clone())),
            Compiled::Slot(s) => Box::new(move |ctx| s.read(ctx).cloned()),
            Compiled::Node(n) => n,
        }
    }

    /// Applies a binary function, borrowing slot and constant operands rather than cloning.
    fn binary<F>(self, rhs: Compiled, f: F) -> Compiled
    where
        F: Fn(&Value, &Value) -> Result<Value, EvalError> + Send + Sync + 'static,
    {
        use Compiled::{Const, Node as N, Slot};
        match (self, rhs) {
            (Const(a), Const(b)) => fold(f(&a, &b)),
            (Slot(s), Const(c)) => N(Box::new(move |ctx| f(s.read(ctx)?, &c))),
            (Const(c), Slot(s)) => N(Box::new(move |ctx| f(&c, s.read(ctx)?))),
            (Slot(a), Slot(b)) => N(Box::new(move |ctx| f(a.read(ctx)?, b.read(ctx)?))),
            (N(n), Const(c)) => N(Box::new(move |ctx| f(&n(ctx)?, &c))),
            (Const(c), N(n)) => N(Box::new(move |ctx| f(&c, &n(ctx)?))),
            (l, r) => {
                let (l, r) = (l.into_node(), r.into_node());
                N(Box::new(move |ctx| f(&l(ctx)?, &r(ctx)?)))
            }
        }
    }

    fn unary<F>(self, f: F) -> Compiled
    where
        F: Fn(&Value) -> Result<Value, EvalError> + Send + Sync + 'static,
    {
        match self {
            Compiled::Const(v) => fold(f(&v)),
            Compiled::Slot(s) => Compiled::Node(Box::new(move |ctx| f(s.read(ctx)?))),
            Compiled::Node(n) => Compiled::Node(Box::new(move |ctx| f(&n(ctx)?))),
        }
    }
}

/// A constant sub-expression is evaluated once; if it fails, it fails at run time like CEL.
fn fold(result: Result<Value, EvalError>) -> Compiled {
    match result {
        Ok(v) => Compiled::Const(v),
        Err(e) => Compiled::Node(Box::new(move |_| Err(e.clone()))),
    }
}

struct Compiler<'e> {
    env: &'e mut Env,
    scope: Scope,
    /// Comprehension variables, innermost last.
    locals: Vec<(String, Type)>,
}

type Checked = Result<(Type, Compiled), ExprError>;

fn err<T>(span: &Span, message: impl Into<String>) -> Result<T, ExprError> {
    Err(ExprError::new(span.clone(), message))
}

impl Compiler<'_> {
    fn expr(&mut self, expr: &Expr) -> Checked {
        let span = &expr.span;
        match &expr.kind {
            ExprKind::Literal(lit) => Ok(literal(lit)),
            ExprKind::Ident(name) => self.ident(name, span),
            ExprKind::Select { operand, field } => self.select(operand, field, span),
            ExprKind::Index { operand, index } => self.index(operand, index, span),
            ExprKind::Call {
                target,
                function,
                args,
            } => self.call(target.as_deref(), function, args, span),
            ExprKind::List(items) => self.list(items),
            ExprKind::Map(entries) => self.map(entries),
            ExprKind::Unary { op, operand } => self.unary(*op, operand),
            ExprKind::Binary { op, lhs, rhs } => self.binary(*op, lhs, rhs, span),
            ExprKind::Conditional {
                cond,
                then,
                otherwise,
            } => self.conditional(cond, then, otherwise),
        }
    }

    fn ident(&mut self, name: &str, span: &Span) -> Checked {
        if let Some(pos) = self.locals.iter().rposition(|(n, _)| n == name) {
            let depth = self.locals.len() - 1 - pos;
            let ty = self.locals[pos].1.clone();
            return Ok((
                ty,
                Compiled::Node(Box::new(move |ctx| Ok(ctx.local(depth).clone()))),
            ));
        }
        match name {
            "now" => Ok((
                Type::Timestamp,
                Compiled::Node(Box::new(|ctx| Ok(Value::Timestamp(ctx.act.now())))),
            )),
            "segments" => Ok((
                Type::List(Box::new(Type::String)),
                Compiled::Node(Box::new(|ctx| Ok(ctx.act.segments()))),
            )),
            _ => {
                if let Some(root) = Root::from_name(name) {
                    self.check_root_in_scope(root, span)?;
                    return err(
                        span,
                        format!("{name} is not a value on its own; use {name}.<field>"),
                    );
                }
                let known = [
                    "profile", "session", "event", "offer", "patterns", "segments", "now",
                ];
                match suggest::closest(name, known) {
                    Some(s) => err(span, format!("unknown name '{name}' (did you mean '{s}'?)")),
                    None => err(
                        span,
                        format!(
                            "unknown name '{name}'; expressions can use profile, session, event, \
                             offer, patterns, segments and now"
                        ),
                    ),
                }
            }
        }
    }

    fn check_root_in_scope(&self, root: Root, span: &Span) -> Result<(), ExprError> {
        match root {
            Root::Event if !self.scope.event => err(
                span,
                "event is only available in event actions and their conditions",
            ),
            Root::Offer if !self.scope.offer => err(
                span,
                "offer is only available in rule eligibility and score expressions",
            ),
            _ => Ok(()),
        }
    }

    /// `root.field` for a root variable not shadowed by a comprehension variable.
    fn root_field(&self, operand: &Expr) -> Option<Root> {
        match &operand.kind {
            ExprKind::Ident(name) if !self.locals.iter().any(|(n, _)| n == name) => {
                Root::from_name(name)
            }
            _ => None,
        }
    }

    fn select(&mut self, operand: &Expr, field: &str, span: &Span) -> Checked {
        if let Some(root) = self.root_field(operand) {
            self.check_root_in_scope(root, &operand.span)?;
            let (slot, ty) = self
                .env
                .resolve(root, field)
                .map_err(|m| ExprError::new(span.clone(), m))?;
            let name: Arc<str> = format!("{}.{field}", root.name()).into();
            return Ok((ty, Compiled::Slot(SlotRef { root, slot, name })));
        }
        let (ty, compiled) = self.expr(operand)?;
        let result_ty = match &ty {
            Type::Map(k, v) if k.fits(&Type::String) => (**v).clone(),
            Type::Dyn => Type::Dyn,
            other => return err(span, format!("cannot select field '{field}' of {other}")),
        };
        let key = Value::string(field);
        Ok((
            result_ty,
            compiled.unary(move |v| match v {
                Value::Map(_) => v
                    .map_get(&key)
                    .cloned()
                    .ok_or_else(|| EvalError::NoSuchKey(key.to_string().into())),
                other => Err(wrong_type("map", other)),
            }),
        ))
    }

    fn index(&mut self, operand: &Expr, index: &Expr, span: &Span) -> Checked {
        let (ty, target) = self.expr(operand)?;
        let (ity, idx) = self.expr(index)?;
        let result_ty = match &ty {
            Type::List(elem) => {
                if !ity.fits(&Type::Int) {
                    return err(
                        &index.span,
                        format!("a list index must be an int, not {ity}"),
                    );
                }
                (**elem).clone()
            }
            Type::Map(k, v) => {
                if !ity.fits(k) {
                    return err(&index.span, format!("this map's keys are {k}, not {ity}"));
                }
                (**v).clone()
            }
            Type::Dyn => Type::Dyn,
            other => return err(span, format!("cannot index into {other}")),
        };
        Ok((result_ty, target.binary(idx, index_value)))
    }

    fn list(&mut self, items: &[Expr]) -> Checked {
        let mut elem: Option<Type> = None;
        let mut parts = Vec::with_capacity(items.len());
        for item in items {
            let (ty, c) = self.expr(item)?;
            elem = Some(match elem {
                None => ty,
                Some(prev) => prev.join(&ty),
            });
            parts.push(c);
        }
        let ty = Type::List(Box::new(elem.unwrap_or(Type::Dyn)));
        if parts.iter().all(|p| matches!(p, Compiled::Const(_))) {
            let values = parts.into_iter().map(|p| match p {
                Compiled::Const(v) => v,
                _ => unreachable!("checked above"),
            });
            return Ok((ty, Compiled::Const(Value::list(values))));
        }
        let nodes: Vec<Node> = parts.into_iter().map(Compiled::into_node).collect();
        Ok((
            ty,
            Compiled::Node(Box::new(move |ctx| {
                let values: Result<Vec<Value>, EvalError> = nodes.iter().map(|n| n(ctx)).collect();
                Ok(Value::list(values?))
            })),
        ))
    }

    fn map(&mut self, entries: &[(Expr, Expr)]) -> Checked {
        let mut key_ty: Option<Type> = None;
        let mut val_ty: Option<Type> = None;
        let mut nodes = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            let (kt, kc) = self.expr(k)?;
            if !matches!(kt, Type::String | Type::Int | Type::Bool | Type::Dyn) {
                return err(
                    &k.span,
                    format!("a map key must be a string, int or bool, not {kt}"),
                );
            }
            let (vt, vc) = self.expr(v)?;
            key_ty = Some(key_ty.map_or(kt.clone(), |p| p.join(&kt)));
            val_ty = Some(val_ty.map_or(vt.clone(), |p| p.join(&vt)));
            nodes.push((kc.into_node(), vc.into_node()));
        }
        let ty = Type::Map(
            Box::new(key_ty.unwrap_or(Type::Dyn)),
            Box::new(val_ty.unwrap_or(Type::Dyn)),
        );
        Ok((
            ty,
            Compiled::Node(Box::new(move |ctx| {
                let mut pairs: Vec<(Value, Value)> = Vec::with_capacity(nodes.len());
                for (k, v) in &nodes {
                    let key = k(ctx)?;
                    if !matches!(key, Value::String(_) | Value::Int(_) | Value::Bool(_)) {
                        return Err(wrong_type("map key", &key));
                    }
                    if pairs.iter().any(|(existing, _)| *existing == key) {
                        return Err(EvalError::Conversion(
                            format!("duplicate map key {key}").into(),
                        ));
                    }
                    pairs.push((key, v(ctx)?));
                }
                Ok(Value::map(pairs))
            })),
        ))
    }

    fn unary(&mut self, op: UnaryOp, operand: &Expr) -> Checked {
        let (ty, c) = self.expr(operand)?;
        match op {
            UnaryOp::Not => {
                if !ty.fits(&Type::Bool) {
                    return err(&operand.span, format!("'!' needs a bool, not {ty}"));
                }
                Ok((
                    Type::Bool,
                    c.unary(|v| match v {
                        Value::Bool(b) => Ok(Value::Bool(!b)),
                        other => Err(wrong_type("bool", other)),
                    }),
                ))
            }
            UnaryOp::Neg => {
                if !matches!(ty, Type::Int | Type::Double | Type::Duration | Type::Dyn) {
                    return err(&operand.span, format!("'-' needs a number, not {ty}"));
                }
                Ok((
                    ty,
                    c.unary(|v| match v {
                        Value::Int(i) => i.checked_neg().map(Value::Int).ok_or(EvalError::Overflow),
                        Value::Double(d) => Ok(Value::Double(-d)),
                        Value::Duration(d) => {
                            d.0.checked_neg()
                                .map(|n| Value::Duration(Duration(n)))
                                .ok_or(EvalError::Overflow)
                        }
                        other => Err(wrong_type("number", other)),
                    }),
                ))
            }
        }
    }

    fn conditional(&mut self, cond: &Expr, then: &Expr, otherwise: &Expr) -> Checked {
        let (cty, c) = self.expr(cond)?;
        if !cty.fits(&Type::Bool) {
            return err(
                &cond.span,
                format!("the condition before '?' must be a bool, not {cty}"),
            );
        }
        let (tty, t) = self.expr(then)?;
        let (oty, o) = self.expr(otherwise)?;
        let ty = if tty == Type::Null {
            oty.clone()
        } else if oty == Type::Null {
            tty.clone()
        } else {
            tty.join(&oty)
        };
        if let Compiled::Const(Value::Bool(b)) = c {
            return Ok((ty, if b { t } else { o }));
        }
        let (c, t, o) = (c.into_node(), t.into_node(), o.into_node());
        Ok((
            ty,
            Compiled::Node(Box::new(move |ctx| match c(ctx)? {
                Value::Bool(true) => t(ctx),
                Value::Bool(false) => o(ctx),
                other => Err(wrong_type("bool", &other)),
            })),
        ))
    }

    fn binary(&mut self, op: BinaryOp, lhs: &Expr, rhs: &Expr, span: &Span) -> Checked {
        if op == BinaryOp::In
            && let ExprKind::Ident(name) = &rhs.kind
            && name == "segments"
            && !self.locals.iter().any(|(n, _)| n == "segments")
            && let ExprKind::Literal(Literal::String(segment)) = &lhs.kind
        {
            return self.in_segments(segment, &lhs.span);
        }
        let (lt, l) = self.expr(lhs)?;
        let (rt, r) = self.expr(rhs)?;
        let mismatch = || {
            err(
                span,
                format!("no operator '{}' for {lt} and {rt}", op.symbol()),
            )
        };
        match op {
            BinaryOp::And | BinaryOp::Or => {
                for (t, e) in [(&lt, lhs), (&rt, rhs)] {
                    if !t.fits(&Type::Bool) {
                        return err(&e.span, format!("'{}' needs bools, not {t}", op.symbol()));
                    }
                }
                Ok((Type::Bool, logical(op == BinaryOp::And, l, r)))
            }
            BinaryOp::Eq | BinaryOp::Ne => {
                if !equatable(&lt, &rt) {
                    return err(span, format!("cannot compare {lt} with {rt}"));
                }
                let negate = op == BinaryOp::Ne;
                Ok((
                    Type::Bool,
                    l.binary(r, move |a, b| Ok(Value::Bool((a == b) != negate))),
                ))
            }
            BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
                if !orderable(&lt, &rt) {
                    return err(span, format!("cannot order {lt} and {rt}"));
                }
                // One monomorphic closure per operator: no indirect call to pick the ordering.
                let symbol = op.symbol();
                let compiled = match op {
                    BinaryOp::Lt => ordered(l, r, symbol, Ordering::is_lt),
                    BinaryOp::Le => ordered(l, r, symbol, Ordering::is_le),
                    BinaryOp::Gt => ordered(l, r, symbol, Ordering::is_gt),
                    _ => ordered(l, r, symbol, Ordering::is_ge),
                };
                Ok((Type::Bool, compiled))
            }
            BinaryOp::In => {
                let ok = match &rt {
                    Type::List(elem) => equatable(&lt, elem),
                    Type::Map(key, _) => equatable(&lt, key),
                    Type::Dyn => true,
                    _ => false,
                };
                if !ok {
                    return mismatch();
                }
                Ok((Type::Bool, membership(l, r)))
            }
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => {
                let Some(ty) = arithmetic_type(op, &lt, &rt) else {
                    return mismatch();
                };
                Ok((ty, l.binary(r, move |a, b| arithmetic(op, a, b))))
            }
        }
    }

    fn in_segments(&mut self, segment: &str, span: &Span) -> Checked {
        match self.env.segment_index(segment) {
            Some(Some(index)) => Ok((
                Type::Bool,
                Compiled::Node(Box::new(move |ctx| {
                    Ok(Value::Bool(ctx.act.has_segment(index)))
                })),
            )),
            Some(None) => {
                let name = segment.to_string();
                Ok((
                    Type::Bool,
                    Compiled::Node(Box::new(move |ctx| {
                        Ok(Value::Bool(ctx.act.has_segment_named(&name)))
                    })),
                ))
            }
            None => err(span, format!("unknown segment '{segment}'")),
        }
    }

    fn call(
        &mut self,
        target: Option<&Expr>,
        function: &str,
        args: &[Expr],
        span: &Span,
    ) -> Checked {
        match (target, function) {
            (None, "has") => return self.has(args, span),
            (Some(t), "exists" | "all" | "exists_one" | "map" | "filter") => {
                return self.comprehension(t, function, args, span);
            }
            _ => {}
        }
        // Global and method forms of the same function share one implementation.
        let mut operands: Vec<&Expr> = target.into_iter().collect();
        operands.extend(args);
        let mut typed = Vec::with_capacity(operands.len());
        for e in &operands {
            typed.push(self.expr(e)?);
        }
        let given = typed.len();
        let arity = |n: usize| -> Result<(), ExprError> {
            if given == n {
                Ok(())
            } else {
                err(
                    span,
                    format!(
                        "{function}() takes {} argument(s)",
                        n - usize::from(target.is_some())
                    ),
                )
            }
        };
        let tys: Vec<Type> = typed.iter().map(|(t, _)| t.clone()).collect();
        let mut parts = typed.into_iter().map(|(_, c)| c);
        match function {
            "size" => {
                arity(1)?;
                if !matches!(
                    tys[0],
                    Type::String | Type::List(_) | Type::Map(..) | Type::Dyn
                ) {
                    return err(
                        span,
                        format!("size() needs a string, list or map, not {}", tys[0]),
                    );
                }
                Ok((
                    Type::Int,
                    parts.next().expect("arity").unary(|v| match v {
                        Value::String(s) => Ok(Value::Int(s.chars().count() as i64)),
                        Value::List(l) => Ok(Value::Int(l.len() as i64)),
                        Value::Map(m) => Ok(Value::Int(m.len() as i64)),
                        other => Err(wrong_type("string, list or map", other)),
                    }),
                ))
            }
            "contains" | "startsWith" | "endsWith" => {
                arity(2)?;
                if target.is_none() {
                    return err(
                        span,
                        format!("{function}() is a method: write text.{function}(part)"),
                    );
                }
                for t in &tys {
                    if !t.fits(&Type::String) {
                        return err(span, format!("{function}() works on strings, not {t}"));
                    }
                }
                let test: fn(&str, &str) -> bool = match function {
                    "contains" => |a, b| a.contains(b),
                    "startsWith" => |a, b| a.starts_with(b),
                    _ => |a, b| a.ends_with(b),
                };
                let (a, b) = (parts.next().expect("arity"), parts.next().expect("arity"));
                Ok((
                    Type::Bool,
                    a.binary(b, move |a, b| match (a, b) {
                        (Value::String(a), Value::String(b)) => Ok(Value::Bool(test(a, b))),
                        (Value::String(_), other) | (other, _) => Err(wrong_type("string", other)),
                    }),
                ))
            }
            "matches" => {
                arity(2)?;
                let pattern_expr = operands[1];
                let ExprKind::Literal(Literal::String(pattern)) = &pattern_expr.kind else {
                    return err(
                        &pattern_expr.span,
                        "matches() needs a literal pattern, compiled once",
                    );
                };
                let re = Regex::new(pattern).map_err(|e| {
                    ExprError::new(pattern_expr.span.clone(), format!("invalid pattern: {e}"))
                })?;
                if !tys[0].fits(&Type::String) {
                    return err(span, format!("matches() works on strings, not {}", tys[0]));
                }
                Ok((
                    Type::Bool,
                    parts.next().expect("arity").unary(move |v| match v {
                        Value::String(s) => Ok(Value::Bool(re.is_match(s))),
                        other => Err(wrong_type("string", other)),
                    }),
                ))
            }
            "int" | "double" | "string" | "timestamp" | "duration" => {
                arity(1)?;
                if target.is_some() {
                    return err(
                        span,
                        format!("{function}() is a function: write {function}(value)"),
                    );
                }
                let accepted = match function {
                    "int" => matches!(
                        tys[0],
                        Type::Int | Type::Double | Type::String | Type::Timestamp | Type::Dyn
                    ),
                    "double" => {
                        matches!(tys[0], Type::Int | Type::Double | Type::String | Type::Dyn)
                    }
                    "string" => !matches!(tys[0], Type::List(_) | Type::Map(..) | Type::Null),
                    "timestamp" => matches!(tys[0], Type::String | Type::Timestamp | Type::Dyn),
                    _ => matches!(tys[0], Type::String | Type::Duration | Type::Dyn),
                };
                if !accepted {
                    return err(span, format!("{function}() cannot convert {}", tys[0]));
                }
                type Conversion = fn(&Value) -> Result<Value, EvalError>;
                let (ty, convert): (Type, Conversion) = match function {
                    "int" => (Type::Int, to_int),
                    "double" => (Type::Double, to_double),
                    "string" => (Type::String, to_string),
                    "timestamp" => (Type::Timestamp, to_timestamp),
                    _ => (Type::Duration, to_duration),
                };
                let compiled = parts.next().expect("arity").unary(convert);
                // A literal that does not convert is a mistake the author should see now.
                if let (ExprKind::Literal(_), Compiled::Node(node)) = (&operands[0].kind, &compiled)
                    && let Err(e) = node(&Ctx {
                        act: &NoActivation,
                        locals: None,
                    })
                {
                    return err(&operands[0].span, e.to_string());
                }
                Ok((ty, compiled))
            }
            "getFullYear" | "getMonth" | "getDayOfMonth" | "getDate" | "getDayOfWeek"
            | "getDayOfYear" | "getHours" | "getMinutes" | "getSeconds" => {
                if target.is_none() {
                    return err(
                        span,
                        format!("{function}() is a method: write time.{function}()"),
                    );
                }
                if !args.is_empty() {
                    return err(
                        span,
                        format!("{function}() takes no time zone: times are in UTC"),
                    );
                }
                if !tys[0].fits(&Type::Timestamp) {
                    return err(
                        span,
                        format!("{function}() works on timestamps, not {}", tys[0]),
                    );
                }
                let part = timestamp_part(function);
                Ok((
                    Type::Int,
                    parts.next().expect("arity").unary(move |v| match v {
                        Value::Timestamp(t) => Ok(Value::Int(part(*t))),
                        other => Err(wrong_type("timestamp", other)),
                    }),
                ))
            }
            _ => {
                let known = [
                    "has",
                    "size",
                    "contains",
                    "startsWith",
                    "endsWith",
                    "matches",
                    "int",
                    "double",
                    "string",
                    "timestamp",
                    "duration",
                    "exists",
                    "all",
                    "exists_one",
                    "map",
                    "filter",
                    "getFullYear",
                    "getMonth",
                    "getDayOfMonth",
                    "getDayOfWeek",
                    "getHours",
                ];
                match suggest::closest(function, known) {
                    Some(s) => err(
                        span,
                        format!("unknown function '{function}' (did you mean '{s}'?)"),
                    ),
                    None => err(span, format!("unknown function '{function}'")),
                }
            }
        }
    }

    fn has(&mut self, args: &[Expr], span: &Span) -> Checked {
        let [arg] = args else {
            return err(span, "has() takes one field, like has(profile.age)");
        };
        let ExprKind::Select { operand, field } = &arg.kind else {
            return err(
                &arg.span,
                "has() needs a field selection, like has(profile.age)",
            );
        };
        if let Some(root) = self.root_field(operand) {
            self.check_root_in_scope(root, &operand.span)?;
            let (slot, _) = self
                .env
                .resolve(root, field)
                .map_err(|m| ExprError::new(arg.span.clone(), m))?;
            return Ok((
                Type::Bool,
                Compiled::Node(Box::new(move |ctx| {
                    Ok(Value::Bool(ctx.act.get(root, slot).is_some()))
                })),
            ));
        }
        let (ty, c) = self.expr(operand)?;
        if !matches!(ty, Type::Map(..) | Type::Dyn) {
            return err(
                &operand.span,
                format!("has() needs a map or root field, not {ty}"),
            );
        }
        let key = Value::string(field.as_str());
        Ok((
            Type::Bool,
            c.unary(move |v| match v {
                Value::Map(_) => Ok(Value::Bool(v.map_get(&key).is_some())),
                other => Err(wrong_type("map", other)),
            }),
        ))
    }

    fn comprehension(
        &mut self,
        target: &Expr,
        function: &str,
        args: &[Expr],
        span: &Span,
    ) -> Checked {
        let [var, body] = args else {
            return err(
                span,
                format!(
                    "{function}() takes a variable and an expression, like {function}(x, x > 0)"
                ),
            );
        };
        let ExprKind::Ident(var_name) = &var.kind else {
            return err(
                &var.span,
                format!("the first argument of {function}() must be a variable name"),
            );
        };
        let (tty, range) = self.expr(target)?;
        let elem = match &tty {
            Type::List(e) => (**e).clone(),
            Type::Map(k, _) => (**k).clone(),
            Type::Dyn => Type::Dyn,
            other => {
                return err(
                    &target.span,
                    format!("{function}() works on lists and maps, not {other}"),
                );
            }
        };
        self.locals.push((var_name.clone(), elem.clone()));
        let body_result = self.expr(body);
        self.locals.pop();
        let (bty, body_c) = body_result?;
        if function != "map" && !bty.fits(&Type::Bool) {
            return err(
                &body.span,
                format!("the condition of {function}() must be a bool, not {bty}"),
            );
        }
        let range = range.into_node();
        let body = body_c.into_node();
        let kind = Fold::from_name(function);
        let ty = match kind {
            Fold::Map => Type::List(Box::new(bty)),
            Fold::Filter => Type::List(Box::new(elem)),
            _ => Type::Bool,
        };
        Ok((
            ty,
            Compiled::Node(Box::new(move |ctx| {
                let items: Vec<Value> = match range(ctx)? {
                    Value::List(items) => items.to_vec(),
                    Value::Map(pairs) => pairs.iter().map(|(k, _)| k.clone()).collect(),
                    other => return Err(wrong_type("list or map", &other)),
                };
                kind.run(ctx, &items, &body)
            })),
        ))
    }
}

#[derive(Clone, Copy)]
enum Fold {
    Exists,
    All,
    ExistsOne,
    Map,
    Filter,
}

impl Fold {
    fn from_name(name: &str) -> Fold {
        match name {
            "exists" => Fold::Exists,
            "all" => Fold::All,
            "exists_one" => Fold::ExistsOne,
            "map" => Fold::Map,
            _ => Fold::Filter,
        }
    }

    /// CEL semantics: `exists`/`all` absorb errors when another element decides the result.
    fn run(self, ctx: &Ctx<'_>, items: &[Value], body: &Node) -> Result<Value, EvalError> {
        let mut first_error = None;
        let mut matched = 0usize;
        let mut out = Vec::new();
        for item in items {
            let frame = Local {
                value: item.clone(),
                parent: ctx.locals,
            };
            let inner = Ctx {
                act: ctx.act,
                locals: Some(&frame),
            };
            let result = body(&inner);
            match (self, result) {
                (Fold::Map, Ok(v)) => out.push(v),
                (Fold::Map, Err(e)) => return Err(e),
                (_, Ok(Value::Bool(b))) => match self {
                    Fold::Exists if b => return Ok(Value::Bool(true)),
                    Fold::All if !b => return Ok(Value::Bool(false)),
                    Fold::ExistsOne if b => matched += 1,
                    Fold::Filter if b => out.push(item.clone()),
                    _ => {}
                },
                (Fold::ExistsOne | Fold::Filter, Ok(other)) => {
                    return Err(wrong_type("bool", &other));
                }
                (Fold::ExistsOne | Fold::Filter, Err(e)) => return Err(e),
                (_, Ok(other)) => {
                    first_error.get_or_insert(wrong_type("bool", &other));
                }
                (_, Err(e)) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match self {
            Fold::Map | Fold::Filter => Ok(Value::list(out)),
            Fold::ExistsOne => Ok(Value::Bool(matched == 1)),
            _ => match first_error {
                Some(e) => Err(e),
                None => Ok(Value::Bool(matches!(self, Fold::All))),
            },
        }
    }
}

/// Used only to evaluate constant sub-expressions at compile time.
struct NoActivation;

impl Activation for NoActivation {
    fn get(&self, _: Root, _: u32) -> Option<&Value> {
        None
    }
    fn has_segment(&self, _: u32) -> bool {
        false
    }
    fn segments(&self) -> Value {
        Value::list([])
    }
    fn has_segment_named(&self, _: &str) -> bool {
        false
    }
    fn now(&self) -> Timestamp {
        Timestamp(0)
    }
}

fn literal(lit: &Literal) -> (Type, Compiled) {
    let (ty, v) = match lit {
        Literal::Null => (Type::Null, Value::Null),
        Literal::Bool(b) => (Type::Bool, Value::Bool(*b)),
        Literal::Int(i) => (Type::Int, Value::Int(*i)),
        Literal::Double(d) => (Type::Double, Value::Double(*d)),
        Literal::String(s) => (Type::String, Value::string(s.as_str())),
    };
    (ty, Compiled::Const(v))
}

fn equatable(a: &Type, b: &Type) -> bool {
    a.fits(b) || (a.is_numeric() && b.is_numeric()) || *a == Type::Null || *b == Type::Null
}

fn orderable(a: &Type, b: &Type) -> bool {
    match (a, b) {
        (Type::Dyn, _) | (_, Type::Dyn) => true,
        _ if a.is_numeric() && b.is_numeric() => true,
        (Type::String, Type::String)
        | (Type::Bool, Type::Bool)
        | (Type::Timestamp, Type::Timestamp)
        | (Type::Duration, Type::Duration) => true,
        _ => false,
    }
}

fn arithmetic_type(op: BinaryOp, a: &Type, b: &Type) -> Option<Type> {
    use Type::*;
    Some(match (op, a, b) {
        (_, Dyn, _) | (_, _, Dyn) => Dyn,
        (BinaryOp::Rem, Int, Int) => Int,
        (BinaryOp::Rem, _, _) => return None,
        (_, Int, Int) => Int,
        (_, Double, Double) | (_, Int, Double) | (_, Double, Int) => Double,
        (BinaryOp::Add, String, String) => String,
        (BinaryOp::Add, List(x), List(y)) => List(Box::new(x.join(y))),
        (BinaryOp::Add, Timestamp, Duration) | (BinaryOp::Add, Duration, Timestamp) => Timestamp,
        (BinaryOp::Add | BinaryOp::Sub, Duration, Duration) => Duration,
        (BinaryOp::Sub, Timestamp, Timestamp) => Duration,
        (BinaryOp::Sub, Timestamp, Duration) => Timestamp,
        _ => return None,
    })
}

fn no_overload(op: &'static str, a: &Value, b: &Value) -> EvalError {
    EvalError::NoOverload(
        format!("no operator '{op}' for {} and {}", a.type_of(), b.type_of()).into(),
    )
}

fn arithmetic(op: BinaryOp, a: &Value, b: &Value) -> Result<Value, EvalError> {
    use Value::*;
    let checked = |r: Option<i64>| r.map(Int).ok_or(EvalError::Overflow);
    match (op, a, b) {
        (BinaryOp::Add, Int(x), Int(y)) => checked(x.checked_add(*y)),
        (BinaryOp::Sub, Int(x), Int(y)) => checked(x.checked_sub(*y)),
        (BinaryOp::Mul, Int(x), Int(y)) => checked(x.checked_mul(*y)),
        (BinaryOp::Div | BinaryOp::Rem, Int(_), Int(0)) => Err(EvalError::DivisionByZero),
        (BinaryOp::Div, Int(x), Int(y)) => checked(x.checked_div(*y)),
        (BinaryOp::Rem, Int(x), Int(y)) => checked(x.checked_rem(*y)),
        (
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div,
            Int(_) | Double(_),
            Int(_) | Double(_),
        ) => {
            let (x, y) = (as_double(a), as_double(b));
            Ok(Double(match op {
                BinaryOp::Add => x + y,
                BinaryOp::Sub => x - y,
                BinaryOp::Mul => x * y,
                _ => x / y,
            }))
        }
        (BinaryOp::Add, String(x), String(y)) => Ok(Value::string(format!("{x}{y}"))),
        (BinaryOp::Add, List(x), List(y)) => Ok(Value::list(x.iter().chain(y.iter()).cloned())),
        (BinaryOp::Add, Timestamp(t), Duration(d)) | (BinaryOp::Add, Duration(d), Timestamp(t)) => {
            t.0.checked_add(d.0)
                .map(|n| Timestamp(crate::time::Timestamp(n)))
                .ok_or(EvalError::Overflow)
        }
        (BinaryOp::Sub, Timestamp(t), Duration(d)) => {
            t.0.checked_sub(d.0)
                .map(|n| Timestamp(crate::time::Timestamp(n)))
                .ok_or(EvalError::Overflow)
        }
        (BinaryOp::Sub, Timestamp(x), Timestamp(y)) => {
            x.0.checked_sub(y.0)
                .map(|n| Duration(crate::time::Duration(n)))
                .ok_or(EvalError::Overflow)
        }
        (BinaryOp::Add, Duration(x), Duration(y)) => {
            x.0.checked_add(y.0)
                .map(|n| Duration(crate::time::Duration(n)))
                .ok_or(EvalError::Overflow)
        }
        (BinaryOp::Sub, Duration(x), Duration(y)) => {
            x.0.checked_sub(y.0)
                .map(|n| Duration(crate::time::Duration(n)))
                .ok_or(EvalError::Overflow)
        }
        _ => Err(no_overload(op.symbol(), a, b)),
    }
}

fn as_double(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::Double(d) => *d,
        _ => f64::NAN,
    }
}

fn ordered<A>(l: Compiled, r: Compiled, symbol: &'static str, accept: A) -> Compiled
where
    A: Fn(Ordering) -> bool + Copy + Send + Sync + 'static,
{
    let compare = move |a: &Value, b: &Value| match a.compare(b) {
        Some(ord) => Ok(Value::Bool(accept(ord))),
        // NaN is unordered: every comparison with it is false.
        None if matches!((a, b), (Value::Double(_), _) | (_, Value::Double(_))) => {
            Ok(Value::Bool(false))
        }
        None => Err(no_overload(symbol, a, b)),
    };
    // The commonest rule shape, `profile.age > 30`: compare the borrowed slot with the integer.
    if let (Compiled::Slot(slot), Compiled::Const(Value::Int(c))) = (&l, &r) {
        let (slot, c) = (slot.clone(), *c);
        return Compiled::Node(Box::new(move |ctx| match slot.read(ctx)? {
            Value::Int(a) => Ok(Value::Bool(accept(a.cmp(&c)))),
            other => compare(other, &Value::Int(c)),
        }));
    }
    l.binary(r, compare)
}

/// `lhs in rhs`, with a fast path for a constant list of strings (`country in ['US', 'CA']`).
fn membership(l: Compiled, r: Compiled) -> Compiled {
    if let Compiled::Const(Value::List(items)) = &r
        && items.iter().all(|v| matches!(v, Value::String(_)))
    {
        let strings: Vec<Box<str>> = items
            .iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(Box::from(&**s)),
                _ => None,
            })
            .collect();
        return l.unary(move |v| match v {
            Value::String(s) => Ok(Value::Bool(strings.iter().any(|c| **c == **s))),
            _ => Ok(Value::Bool(false)),
        });
    }
    l.binary(r, |needle, haystack| match haystack {
        Value::List(items) => Ok(Value::Bool(items.iter().any(|v| v == needle))),
        Value::Map(_) => Ok(Value::Bool(haystack.map_get(needle).is_some())),
        other => Err(wrong_type("list or map", other)),
    })
}

/// `&&` and `||` with CEL's commutative error handling: `false && error` and
/// `error && false` are both false.
fn logical(is_and: bool, l: Compiled, r: Compiled) -> Compiled {
    let decisive = !is_and;
    if let Compiled::Const(Value::Bool(b)) = l {
        return if b == decisive {
            Compiled::Const(Value::Bool(decisive))
        } else {
            r.unary(|v| match v {
                Value::Bool(b) => Ok(Value::Bool(*b)),
                other => Err(wrong_type("bool", other)),
            })
        };
    }
    let (l, r) = (l.into_node(), r.into_node());
    Compiled::Node(Box::new(move |ctx| {
        let left = match l(ctx) {
            Ok(Value::Bool(b)) if b == decisive => return Ok(Value::Bool(decisive)),
            Ok(Value::Bool(_)) => None,
            Ok(other) => Some(wrong_type("bool", &other)),
            Err(e) => Some(e),
        };
        match (r(ctx), left) {
            (Ok(Value::Bool(b)), _) if b == decisive => Ok(Value::Bool(decisive)),
            (_, Some(e)) => Err(e),
            (Ok(Value::Bool(b)), None) => Ok(Value::Bool(b)),
            (Ok(other), None) => Err(wrong_type("bool", &other)),
            (Err(e), None) => Err(e),
        }
    }))
}

fn index_value(target: &Value, index: &Value) -> Result<Value, EvalError> {
    match (target, index) {
        (Value::List(items), Value::Int(i)) => usize::try_from(*i)
            .ok()
            .and_then(|i| items.get(i))
            .cloned()
            .ok_or(EvalError::IndexOutOfRange(*i)),
        (Value::List(items), Value::Double(d)) if d.fract() == 0.0 => {
            index_value(&Value::List(items.clone()), &Value::Int(*d as i64))
        }
        (Value::Map(_), key) => target
            .map_get(key)
            .cloned()
            .ok_or_else(|| EvalError::NoSuchKey(key.to_string().into())),
        (other, _) => Err(wrong_type("list or map", other)),
    }
}

fn to_int(v: &Value) -> Result<Value, EvalError> {
    match v {
        Value::Int(i) => Ok(Value::Int(*i)),
        Value::Double(d) => {
            if d.is_finite() && *d >= -TWO_POW_63 && *d < TWO_POW_63 {
                Ok(Value::Int(d.trunc() as i64))
            } else {
                Err(EvalError::Conversion(
                    format!("{d} does not fit in an int").into(),
                ))
            }
        }
        Value::String(s) => s
            .parse()
            .map(Value::Int)
            .map_err(|_| EvalError::Conversion(format!("'{s}' is not an integer").into())),
        Value::Timestamp(t) => Ok(Value::Int(t.unix_seconds())),
        other => Err(wrong_type("number or string", other)),
    }
}

fn to_double(v: &Value) -> Result<Value, EvalError> {
    match v {
        Value::Int(i) => Ok(Value::Double(*i as f64)),
        Value::Double(d) => Ok(Value::Double(*d)),
        Value::String(s) => s
            .parse()
            .map(Value::Double)
            .map_err(|_| EvalError::Conversion(format!("'{s}' is not a number").into())),
        other => Err(wrong_type("number or string", other)),
    }
}

fn to_string(v: &Value) -> Result<Value, EvalError> {
    Ok(Value::string(match v {
        Value::String(s) => return Ok(Value::String(s.clone())),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Double(d) => d.to_string(),
        Value::Timestamp(t) => format_timestamp(*t),
        Value::Duration(d) => format_duration(*d),
        other => return Err(wrong_type("scalar", other)),
    }))
}

fn to_timestamp(v: &Value) -> Result<Value, EvalError> {
    match v {
        Value::Timestamp(t) => Ok(Value::Timestamp(*t)),
        Value::String(s) => crate::time::parse_instant(s)
            .map(|p| Value::Timestamp(p.at))
            .map_err(|e| EvalError::Conversion(e.into())),
        other => Err(wrong_type("string", other)),
    }
}

fn to_duration(v: &Value) -> Result<Value, EvalError> {
    match v {
        Value::Duration(d) => Ok(Value::Duration(*d)),
        Value::String(s) => crate::time::parse_duration(s)
            .map(Value::Duration)
            .map_err(|e| EvalError::Conversion(e.into())),
        other => Err(wrong_type("string", other)),
    }
}

/// CEL's timestamp accessors, in UTC; `getMonth`, `getDayOfMonth` and `getDayOfYear` count
/// from zero as CEL specifies.
fn timestamp_part(function: &str) -> fn(Timestamp) -> i64 {
    fn day_and_secs(t: Timestamp) -> (i64, i64) {
        let secs = t.0.div_euclid(NANOS_PER_SECOND);
        (secs.div_euclid(86_400), secs.rem_euclid(86_400))
    }
    match function {
        "getFullYear" => |t| crate::time::civil_from_days(day_and_secs(t).0).0,
        "getMonth" => |t| i64::from(crate::time::civil_from_days(day_and_secs(t).0).1) - 1,
        "getDayOfMonth" => |t| i64::from(crate::time::civil_from_days(day_and_secs(t).0).2) - 1,
        "getDate" => |t| i64::from(crate::time::civil_from_days(day_and_secs(t).0).2),
        "getDayOfWeek" => |t| (day_and_secs(t).0 + 4).rem_euclid(7),
        "getDayOfYear" => |t| {
            let days = day_and_secs(t).0;
            let (year, _, _) = crate::time::civil_from_days(days);
            days - crate::time::days_from_civil(year, 1, 1)
        },
        "getHours" => |t| day_and_secs(t).1 / 3600,
        "getMinutes" => |t| day_and_secs(t).1 % 3600 / 60,
        _ => |t| day_and_secs(t).1 % 60,
    }
}
