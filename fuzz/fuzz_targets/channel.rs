//! Any bytes given as a channel file: accepted or rejected with located errors, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(channel) =
            kairos_model::parse_channel("fuzz.yaml", text, &kairos_model::Schemas::new())
        {
            let exported = kairos_model::to_yaml(&channel);
            let again =
                kairos_model::parse_channel("again.yaml", &exported, &kairos_model::Schemas::new());
            assert_eq!(
                again.ok().as_ref(),
                Some(&channel),
                "export must re-read to the same channel"
            );
        }
    }
});
