//! Any text given as an expression: compiled or rejected, and a compiled program evaluates
//! to a value or an error, never a panic.
#![no_main]

use kairos_rules::{Bindings, Env, Expected, Root, Scope, Value, compile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let mut env = Env::new();
    env.set_segments(["a", "b"]);
    let scope = Scope {
        event: true,
        offer: true,
    };
    if let Ok(program) = compile(src, &mut env, scope, Expected::Any) {
        let _ = program.eval(&Bindings::new(&env));
        let mut bindings = Bindings::new(&env);
        for root in Root::ALL {
            for (name, _) in env.slots(root).to_vec() {
                bindings.set(&env, root, &name, Value::Int(7));
            }
        }
        let _ = program.eval(&bindings);
    }
});
