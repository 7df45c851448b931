//! The repository URL normalizer: no panic on any text, and normalizing is idempotent
//! (a key parses back to itself), bounded, and free of what a key must never hold.
#![no_main]

use compliance_core::repo_url::MAX_URL_CHARS;
use compliance_core::RepoUrl;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(url) = RepoUrl::parse(text) else {
        return;
    };
    let key = url.key();
    assert!(key.chars().count() <= MAX_URL_CHARS);
    assert!(
        !key.chars().any(|c| c.is_whitespace() || c.is_control()),
        "{key:?}"
    );
    assert!(
        !key.contains("://") && !key.contains('@'),
        "scheme or user info in {key:?}"
    );
    assert_eq!(key, key.to_lowercase(), "key not lower-cased");
    assert!(key.contains('/'), "key without a path: {key:?}");
    assert!(!url.name().is_empty());

    let again = RepoUrl::parse(key).unwrap_or_else(|e| panic!("key {key:?} refused: {e}"));
    assert_eq!(
        again.key(),
        key,
        "parse(key).key() != key for input {text:?}"
    );

    // What the sender typed never keeps a password.
    if let Some((_, rest)) = url.original().split_once("://") {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if let Some((user_info, _)) = authority.rsplit_once('@') {
            assert!(
                !user_info.contains(':'),
                "password kept in {:?}",
                url.original()
            );
        }
    }
});
