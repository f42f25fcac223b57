//! No file makes the channel reader panic: damaged versions of the demo channel and arbitrary
//! text are all either accepted or rejected with located errors.

use kairos_model::{Schemas, parse_channel, to_yaml};
use proptest::prelude::*;

fn example() -> &'static str {
    include_str!("../../../examples/bank/channel.yaml")
}

fn check(text: &str) {
    match parse_channel("fuzz.yaml", text, &Schemas::new()) {
        Ok(channel) => {
            // Whatever is accepted can be exported and read back.
            let again = parse_channel("again.yaml", &to_yaml(&channel), &Schemas::new());
            assert_eq!(
                again.as_ref().ok(),
                Some(&channel),
                "{:?}",
                again.as_ref().err()
            );
        }
        Err(rejected) => {
            assert!(!rejected.0.is_empty());
            assert!(
                rejected.0.iter().all(|d| d.line >= 1 && d.column >= 1),
                "{rejected}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        check(&text);
    }

    #[test]
    fn damaged_channels_never_panic(cut in 0usize..20_000, len in 0usize..200, insert in "[ -~\n]{0,12}") {
        let source = example();
        let start = source.floor_char_boundary(cut.min(source.len()));
        let end = source.floor_char_boundary((start + len).min(source.len()));
        let damaged = format!("{}{insert}{}", &source[..start], &source[end..]);
        check(&damaged);
    }
}
