//! Arbitrary bytes into the control socket's request parser. A refusal is a reply
//! with a reason; an accepted request survives being written out and read again.
#![no_main]

use failoverd::control::parse_request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse_request(data) {
        Ok(request) => {
            let line = serde_json::to_vec(&request).expect("a request serializes");
            assert_eq!(parse_request(&line).ok(), Some(request));
        }
        Err(reply) => {
            assert!(!reply.ok);
            assert!(reply.error.is_some());
            serde_json::to_vec(&reply).expect("a reply serializes");
        }
    }
});
