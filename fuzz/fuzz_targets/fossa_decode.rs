//! The decoders of FOSSA's responses, and the mapping of what they decode into the domain,
//! on arbitrary bodies: a hostile or broken FOSSA gives an error, never a panic.
#![no_main]

use std::time::{Duration, SystemTime};

use compliance_core::domain::IssueCategory;
use compliance_fossa::mapping::{self, DependencySet};
use compliance_fossa::model::{decode_dependencies_page, decode_issues_page, decode_project_list};
use compliance_fossa::retry_after::parse_retry_after;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    match selector % 4 {
        0 => {
            if let Ok(list) = decode_project_list(body) {
                for raw in list.projects.unwrap_or_default() {
                    let info = mapping::project_info(&raw);
                    assert!(!info.title.is_empty() || raw.id.is_empty());
                    let _ = mapping::latest_revision(&raw);
                }
            }
        }
        1 => {
            if let Ok(page) = decode_issues_page(body) {
                let categories = [
                    IssueCategory::Licensing,
                    IssueCategory::Vulnerability,
                    IssueCategory::Quality,
                ];
                for (n, raw) in page.issues.unwrap_or_default().into_iter().enumerate() {
                    let category = categories[n % categories.len()];
                    let _ = mapping::issue(category, raw, "custom+1/github.com/acme/shop");
                }
            }
        }
        2 => match decode_dependencies_page(body) {
            Ok(page) => {
                let mut set = DependencySet::new();
                for raw in &page {
                    set.add(raw);
                }
                let (dependencies, unresolved) = set.into_parts();
                assert!(dependencies.len() + unresolved as usize <= page.len());
            }
            Err(error) => {
                let _ = error.to_string();
            }
        },
        _ => {
            if let Ok(text) = std::str::from_utf8(body) {
                let cap = Duration::from_secs(3600);
                if let Some(wait) = parse_retry_after(text, SystemTime::now(), cap) {
                    assert!(wait <= cap, "Retry-After {text:?} gave {wait:?}");
                }
            }
        }
    }
});
