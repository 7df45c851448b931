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
    // A path segment may hold an `@`; the host part never holds user info or a scheme.
    let host = key.split('/').next().unwrap_or_default();
    assert!(
        !key.contains("://") && !host.contains('@') && !host.is_empty(),
        "scheme or user info in {key:?}"
    );
    // Letters are lower-cased; percent-encoding keeps its canonical upper-case hex digits.
    let decoded = percent_decoded(key);
    assert_eq!(
        decoded,
        decoded.to_lowercase(),
        "key {key:?} not lower-cased"
    );
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

/// `text` with every `%XX` escape decoded (invalid UTF-8 replaced).
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
