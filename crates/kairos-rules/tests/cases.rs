//! Runs `cases.txt`: every line an expression, the visitor it is evaluated for, and the result.

use kairos_rules::time::parse_instant;
use kairos_rules::{Bindings, Env, Expected, Root, Scope, Type, Value, compile};

fn visitor_env() -> Env {
    let mut env = Env::new();
    env.declare(Root::Profile, "age", Type::Int);
    env.declare(Root::Profile, "country", Type::String);
    env.declare(Root::Profile, "balance", Type::Double);
    env.declare(Root::Profile, "vip", Type::Bool);
    env.declare(Root::Profile, "email", Type::String);
    let row = Type::Map(Box::new(Type::String), Box::new(Type::Dyn));
    env.declare(Root::Profile, "accounts", Type::List(Box::new(row)));
    env.close(Root::Profile);
    env.set_segments(["high_value", "young"]);
    env
}

fn visitor(env: &Env) -> Bindings {
    let mut b = Bindings::new(env);
    b.set(env, Root::Profile, "age", Value::Int(42));
    b.set(env, Root::Profile, "country", Value::from("US"));
    b.set(env, Root::Profile, "balance", Value::Double(12500.5));
    b.set(env, Root::Profile, "vip", Value::Bool(true));
    let account = |kind: &str, balance: i64| {
        Value::map([
            (Value::from("type"), Value::from(kind)),
            (Value::from("balance"), Value::Int(balance)),
        ])
    };
    b.set(
        env,
        Root::Profile,
        "accounts",
        Value::list([account("mortgage", 1000), account("savings", 200)]),
    );
    b.set(env, Root::Session, "page", Value::from("home"));
    b.set_segments(["high_value".to_string()]);
    b.set_now(parse_instant("2026-06-15T12:00:00Z").unwrap().at);
    b
}

#[test]
fn evaluation_cases() {
    let text = include_str!("cases.txt");
    let mut failures = Vec::new();
    let mut count = 0;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        count += 1;
        let (src, expected) = line.rsplit_once("=>").expect("each case has =>");
        let (src, expected) = (src.trim(), expected.trim());
        let mut env = visitor_env();
        let actual = match compile(src, &mut env, Scope::default(), Expected::Any) {
            Err(e) => format!("invalid: {}", e.message),
            Ok(program) => match program.eval(&visitor(&env)) {
                Ok(v) => v.to_string(),
                Err(e) => format!("error: {e}"),
            },
        };
        let matches = if expected.starts_with("invalid:") || expected.starts_with("error:") {
            actual.starts_with(expected)
        } else {
            actual == expected
        };
        if !matches {
            failures.push(format!(
                "cases.txt:{}: {src}\n  expected {expected}\n  actual   {actual}",
                n + 1
            ));
        }
    }
    assert!(count > 50, "the case file was read");
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn syntax_errors_point_at_the_offending_token() {
    let mut env = visitor_env();
    let e = compile(
        "profile.age > 30 &&\n  profile.agee < 5",
        &mut env,
        Scope::default(),
        Expected::Bool,
    )
    .unwrap_err();
    assert_eq!(
        e.line_col("profile.age > 30 &&\n  profile.agee < 5"),
        (2, 3)
    );
}

#[test]
fn result_type_is_checked_against_use() {
    let mut env = visitor_env();
    let e = compile(
        "profile.country",
        &mut env,
        Scope::default(),
        Expected::Bool,
    )
    .unwrap_err();
    assert_eq!(
        e.message,
        "expression must be a condition (bool), but it is string"
    );
    let e = compile("profile.vip", &mut env, Scope::default(), Expected::Number).unwrap_err();
    assert_eq!(e.message, "expression must be a number, but it is bool");
    assert!(
        compile("session.x", &mut env, Scope::default(), Expected::Bool).is_ok(),
        "dyn fits"
    );
}

#[test]
fn open_roots_allocate_slots_the_engine_can_fill() {
    let mut env = Env::new();
    let program = compile(
        "event.amount > 100",
        &mut env,
        Scope {
            event: true,
            offer: false,
        },
        Expected::Bool,
    )
    .unwrap();
    assert_eq!(env.slot_of(Root::Event, "amount"), Some(0));
    let mut b = Bindings::new(&env);
    b.set(&env, Root::Event, "amount", Value::Double(150.0));
    assert!(program.eval_bool(&b).unwrap());
}
