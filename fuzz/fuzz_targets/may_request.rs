//! The may variant's request path up to the body: httparse exactly as may_minihttp 0.1.11 calls
//! it (16 header slots, partial parses wait for more bytes), then the receiver's own framing
//! decision (`crates/didit-receiver/src/framing.rs`, compiled here as is). may_minihttp reads a
//! body by `from_utf8(..).unwrap().parse().unwrap()` on the first `Content-Length`, so the
//! property is: whenever the plan asks for the body, that exact code succeeds with the length the
//! plan expects. (may_minihttp's `decode` is private and needs a socket, so its two lines of glue
//! are reproduced below rather than called.)
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/didit-receiver/src/framing.rs"]
#[allow(dead_code)]
mod framing;

use framing::{BodyPlan, body_plan};

/// may_minihttp 0.1.11 `Request::content_length`, verbatim.
fn may_content_length(headers: &[httparse::Header<'_>]) -> usize {
    let mut len = 0;
    for header in headers.iter() {
        if header.name.eq_ignore_ascii_case("content-length") {
            len = std::str::from_utf8(header.value).unwrap().parse().unwrap();
            break;
        }
    }
    len
}

fuzz_target!(|data: &[u8]| {
    let mut slots = [httparse::EMPTY_HEADER; 16];
    let mut req = httparse::Request::new(&mut slots);
    let Ok(httparse::Status::Complete(_)) = req.parse(data) else {
        return;
    };
    // What may_minihttp's accessors unwrap must be there after a complete parse.
    let (Some(_method), Some(path), Some(_version)) = (req.method, req.path, req.version) else {
        panic!("a complete parse without method, path or version");
    };
    let _ = path.len();
    for max_body in [0, 64, 1 << 20] {
        let plan = body_plan(req.headers.iter().map(|h| (h.name, h.value)), max_body);
        match plan {
            BodyPlan::Read(n) => {
                assert!(n <= max_body);
                assert_eq!(may_content_length(req.headers), n);
            }
            BodyPlan::TooLarge => assert!(may_content_length(req.headers) > max_body),
            BodyPlan::LengthRequired | BodyPlan::BadLength => {}
        }
    }
});
