//! Property tests of the res_config_curl body codec (`codec.rs`): arbitrary bodies,
//! query strings and paths never panic, and encoding round-trips through decoding
//! for any text, as Asterisk's `ast_uri_encode`/`ast_uri_decode` pair does.

use mware_realtime::codec::{decode, encode, format_pairs, parse_pairs, Target};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_input_never_panics(s in any::<String>(), bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_pairs(&s);
        let _ = decode(&s);
        let _ = Target::from_path(&s);
        // Raw bytes as a client may send them (made text the lossy way, like a proxy would).
        let lossy = String::from_utf8_lossy(&bytes);
        let _ = parse_pairs(&lossy);
        let _ = Target::from_path(&lossy);
    }

    #[test]
    fn percent_heavy_input_never_panics(s in "[%0-9a-fA-F&=+ \r\n]{0,64}") {
        let _ = parse_pairs(&s);
        let _ = decode(&s);
    }

    #[test]
    fn encode_decode_round_trips(s in any::<String>()) {
        let e = encode(&s);
        prop_assert!(e.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.!~*'()%ABCDEF".contains(&b)), "{}", e);
        prop_assert_eq!(decode(&e).unwrap(), s);
    }

    #[test]
    fn bodies_round_trip(pairs in proptest::collection::vec(("\\PC{1,12}", any::<String>()), 0..8)) {
        let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let body = format_pairs(refs.iter().copied());
        prop_assert_eq!(parse_pairs(&body).unwrap(), pairs.clone());
        // Asterisk ends a body with a line end and update2 starts one with '&': both tolerated.
        prop_assert_eq!(parse_pairs(&format!("&{body}\r\n")).unwrap(), pairs);
    }

    #[test]
    fn paths_round_trip(entity in "\\PC{1,20}", family in "[a-z_-]{1,12}") {
        let path = format!("/provision/asterisk/{}/{}/multi", encode(&entity), encode(&family));
        let t = Target::from_path(&path).unwrap();
        prop_assert_eq!(t.entity, entity);
        prop_assert_eq!(t.family, family);
    }
}
