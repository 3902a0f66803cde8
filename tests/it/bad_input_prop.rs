//! Property: whatever bytes arrive as a frame, decoding gives events or a clear error,
//! never a panic, in every dialect and both directions; and mutilated versions of real
//! examples (truncated, with a byte flipped) are refused or decoded, never a panic.

use proptest::prelude::*;
use switchboard::dialect::{DecodeContext, Direction};

use crate::common::DIALECTS;

fn decode_all(bytes: &[u8]) {
    let reg = crate::common::registry();
    let ctx = DecodeContext::default();
    for name in DIALECTS {
        let d = reg.dialect(name).expect("dialect");
        for dir in [None, Some(Direction::Up), Some(Direction::Down)] {
            if let Ok(events) = d.decode_frame(bytes, dir, &ctx) {
                for ev in &events {
                    let _ = d.encode(ev, ev_dir(dir));
                }
            }
        }
    }
}

fn ev_dir(dir: Option<Direction>) -> Direction {
    dir.unwrap_or(Direction::Up)
}

fn examples() -> Vec<Vec<u8>> {
    DIALECTS
        .iter()
        .flat_map(|d| crate::common::examples(d))
        .map(|(_, frame)| frame.to_string().into_bytes())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        decode_all(&bytes);
    }

    #[test]
    fn random_json_shapes_never_panic(text in r#"[\[\]{}":,a-z0-9 .\-]{0,120}"#) {
        decode_all(text.as_bytes());
    }

    #[test]
    fn mutilated_examples_never_panic(pick in any::<prop::sample::Index>(), cut in any::<prop::sample::Index>(), flip in any::<u8>()) {
        let all = examples();
        let mut frame = all[pick.index(all.len())].clone();
        let at = cut.index(frame.len());
        frame[at] ^= flip;
        decode_all(&frame);
        frame.truncate(at);
        decode_all(&frame);
    }
}
