//! No input makes the compiler or a compiled program panic: any text either compiles or gets
//! a located error, and any compiled program evaluates to a value or an error.

use kairos_rules::{Bindings, Env, Expected, Root, Scope, Value, compile};
use proptest::prelude::*;

/// Fragments of CEL, so that generated text is often nearly valid and reaches deep code.
fn cel_soup() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "profile.",
        "session.",
        "event.",
        "offer.",
        "patterns.",
        "segments",
        "now",
        "age",
        "x",
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        ",",
        ":",
        "?",
        ".",
        "+",
        "-",
        "*",
        "/",
        "%",
        "!",
        "==",
        "!=",
        "<",
        ">=",
        "&&",
        "||",
        " in ",
        "1",
        "0",
        "-9223372036854775808",
        "2.5",
        "1e308",
        "'s'",
        "\"t\"",
        "'''x'''",
        "r'\\d'",
        "true",
        "null",
        "has(",
        "size(",
        ".exists(v, ",
        ".map(v, ",
        "v",
        "int(",
        "timestamp('2026-01-01')",
        "duration('1h')",
        ".matches('a+')",
        ".startsWith(",
        "'\\u00e9'",
        "'\\x'",
        " ",
    ]);
    prop::collection::vec(piece, 0..40).prop_map(|p| p.concat())
}

fn exercise(src: &str) {
    for scope in [
        Scope::default(),
        Scope {
            event: true,
            offer: false,
        },
        Scope {
            event: false,
            offer: true,
        },
    ] {
        let mut env = Env::new();
        env.set_segments(["a", "b"]);
        if let Ok(program) = compile(src, &mut env, scope, Expected::Any) {
            let empty = Bindings::new(&env);
            let _ = program.eval(&empty);
            let mut full = Bindings::new(&env);
            for root in Root::ALL {
                for (name, _) in env.slots(root).to_vec() {
                    full.set(
                        &env,
                        root,
                        &name,
                        Value::list([Value::Int(1), Value::from("x")]),
                    );
                }
            }
            let _ = program.eval(&full);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(src in any::<String>()) {
        exercise(&src);
    }

    #[test]
    fn near_valid_expressions_never_panic(src in cel_soup()) {
        exercise(&src);
    }
}

/// What an expression may cost is bounded twice: at compile time (how deep comprehensions
/// nest, how long a written list is) with a located error, and at evaluation (comprehension
/// steps) whatever the data.
#[test]
fn expression_cost_is_bounded_when_compiled_and_when_run() {
    let mut env = Env::new();
    let compiled = |src: &str, env: &mut Env| compile(src, env, Scope::default(), Expected::Any);
    let deep = "[1].exists(a, [1].exists(b, [1].exists(c, [1].exists(d, d == 1))))";
    let refused = compiled(deep, &mut env).unwrap_err();
    assert!(
        refused
            .message
            .starts_with("comprehensions nest at most 3 deep"),
        "{refused}"
    );
    assert_eq!(
        refused.line_col(deep),
        (1, 43),
        "located at the fourth level"
    );

    let long = format!("[{}].size() > 0", vec!["1"; 1001].join(","));
    let refused = compiled(&long, &mut env).unwrap_err();
    assert!(
        refused
            .message
            .starts_with("a list written here holds at most 1000 items"),
        "{refused}"
    );

    // Three levels over 100 items are a million steps: stopped at the budget, not run out.
    let hundred = format!(
        "[{}]",
        (0..100)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    let costly =
        format!("{hundred}.exists(a, {hundred}.exists(b, {hundred}.exists(c, a + b + c < 0)))");
    let program = compiled(&costly, &mut env).unwrap();
    let error = program.eval(&Bindings::new(&env)).unwrap_err();
    assert_eq!(
        error.to_string(),
        "the expression took more than 100000 comprehension steps"
    );
    let cheap = format!("{hundred}.exists(a, {hundred}.exists(b, a + b == 198))");
    assert_eq!(
        compiled(&cheap, &mut env)
            .unwrap()
            .eval(&Bindings::new(&env)),
        Ok(Value::Bool(true))
    );
}
