//! Type checking and compilation in one pass: each syntax node becomes a typed closure.
//!
//! Constants are folded, and reads of a slot compared with a constant (`profile.age > 30`,
//! `profile.country in ['US', 'CA']`) get closures that borrow the slot's value instead of
//! cloning it: that is the shape of almost every marketing rule.

use std::cmp::Ordering;
use std::sync::Arc;

use crate::ast::{BinaryOp, Expr, ExprKind, Literal, Span, UnaryOp};
use crate::env::{Activation, Env, Root, Scope};
use crate::error::{EvalError, ExprError};
use crate::time::{Duration, Timestamp};
use crate::value::{Type, Value};
use crate::{parser, suggest};

mod functions;
mod operators;

use operators::*;

/// A function call's operands, typed and compiled: a method's target first.
struct Operands<'a> {
    function: &'a str,
    /// Called as a method (`text.contains(part)`), not as a function.
    method: bool,
    span: &'a Span,
    exprs: Vec<&'a Expr>,
    types: Vec<Type>,
    compiled: std::vec::IntoIter<Compiled>,
}

type Node = Box<dyn Fn(&Ctx<'_>) -> Result<Value, EvalError> + Send + Sync>;

/// What evaluation sees: the caller's activation, the comprehension variables in scope, and
/// the comprehension steps it may still take.
struct Ctx<'a> {
    act: &'a dyn Activation,
    locals: Option<&'a Local<'a>>,
    steps: &'a std::cell::Cell<u32>,
}

/// Comprehensions nest at most this deep: each level multiplies the work.
const DEEPEST_COMPREHENSION: usize = 3;
/// A list written in an expression holds at most this many items.
const LONGEST_LIST: usize = 1_000;
/// The comprehension steps (one per item visited) one evaluation may take, whatever the
/// data: past them it fails, as any error does, rather than hold a request.
pub const EVALUATION_STEPS: u32 = 100_000;

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
        let steps = std::cell::Cell::new(EVALUATION_STEPS);
        (self.node)(&Ctx {
            act,
            locals: None,
            steps: &steps,
        })
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
        if items.len() > LONGEST_LIST {
            return err(
                &items[LONGEST_LIST].span,
                format!(
                    "a list written here holds at most {LONGEST_LIST} items; put longer ones in a table"
                ),
            );
        }
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

    /// A function or method call: `has` and the comprehensions take their operands
    /// unevaluated; every other function its operands typed and compiled (a method's target
    /// first: the global and method forms of a function share one implementation).
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
        let mut exprs: Vec<&Expr> = target.into_iter().collect();
        exprs.extend(args);
        let mut types = Vec::with_capacity(exprs.len());
        let mut compiled = Vec::with_capacity(exprs.len());
        for e in &exprs {
            let (ty, c) = self.expr(e)?;
            types.push(ty);
            compiled.push(c);
        }
        let operands = Operands {
            function,
            method: target.is_some(),
            span,
            exprs,
            types,
            compiled: compiled.into_iter(),
        };
        match function {
            "size" => functions::size(operands),
            "contains" | "startsWith" | "endsWith" => functions::string_test(operands),
            "matches" => functions::matches(operands),
            "int" | "double" | "string" | "timestamp" | "duration" => {
                functions::conversion(operands)
            }
            "getFullYear" | "getMonth" | "getDayOfMonth" | "getDate" | "getDayOfWeek"
            | "getDayOfYear" | "getHours" | "getMinutes" | "getSeconds" => {
                functions::timestamp_field(operands)
            }
            _ => functions::unknown(function, span),
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
        if self.locals.len() >= DEEPEST_COMPREHENSION {
            return err(
                span,
                format!(
                    "comprehensions nest at most {DEEPEST_COMPREHENSION} deep: each level \
                     multiplies the work; split the condition or name a segment for the inner part"
                ),
            );
        }
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
            let left = ctx.steps.get();
            if left == 0 {
                return Err(EvalError::TooCostly(EVALUATION_STEPS));
            }
            ctx.steps.set(left - 1);
            let inner = Ctx {
                act: ctx.act,
                locals: Some(&frame),
                steps: ctx.steps,
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
