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
