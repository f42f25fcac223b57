//! Any bytes as a touchpoint's request: the get offers query read by hand, and JSON bodies
//! read as the native API's requests (start session, get offers, event, batch and each of
//! its commands) as the runtime reads them. Each is read or refused with a problem, never a
//! panic, and a query that reads names an interaction point.
#![no_main]

use kairos_api::extract::{read_body, read_value};
use kairos_api::runtime::{
    BatchRequest, Command, EventRequest, OfferAsk, OffersRequest, StartRequest,
};
use libfuzzer_sys::fuzz_target;
use serde_json::Value as J;

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 5 {
        0 => {
            if let Ok(query) = std::str::from_utf8(body)
                && let Ok(ask) = OfferAsk::from_query(query)
            {
                assert!(
                    query.contains("ip=") && !ask.ip.is_empty(),
                    "{query:?} read as {ask:?}"
                );
            }
        }
        1 => drop(read_body::<StartRequest>(body)),
        2 => drop(read_body::<OffersRequest>(body)),
        3 => drop(read_body::<EventRequest>(body)),
        _ => {
            if let Ok(batch) = read_body::<BatchRequest>(body) {
                for (i, command) in batch.commands.into_iter().enumerate() {
                    let _ = read_value::<Command>(J::Object(command), &format!("commands[{i}]."));
                }
            }
        }
    }
});
