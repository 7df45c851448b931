//! The webhook body parser and validator, and the lenient peek the event log uses, on
//! arbitrary bytes: no panic, and what is accepted obeys the documented field rules.
#![no_main]

use compliance_core::payload::{parse_webhook, peek, SCAN_COMPLETED_EVENT};
use compliance_core::RepoUrl;
use libfuzzer_sys::fuzz_target;

/// Longest value the event-log peek keeps.
const MAX_PEEK_CHARS: usize = 512;

fuzz_target!(|data: &[u8]| {
    let signed_at = chrono::DateTime::from_timestamp(1_736_937_300, 0);
    for header_timestamp in [signed_at, None] {
        match parse_webhook(data, header_timestamp) {
            Ok(webhook) => {
                assert_eq!(webhook.event, SCAN_COMPLETED_EVENT);
                let key = webhook.repository.url.key();
                let again = RepoUrl::parse(key).expect("the key of an accepted URL parses");
                assert_eq!(again.key(), key, "normalizing a key changed it");
                assert!(!webhook.repository.name.trim().is_empty());
                let revision = &webhook.scan.revision;
                assert!((6..=64).contains(&revision.len()), "revision {revision:?}");
                assert!(revision
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
                let branch = &webhook.scan.branch;
                assert!(!branch.is_empty() && branch.chars().count() <= 255);
                assert!(!branch.chars().any(char::is_control));
                if let Some(url) = webhook.pipeline.as_ref().and_then(|p| p.url.as_deref()) {
                    assert!(
                        url.starts_with("http://") || url.starts_with("https://"),
                        "{url}"
                    );
                }
            }
            Err(error) => {
                assert!(!error.details().is_empty(), "an error without details");
                let _ = error.to_string();
            }
        }
    }

    let peeked = peek(data);
    for value in [
        &peeked.event_type,
        &peeked.repository_url,
        &peeked.revision,
        &peeked.branch,
        &peeked.pipeline_id,
        &peeked.pipeline_url,
        &peeked.actor,
    ]
    .into_iter()
    .flatten()
    {
        assert!(
            value.chars().count() <= MAX_PEEK_CHARS,
            "peek kept {} chars",
            value.len()
        );
    }
});
