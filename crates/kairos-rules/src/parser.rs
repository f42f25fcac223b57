//! A recursive-descent parser for CEL syntax with located errors and a nesting limit.

use crate::ast::{BinaryOp, Expr, ExprKind, Literal, Span, UnaryOp};
use crate::error::ExprError;
use crate::lexer::{Token, tokenize};

/// The longest expression accepted, in bytes.
pub const MAX_EXPRESSION_LENGTH: usize = 4096;
/// The deepest nesting accepted (parentheses, operators, calls, lists).
pub const MAX_NESTING_DEPTH: usize = 32;

pub fn parse(src: &str) -> Result<Expr, ExprError> {
    if src.len() > MAX_EXPRESSION_LENGTH {
        return Err(ExprError::new(
            0..src.len(),
            format!(
                "expression is too long ({} characters; the limit is {MAX_EXPRESSION_LENGTH})",
                src.len()
            ),
        ));
    }
    let tokens = tokenize(src)?;
    let mut parser = Parser {
        tokens,
        pos: 0,
        depth: 0,
    };
    if parser.peek() == &Token::Eof {
        return Err(ExprError::new(0..src.len(), "expression is empty"));
    }
    let expr = parser.expr()?;
    match parser.peek() {
        Token::Eof => Ok(expr),
        other => {
            let message = format!(
                "unexpected {} after a complete expression",
                other.describe()
            );
            Err(ExprError::new(parser.span(), message))
        }
    }
}

struct Parser {
    tokens: Vec<(Token, Span)>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.tokens[self.pos].0
    }

    fn span(&self) -> Span {
        self.tokens[self.pos].1.clone()
    }

    fn bump(&mut self) -> (Token, Span) {
        let item = self.tokens[self.pos].clone();
        if self.pos + 1 < self.tokens.len() {
            self.pos += 1;
        }
        item
    }

    fn eat(&mut self, token: &Token) -> bool {
        if self.peek() == token {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, token: &Token, what: &str) -> Result<Span, ExprError> {
        if self.peek() == token {
            Ok(self.bump().1)
        } else {
            Err(ExprError::new(
                self.span(),
                format!("expected {what}, found {}", self.peek().describe()),
            ))
        }
    }

    fn enter(&mut self) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth > MAX_NESTING_DEPTH {
            return Err(ExprError::new(
                self.span(),
                format!("expression nests too deeply (the limit is {MAX_NESTING_DEPTH} levels)"),
            ));
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Expr, ExprError> {
        self.enter()?;
        let cond = self.binary(0)?;
        let result = if self.eat(&Token::Question) {
            let then = self.binary(0)?;
            self.expect(&Token::Colon, "':' of a conditional")?;
            let otherwise = self.expr()?;
            let span = cond.span.start..otherwise.span.end;
            Expr {
                kind: ExprKind::Conditional {
                    cond: Box::new(cond),
                    then: Box::new(then),
                    otherwise: Box::new(otherwise),
                },
                span,
            }
        } else {
            cond
        };
        self.depth -= 1;
        Ok(result)
    }

    /// Precedence climbing over CEL's binary levels: || < && < relations < +,- < *,/,%.
    /// Each repeated operator nests the tree one level deeper, so it counts against the limit.
    fn binary(&mut self, level: usize) -> Result<Expr, ExprError> {
        const LEVELS: usize = 5;
        if level == LEVELS {
            return self.unary();
        }
        let depth_on_entry = self.depth;
        let result = self.binary_chain(level);
        self.depth = depth_on_entry;
        result
    }

    fn binary_chain(&mut self, level: usize) -> Result<Expr, ExprError> {
        let mut lhs = self.binary(level + 1)?;
        loop {
            let op = match (level, self.peek()) {
                (0, Token::OrOr) => BinaryOp::Or,
                (1, Token::AndAnd) => BinaryOp::And,
                (2, Token::EqEq) => BinaryOp::Eq,
                (2, Token::NotEq) => BinaryOp::Ne,
                (2, Token::Lt) => BinaryOp::Lt,
                (2, Token::Le) => BinaryOp::Le,
                (2, Token::Gt) => BinaryOp::Gt,
                (2, Token::Ge) => BinaryOp::Ge,
                (2, Token::In) => BinaryOp::In,
                (3, Token::Plus) => BinaryOp::Add,
                (3, Token::Minus) => BinaryOp::Sub,
                (4, Token::Star) => BinaryOp::Mul,
                (4, Token::Slash) => BinaryOp::Div,
                (4, Token::Percent) => BinaryOp::Rem,
                _ => return Ok(lhs),
            };
            self.bump();
            self.enter()?;
            let rhs = self.binary(level + 1)?;
            let span = lhs.span.start..rhs.span.end;
            lhs = Expr {
                kind: ExprKind::Binary {
                    op,
                    lhs: Box::new(lhs),
                    rhs: Box::new(rhs),
                },
                span,
            };
        }
    }

    fn unary(&mut self) -> Result<Expr, ExprError> {
        let op = match self.peek() {
            Token::Bang => UnaryOp::Not,
            Token::Minus => UnaryOp::Neg,
            _ => return self.member(),
        };
        let (_, start) = self.bump();
        self.enter()?;
        // Fold `-<number>` into a literal: constants stay constants for the checker.
        let operand = match (op, self.peek().clone()) {
            (UnaryOp::Neg, Token::Int(_) | Token::Double(_)) => self.member()?,
            _ => self.unary()?,
        };
        self.depth -= 1;
        let span = start.start..operand.span.end;
        let kind = match (op, &operand.kind) {
            (UnaryOp::Neg, ExprKind::Literal(Literal::Int(i))) => {
                ExprKind::Literal(Literal::Int(i.wrapping_neg()))
            }
            (UnaryOp::Neg, ExprKind::Literal(Literal::Double(d))) => {
                ExprKind::Literal(Literal::Double(-d))
            }
            _ => ExprKind::Unary {
                op,
                operand: Box::new(operand),
            },
        };
        Ok(Expr { kind, span })
    }

    /// Each `.field`, call or `[index]` nests the tree one level deeper.
    fn member(&mut self) -> Result<Expr, ExprError> {
        let depth_on_entry = self.depth;
        let result = self.member_chain();
        self.depth = depth_on_entry;
        result
    }

    fn member_chain(&mut self) -> Result<Expr, ExprError> {
        let mut expr = self.primary()?;
        loop {
            if matches!(self.peek(), Token::Dot | Token::LBracket) {
                self.enter()?;
            }
            match self.peek() {
                Token::Dot => {
                    self.bump();
                    let (token, span) = self.bump();
                    let Token::Ident(field) = token else {
                        return Err(ExprError::new(
                            span,
                            format!(
                                "expected a field name after '.', found {}",
                                token.describe()
                            ),
                        ));
                    };
                    if self.peek() == &Token::LParen {
                        self.bump();
                        let (args, end) = self.args(&Token::RParen, "')'")?;
                        let span = expr.span.start..end;
                        expr = Expr {
                            kind: ExprKind::Call {
                                target: Some(Box::new(expr)),
                                function: field,
                                args,
                            },
                            span,
                        };
                    } else {
                        let span_all = expr.span.start..span.end;
                        expr = Expr {
                            kind: ExprKind::Select {
                                operand: Box::new(expr),
                                field,
                            },
                            span: span_all,
                        };
                    }
                }
                Token::LBracket => {
                    self.bump();
                    self.enter()?;
                    let index = self.expr()?;
                    self.depth -= 1;
                    let end = self.expect(&Token::RBracket, "']'")?.end;
                    let span = expr.span.start..end;
                    expr = Expr {
                        kind: ExprKind::Index {
                            operand: Box::new(expr),
                            index: Box::new(index),
                        },
                        span,
                    };
                }
                _ => return Ok(expr),
            }
        }
    }

    /// Comma-separated expressions up to `close` (a trailing comma is allowed).
    fn args(&mut self, close: &Token, what: &str) -> Result<(Vec<Expr>, usize), ExprError> {
        self.enter()?;
        let mut args = Vec::new();
        while self.peek() != close {
            args.push(self.expr()?);
            if !self.eat(&Token::Comma) {
                break;
            }
        }
        let end = self.expect(close, what)?.end;
        self.depth -= 1;
        Ok((args, end))
    }

    fn primary(&mut self) -> Result<Expr, ExprError> {
        let (token, span) = self.bump();
        let literal = |lit| {
            Ok(Expr {
                kind: ExprKind::Literal(lit),
                span: span.clone(),
            })
        };
        match token {
            Token::Int(i) => literal(Literal::Int(i)),
            Token::Double(d) => literal(Literal::Double(d)),
            Token::Str(s) => literal(Literal::String(s)),
            Token::True => literal(Literal::Bool(true)),
            Token::False => literal(Literal::Bool(false)),
            Token::Null => literal(Literal::Null),
            Token::Ident(name) => {
                if self.peek() == &Token::LParen {
                    self.bump();
                    let (args, end) = self.args(&Token::RParen, "')'")?;
                    Ok(Expr {
                        kind: ExprKind::Call {
                            target: None,
                            function: name,
                            args,
                        },
                        span: span.start..end,
                    })
                } else {
                    Ok(Expr {
                        kind: ExprKind::Ident(name),
                        span,
                    })
                }
            }
            Token::LParen => {
                self.enter()?;
                let inner = self.expr()?;
                self.depth -= 1;
                let end = self.expect(&Token::RParen, "')'")?.end;
                Ok(Expr {
                    kind: inner.kind,
                    span: span.start..end,
                })
            }
            Token::LBracket => {
                let (items, end) = self.args(&Token::RBracket, "']' or ','")?;
                Ok(Expr {
                    kind: ExprKind::List(items),
                    span: span.start..end,
                })
            }
            Token::LBrace => {
                self.enter()?;
                let mut entries = Vec::new();
                while self.peek() != &Token::RBrace {
                    let key = self.expr()?;
                    self.expect(&Token::Colon, "':' between a map key and its value")?;
                    let value = self.expr()?;
                    entries.push((key, value));
                    if !self.eat(&Token::Comma) {
                        break;
                    }
                }
                let end = self.expect(&Token::RBrace, "'}' or ','")?.end;
                self.depth -= 1;
                Ok(Expr {
                    kind: ExprKind::Map(entries),
                    span: span.start..end,
                })
            }
            Token::Eof => Err(ExprError::new(span, "expression ends too early")),
            other => Err(ExprError::new(
                span,
                format!("unexpected {}", other.describe()),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ops::Add;

    fn err(src: &str) -> String {
        parse(src).unwrap_err().message
    }

    #[test]
    fn precedence_follows_cel() {
        let e = parse("a || b && c == 1 + 2 * 3").unwrap();
        let ExprKind::Binary {
            op: BinaryOp::Or,
            rhs,
            ..
        } = e.kind
        else {
            panic!()
        };
        let ExprKind::Binary {
            op: BinaryOp::And,
            rhs,
            ..
        } = rhs.kind
        else {
            panic!()
        };
        let ExprKind::Binary {
            op: BinaryOp::Eq,
            rhs,
            ..
        } = rhs.kind
        else {
            panic!()
        };
        assert!(matches!(
            rhs.kind,
            ExprKind::Binary {
                op: BinaryOp::Add,
                ..
            }
        ));
    }

    #[test]
    fn negative_literals_fold() {
        assert_eq!(
            parse("-9223372036854775807").unwrap().kind,
            ExprKind::Literal(Literal::Int(-9223372036854775807))
        );
        assert_eq!(
            parse("-5").unwrap().kind,
            ExprKind::Literal(Literal::Int(-5))
        );
    }

    #[test]
    fn errors_are_located_and_specific() {
        let e = parse("profile.age > ").unwrap_err();
        assert_eq!(e.message, "expression ends too early");
        assert_eq!(e.span.start, 14);
        assert_eq!(err("a = 1"), "'=' is not an operator; compare with '=='");
        assert_eq!(err("a & b"), "'&' is not an operator; use '&&'");
        assert_eq!(err("'open"), "string is not closed");
        assert_eq!(
            err("f(1, 2"),
            "expected ')', found the end of the expression"
        );
        assert_eq!(err("a b"), "unexpected 'b' after a complete expression");
        assert_eq!(err(""), "expression is empty");
        assert_eq!(err("if"), "'if' is a reserved word");
    }

    #[test]
    fn limits_are_enforced() {
        let deep = format!("{}1{}", "(".repeat(40), ")".repeat(40));
        assert!(err(&deep).contains("nests too deeply"));
        assert!(
            parse(&"a || ".repeat(20).add("a")).is_ok(),
            "20 terms are fine"
        );
        assert!(err(&"a || ".repeat(40).add("a")).contains("nests too deeply"));
        assert!(err(&format!("a{}", ".b".repeat(40))).contains("nests too deeply"));
        assert!(err(&format!("a{}", "[0]".repeat(40))).contains("nests too deeply"));
        let long = "a || ".repeat(1000) + "a";
        assert!(err(&long).contains("too long"));
    }
}
