//! `profile.age > 30 && profile.country in ['US', 'CA']`, ours and the `cel` crate's
//! interpreter side by side in one run: `cargo bench -p kairos-rules --bench eval`.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use kairos_rules::{Bindings, Env, Expected, Root, Scope, Type, Value, compile};

const EXPR: &str = "profile.age > 30 && profile.country in ['US', 'CA']";

fn evaluate(c: &mut Criterion) {
    let mut env = Env::new();
    env.declare(Root::Profile, "age", Type::Int);
    env.declare(Root::Profile, "country", Type::String);
    env.close(Root::Profile);
    let program = compile(EXPR, &mut env, Scope::default(), Expected::Bool).expect("compiles");
    let mut bindings = Bindings::new(&env);
    bindings.set(&env, Root::Profile, "age", Value::Int(42));
    bindings.set(&env, Root::Profile, "country", Value::from("CA"));
    assert!(program.eval_bool(&bindings).unwrap());

    let cel_program = cel::Program::compile(EXPR).expect("cel compiles");
    let mut profile: HashMap<String, cel::Value> = HashMap::new();
    profile.insert("age".into(), cel::Value::Int(42));
    profile.insert("country".into(), cel::Value::String(Arc::new("CA".into())));
    let mut ctx = cel::Context::default();
    ctx.add_variable_from_value("profile", profile);
    assert_eq!(cel_program.execute(&ctx).unwrap(), cel::Value::Bool(true));

    let mut group = c.benchmark_group("age_and_country");
    group.bench_function("kairos", |b| {
        b.iter(|| program.eval_bool(black_box(&bindings)))
    });
    group.bench_function("cel_crate", |b| {
        b.iter(|| cel_program.execute(black_box(&ctx)))
    });
    group.finish();
}

criterion_group!(benches, evaluate);
criterion_main!(benches);
