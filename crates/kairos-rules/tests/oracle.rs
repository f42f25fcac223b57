//! Property test: for generated well-typed expressions and visitors, our compiled closures agree
//! with the `cel` crate's interpreter (a test-only oracle) on every value and every error.

use std::collections::HashMap;
use std::sync::Arc;

use kairos_rules::{Bindings, Env, Expected, Root, Scope, Type, Value, compile};
use proptest::prelude::*;

const INTS: [&str; 3] = ["i1", "i2", "i3"];
const DOUBLES: [&str; 2] = ["d1", "d2"];
const STRINGS: [&str; 2] = ["s1", "s2"];
const BOOLS: [&str; 1] = ["b1"];

fn small_int() -> impl Strategy<Value = i64> {
    prop_oneof![-20i64..20, Just(i64::MAX), Just(i64::MIN + 1)]
}

fn word() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["", "a", "ab", "spring", "US", "CA", "héllo"])
        .prop_map(str::to_string)
}

fn quote(s: &str) -> String {
    format!("'{s}'")
}

fn int_expr() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        prop::sample::select(INTS.to_vec()).prop_map(|v| format!("profile.{v}")),
        (-20i64..20).prop_map(|i| i.to_string()),
        prop::sample::select(STRINGS.to_vec()).prop_map(|v| format!("size(profile.{v})")),
    ];
    leaf.prop_recursive(4, 24, 2, |inner| {
        prop_oneof![
            (
                inner.clone(),
                prop::sample::select(vec!["+", "-", "*", "/", "%"]),
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            (bool_leaf(), inner.clone(), inner).prop_map(|(c, a, b)| format!("({c} ? {a} : {b})")),
        ]
    })
}

fn double_expr() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        prop::sample::select(DOUBLES.to_vec()).prop_map(|v| format!("profile.{v}")),
        (-40i64..40).prop_map(|i| format!("{:?}", i as f64 / 4.0)),
    ];
    leaf.prop_recursive(3, 16, 2, |inner| {
        prop_oneof![
            (
                inner.clone(),
                prop::sample::select(vec!["+", "-", "*"]),
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            (inner, 1i64..8).prop_map(|(a, d)| format!("({a} / {d}.0)")),
        ]
    })
}

fn string_expr() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        prop::sample::select(STRINGS.to_vec()).prop_map(|v| format!("profile.{v}")),
        word().prop_map(|w| quote(&w)),
    ];
    leaf.prop_recursive(2, 8, 2, |inner| {
        (inner.clone(), inner).prop_map(|(a, b)| format!("({a} + {b})"))
    })
}

fn bool_leaf() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(BOOLS.to_vec()).prop_map(|v| format!("profile.{v}")),
        any::<bool>().prop_map(|b| b.to_string()),
        (prop::sample::select(INTS.to_vec()), small_int())
            .prop_map(|(v, i)| format!("profile.{v} > {i}")),
    ]
}

fn bool_expr() -> impl Strategy<Value = String> {
    let cmp = prop::sample::select(vec!["==", "!=", "<", "<=", ">", ">="]);
    let atom = prop_oneof![
        bool_leaf(),
        (int_expr(), cmp.clone(), int_expr()).prop_map(|(a, op, b)| format!("{a} {op} {b}")),
        (double_expr(), cmp.clone(), double_expr()).prop_map(|(a, op, b)| format!("{a} {op} {b}")),
        (string_expr(), cmp, string_expr()).prop_map(|(a, op, b)| format!("{a} {op} {b}")),
        (string_expr(), prop::collection::vec(word(), 0..4)).prop_map(|(a, ws)| {
            let list: Vec<String> = ws.iter().map(|w| quote(w)).collect();
            format!("{a} in [{}]", list.join(", "))
        }),
        (int_expr(), prop::collection::vec(-5i64..5, 0..4)).prop_map(|(a, is)| {
            let list: Vec<String> = is.iter().map(i64::to_string).collect();
            format!("{a} in [{}]", list.join(", "))
        }),
        (
            string_expr(),
            prop::sample::select(vec!["startsWith", "endsWith", "contains"]),
            word()
        )
            .prop_map(|(a, f, w)| format!("{a}.{f}({})", quote(&w))),
    ];
    atom.prop_recursive(3, 24, 2, |inner| {
        prop_oneof![
            (
                inner.clone(),
                prop::sample::select(vec!["&&", "||"]),
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            inner.clone().prop_map(|a| format!("!({a})")),
            (inner.clone(), inner.clone(), inner)
                .prop_map(|(c, a, b)| format!("({c} ? {a} : {b})")),
        ]
    })
}

#[derive(Clone, Debug)]
struct Visitor {
    ints: Vec<i64>,
    doubles: Vec<f64>,
    strings: Vec<String>,
    flag: bool,
}

fn visitor() -> impl Strategy<Value = Visitor> {
    (
        prop::collection::vec(small_int(), 3),
        prop::collection::vec((-40i64..40).prop_map(|i| i as f64 / 4.0), 2),
        prop::collection::vec(word(), 2),
        any::<bool>(),
    )
        .prop_map(|(ints, doubles, strings, flag)| Visitor {
            ints,
            doubles,
            strings,
            flag,
        })
}

fn typed_env() -> Env {
    let mut env = Env::new();
    for v in INTS {
        env.declare(Root::Profile, v, Type::Int);
    }
    for v in DOUBLES {
        env.declare(Root::Profile, v, Type::Double);
    }
    for v in STRINGS {
        env.declare(Root::Profile, v, Type::String);
    }
    env.declare(Root::Profile, "b1", Type::Bool);
    env.close(Root::Profile);
    env
}

fn ours(src: &str, v: &Visitor) -> Result<Value, String> {
    let mut env = typed_env();
    let program = compile(src, &mut env, Scope::default(), Expected::Any)
        .unwrap_or_else(|e| panic!("generated expression must compile: {src}: {e}"));
    let mut b = Bindings::new(&env);
    for (name, i) in INTS.iter().zip(&v.ints) {
        b.set(&env, Root::Profile, name, Value::Int(*i));
    }
    for (name, d) in DOUBLES.iter().zip(&v.doubles) {
        b.set(&env, Root::Profile, name, Value::Double(*d));
    }
    for (name, s) in STRINGS.iter().zip(&v.strings) {
        b.set(&env, Root::Profile, name, Value::from(s.as_str()));
    }
    b.set(&env, Root::Profile, "b1", Value::Bool(v.flag));
    program.eval(&b).map_err(|e| e.to_string())
}

fn oracle(src: &str, v: &Visitor) -> Result<cel::Value, String> {
    let program = cel::Program::compile(src).map_err(|e| format!("cel parse: {e}"))?;
    let mut profile: HashMap<String, cel::Value> = HashMap::new();
    for (name, i) in INTS.iter().zip(&v.ints) {
        profile.insert(name.to_string(), cel::Value::Int(*i));
    }
    for (name, d) in DOUBLES.iter().zip(&v.doubles) {
        profile.insert(name.to_string(), cel::Value::Float(*d));
    }
    for (name, s) in STRINGS.iter().zip(&v.strings) {
        profile.insert(name.to_string(), cel::Value::String(Arc::new(s.clone())));
    }
    profile.insert("b1".into(), cel::Value::Bool(v.flag));
    let mut ctx = cel::Context::default();
    ctx.add_variable_from_value("profile", profile);
    program.execute(&ctx).map_err(|e| e.to_string())
}

fn same(ours: &Value, theirs: &cel::Value) -> bool {
    match (ours, theirs) {
        (Value::Bool(a), cel::Value::Bool(b)) => a == b,
        (Value::Int(a), cel::Value::Int(b)) => a == b,
        (Value::Double(a), cel::Value::Float(b)) => a == b || (a.is_nan() && b.is_nan()),
        (Value::String(a), cel::Value::String(b)) => **a == **b,
        _ => false,
    }
}

fn agree(src: &str, v: &Visitor) -> Result<(), TestCaseError> {
    match (ours(src, v), oracle(src, v)) {
        (Ok(a), Ok(b)) => prop_assert!(same(&a, &b), "{src} with {v:?}: ours {a}, cel {b:?}"),
        (Err(_), Err(_)) => {}
        (a, b) => prop_assert!(false, "{src} with {v:?}: ours {a:?}, cel {b:?}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn conditions_agree_with_cel(src in bool_expr(), v in visitor()) {
        agree(&src, &v)?;
    }

    #[test]
    fn integer_arithmetic_agrees_with_cel(src in int_expr(), v in visitor()) {
        agree(&src, &v)?;
    }

    #[test]
    fn double_arithmetic_agrees_with_cel(src in double_expr(), v in visitor()) {
        agree(&src, &v)?;
    }

    #[test]
    fn strings_agree_with_cel(src in string_expr(), v in visitor()) {
        agree(&src, &v)?;
    }
}
