//! Tokens of CEL syntax.

use crate::ast::Span;
use crate::error::ExprError;

#[derive(Clone, Debug, PartialEq)]
pub enum Token {
    Int(i64),
    Double(f64),
    Str(String),
    Ident(String),
    True,
    False,
    Null,
    In,
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Dot,
    Comma,
    Colon,
    Question,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Bang,
    EqEq,
    NotEq,
    Lt,
    Le,
    Gt,
    Ge,
    AndAnd,
    OrOr,
    Eof,
}

impl Token {
    pub fn describe(&self) -> String {
        match self {
            Token::Int(i) => format!("number {i}"),
            Token::Double(d) => format!("number {d}"),
            Token::Str(_) => "a string".into(),
            Token::Ident(name) => format!("'{name}'"),
            Token::Eof => "the end of the expression".into(),
            other => format!("'{}'", other.symbol()),
        }
    }

    fn symbol(&self) -> &'static str {
        match self {
            Token::True => "true",
            Token::False => "false",
            Token::Null => "null",
            Token::In => "in",
            Token::LParen => "(",
            Token::RParen => ")",
            Token::LBracket => "[",
            Token::RBracket => "]",
            Token::LBrace => "{",
            Token::RBrace => "}",
            Token::Dot => ".",
            Token::Comma => ",",
            Token::Colon => ":",
            Token::Question => "?",
            Token::Plus => "+",
            Token::Minus => "-",
            Token::Star => "*",
            Token::Slash => "/",
            Token::Percent => "%",
            Token::Bang => "!",
            Token::EqEq => "==",
            Token::NotEq => "!=",
            Token::Lt => "<",
            Token::Le => "<=",
            Token::Gt => ">",
            Token::Ge => ">=",
            Token::AndAnd => "&&",
            Token::OrOr => "||",
            _ => "",
        }
    }
}

/// Words CEL reserves for future use; an identifier may not be one of them.
const RESERVED: &[&str] = &[
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];

pub fn tokenize(src: &str) -> Result<Vec<(Token, Span)>, ExprError> {
    let mut lexer = Lexer {
        src,
        bytes: src.as_bytes(),
        pos: 0,
    };
    let mut tokens = Vec::new();
    loop {
        lexer.skip_trivia();
        let start = lexer.pos;
        let token = lexer.next_token()?;
        let done = token == Token::Eof;
        tokens.push((token, start..lexer.pos));
        if done {
            return Ok(tokens);
        }
    }
}

struct Lexer<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.bytes.get(self.pos + ahead).copied()
    }

    fn skip_trivia(&mut self) {
        while let Some(b) = self.peek() {
            if b.is_ascii_whitespace() {
                self.pos += 1;
            } else if b == b'/' && self.peek_at(1) == Some(b'/') {
                while self.peek().is_some_and(|b| b != b'\n') {
                    self.pos += 1;
                }
            } else {
                break;
            }
        }
    }

    fn error(&self, start: usize, message: impl Into<String>) -> ExprError {
        ExprError::new(
            start..self.pos.max(start + 1).min(self.src.len().max(start + 1)),
            message,
        )
    }

    fn next_token(&mut self) -> Result<Token, ExprError> {
        let start = self.pos;
        let Some(b) = self.peek() else {
            return Ok(Token::Eof);
        };
        let two = |l: &mut Self, t: Token| {
            l.pos += 2;
            Ok(t)
        };
        let one = |l: &mut Self, t: Token| {
            l.pos += 1;
            Ok(t)
        };
        match (b, self.peek_at(1)) {
            (b'=', Some(b'=')) => two(self, Token::EqEq),
            (b'!', Some(b'=')) => two(self, Token::NotEq),
            (b'<', Some(b'=')) => two(self, Token::Le),
            (b'>', Some(b'=')) => two(self, Token::Ge),
            (b'&', Some(b'&')) => two(self, Token::AndAnd),
            (b'|', Some(b'|')) => two(self, Token::OrOr),
            (b'(', _) => one(self, Token::LParen),
            (b')', _) => one(self, Token::RParen),
            (b'[', _) => one(self, Token::LBracket),
            (b']', _) => one(self, Token::RBracket),
            (b'{', _) => one(self, Token::LBrace),
            (b'}', _) => one(self, Token::RBrace),
            (b'.', Some(d)) if d.is_ascii_digit() => self.number(start),
            (b'.', _) => one(self, Token::Dot),
            (b',', _) => one(self, Token::Comma),
            (b':', _) => one(self, Token::Colon),
            (b'?', _) => one(self, Token::Question),
            (b'+', _) => one(self, Token::Plus),
            (b'-', _) => one(self, Token::Minus),
            (b'*', _) => one(self, Token::Star),
            (b'/', _) => one(self, Token::Slash),
            (b'%', _) => one(self, Token::Percent),
            (b'!', _) => one(self, Token::Bang),
            (b'<', _) => one(self, Token::Lt),
            (b'>', _) => one(self, Token::Gt),
            (b'=', _) => {
                self.pos += 1;
                Err(self.error(start, "'=' is not an operator; compare with '=='"))
            }
            (b'&' | b'|', _) => {
                self.pos += 1;
                let op = b as char;
                Err(self.error(start, format!("'{op}' is not an operator; use '{op}{op}'")))
            }
            (b'\'' | b'"', _) => self.string(start, false),
            (b'r' | b'R', Some(b'\'' | b'"')) => {
                self.pos += 1;
                self.string(start, true)
            }
            (b'b' | b'B', Some(b'\'' | b'"')) => {
                self.pos += 2;
                Err(self.error(start, "byte strings are not supported"))
            }
            (d, _) if d.is_ascii_digit() => self.number(start),
            (c, _) if c.is_ascii_alphabetic() || c == b'_' => Ok(self.word(start)?),
            _ => {
                let ch = self.src[start..].chars().next().unwrap_or('?');
                self.pos += ch.len_utf8();
                Err(self.error(start, format!("unexpected character '{ch}'")))
            }
        }
    }

    fn word(&mut self, start: usize) -> Result<Token, ExprError> {
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            self.pos += 1;
        }
        let word = &self.src[start..self.pos];
        Ok(match word {
            "true" => Token::True,
            "false" => Token::False,
            "null" => Token::Null,
            "in" => Token::In,
            w if RESERVED.contains(&w) => {
                return Err(self.error(start, format!("'{w}' is a reserved word")));
            }
            w => Token::Ident(w.to_string()),
        })
    }

    fn number(&mut self, start: usize) -> Result<Token, ExprError> {
        if self.peek() == Some(b'0') && matches!(self.peek_at(1), Some(b'x' | b'X')) {
            self.pos += 2;
            let digits_start = self.pos;
            while self.peek().is_some_and(|b| b.is_ascii_hexdigit()) {
                self.pos += 1;
            }
            let digits = &self.src[digits_start..self.pos];
            self.reject_unsigned(start)?;
            return i64::from_str_radix(digits, 16)
                .map(Token::Int)
                .map_err(|_| self.error(start, "hexadecimal number is malformed or too large"));
        }
        let mut is_double = false;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        if self.peek() == Some(b'.') && self.peek_at(1).is_some_and(|b| b.is_ascii_digit()) {
            is_double = true;
            self.pos += 1;
            while self.peek().is_some_and(|b| b.is_ascii_digit()) {
                self.pos += 1;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            let save = self.pos;
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.peek().is_some_and(|b| b.is_ascii_digit()) {
                is_double = true;
                while self.peek().is_some_and(|b| b.is_ascii_digit()) {
                    self.pos += 1;
                }
            } else {
                self.pos = save;
            }
        }
        let text = &self.src[start..self.pos];
        if is_double {
            return text
                .parse::<f64>()
                .map(Token::Double)
                .map_err(|_| self.error(start, "malformed number"));
        }
        self.reject_unsigned(start)?;
        text.parse::<i64>()
            .map(Token::Int)
            .map_err(|_| self.error(start, format!("integer {text} is too large")))
    }

    fn reject_unsigned(&mut self, start: usize) -> Result<(), ExprError> {
        if matches!(self.peek(), Some(b'u' | b'U')) {
            self.pos += 1;
            return Err(self.error(start, "unsigned integers are not supported; drop the 'u'"));
        }
        Ok(())
    }

    fn string(&mut self, start: usize, raw: bool) -> Result<Token, ExprError> {
        let quote = self.bytes[self.pos];
        let triple = self.peek_at(1) == Some(quote) && self.peek_at(2) == Some(quote);
        self.pos += if triple { 3 } else { 1 };
        let mut out = String::new();
        loop {
            let Some(b) = self.peek() else {
                return Err(self.error(start, "string is not closed"));
            };
            if b == quote
                && (!triple || (self.peek_at(1) == Some(quote) && self.peek_at(2) == Some(quote)))
            {
                self.pos += if triple { 3 } else { 1 };
                return Ok(Token::Str(out));
            }
            if (b == b'\n' || b == b'\r') && !triple {
                return Err(self.error(start, "string is not closed before the end of the line"));
            }
            if b == b'\\' && !raw {
                self.escape(&mut out)?;
                continue;
            }
            let ch = self.src[self.pos..].chars().next().unwrap_or('\u{fffd}');
            out.push(ch);
            self.pos += ch.len_utf8();
        }
    }

    fn escape(&mut self, out: &mut String) -> Result<(), ExprError> {
        let start = self.pos;
        self.pos += 1;
        let Some(b) = self.peek() else {
            return Err(self.error(start, "string is not closed"));
        };
        self.pos += 1;
        let simple = match b {
            b'\\' => Some('\\'),
            b'\'' => Some('\''),
            b'"' => Some('"'),
            b'`' => Some('`'),
            b'?' => Some('?'),
            b'n' => Some('\n'),
            b'r' => Some('\r'),
            b't' => Some('\t'),
            b'a' => Some('\u{7}'),
            b'b' => Some('\u{8}'),
            b'f' => Some('\u{c}'),
            b'v' => Some('\u{b}'),
            _ => None,
        };
        if let Some(c) = simple {
            out.push(c);
            return Ok(());
        }
        let (radix, len) = match b {
            b'x' | b'X' => (16, 2),
            b'u' => (16, 4),
            b'U' => (16, 8),
            b'0'..=b'3' => {
                self.pos -= 1;
                (8, 3)
            }
            _ => return Err(self.error(start, format!("unknown escape '\\{}'", b as char))),
        };
        let digits = self
            .src
            .get(self.pos..self.pos + len)
            .ok_or_else(|| self.error(start, "escape sequence is cut short"))?;
        let code = u32::from_str_radix(digits, radix)
            .map_err(|_| self.error(start, "escape sequence is malformed"))?;
        self.pos += len;
        let ch = char::from_u32(code)
            .ok_or_else(|| self.error(start, "escape is not a valid character"))?;
        out.push(ch);
        Ok(())
    }
}
