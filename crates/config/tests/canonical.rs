//! The one rule for domain names, as properties: [`canonical`] is idempotent, and a valid
//! name's uppercase, trailing-dot and Unicode forms all give the same canonical name.

use mware_config::canonical;
use proptest::prelude::*;

/// A label: ASCII letters, digits, `_` and inner `-`, or Cyrillic/Greek/accented letters
/// (so some labels need IDNA), 1 to 12 characters. No `ß` nor `ς`: their uppercase forms
/// lowercase to other names (`ss`, `σ`).
fn label() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z0-9_]([a-z0-9_-]{0,10}[a-z0-9_])?", "[а-яё]{1,12}", "[α-ρσ-ω]{1,8}", "[a-z]{1,4}[éüøç][a-z]{0,4}",]
}

fn name() -> impl Strategy<Value = String> {
    prop::collection::vec(label(), 1..=5).prop_map(|l| l.join("."))
}

/// Any text, weighted towards names that are almost valid.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![name(), "[a-zA-Z0-9._\\-]{0,20}", ".{0,30}", "[\\x00-\\x7f]{0,12}",]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn canonical_is_idempotent(raw in any_text()) {
        if let Ok(c) = canonical(&raw) {
            prop_assert_eq!(canonical(&c), Ok(c.clone()), "input {:?}", raw);
            prop_assert!(c.is_ascii() && !c.bytes().any(|b| b.is_ascii_uppercase()), "{}", c);
            prop_assert!(c.len() <= 253, "{}", c);
        }
    }

    #[test]
    fn every_form_of_a_valid_name_is_one_name(n in name()) {
        let c = canonical(&n).expect("generated names are valid");
        prop_assert_eq!(canonical(&format!("{n}.")), Ok(c.clone()));
        prop_assert_eq!(canonical(&n.to_uppercase()), Ok(c.clone()), "uppercase of {}", n);
        prop_assert_eq!(canonical(&c.to_ascii_uppercase()), Ok(c.clone()), "uppercase punycode of {}", n);
        // The Unicode form of the canonical (punycode) name comes back to it.
        let (unicode, res) = idna::domain_to_unicode(&c);
        prop_assert!(res.is_ok());
        prop_assert_eq!(canonical(&unicode), Ok(c.clone()), "unicode form {} of {}", unicode, n);
    }
}
