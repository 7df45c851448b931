#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Property tests for repository URL normalization: keys are fixed points, and every
//! spelling of one repository gives one key.

use compliance_core::RepoUrl;
use proptest::prelude::*;

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("github.com".to_owned()),
        Just("gitlab.com".to_owned()),
        Just("bitbucket.org".to_owned()),
        "[a-z][a-z0-9-]{0,8}\\.[a-z]{2,4}",
    ]
}

/// A name the hosting services allow: starts with a letter or digit, never `.git` at the end.
fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9][a-zA-Z0-9._-]{0,20}".prop_filter("not a .git suffix", |s| {
        !s.to_ascii_lowercase().ends_with(".git")
    })
}

/// The same text with letter case changed at random.
fn recase(text: String) -> impl Strategy<Value = String> {
    let len = text.chars().count();
    proptest::collection::vec(any::<bool>(), len).prop_map(move |upper| {
        text.chars()
            .zip(upper)
            .map(|(c, u)| {
                if u {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect()
    })
}

/// Every spelling of `host/path` this crate promises to treat as one repository.
fn spellings(host: &str, path: &str) -> Vec<String> {
    vec![
        format!("https://{host}/{path}"),
        format!("https://{host}/{path}.git"),
        format!("https://{host}/{path}/"),
        format!("https://{host}/{path}.git/"),
        format!("http://{host}:8080/{path}"),
        format!("https://ci-bot:t0k3n@{host}/{path}?ref=main#readme"),
        format!("git@{host}:{path}.git"),
        format!("{host}:{path}"),
        format!("ssh://git@{host}/{path}"),
        format!("ssh://git@{host}:2222/{path}.git"),
        format!("git://{host}/{path}.git"),
        format!("{host}/{path}"),
    ]
}

/// URL-like text built from parts that include awkward characters.
fn url_like() -> impl Strategy<Value = String> {
    let scheme = prop_oneof![
        Just(""),
        Just("https://"),
        Just("http://"),
        Just("ssh://"),
        Just("git://"),
        Just("git+ssh://")
    ];
    let user = prop_oneof![Just(""), Just("git@"), Just("u:p@"), Just("org@")];
    let host = prop_oneof![
        host(),
        Just("dev.azure.com".to_owned()),
        Just("ssh.dev.azure.com".to_owned()),
        Just("acme.visualstudio.com".to_owned()),
        Just("127.0.0.1".to_owned()),
        Just("[::1]".to_owned()),
        Just("bücher.example".to_owned()),
    ];
    let port = prop_oneof![Just(""), Just(":22"), Just(":8443")];
    let segment = prop_oneof![
        "[a-zA-Z0-9._~-]{1,8}",
        "[a-zA-Z0-9%]{1,8}",
        "[a-zA-Z@:+!$&'()*,;=]{1,6}",
        "\\PC{1,4}",
        Just("_git".to_owned()),
        Just("v3".to_owned()),
        Just("DefaultCollection".to_owned()),
        Just("My%20Project".to_owned()),
    ];
    let segments = proptest::collection::vec(segment, 1..6);
    let tail = prop_oneof![
        Just(""),
        Just("/"),
        Just(".git"),
        Just("?a=b"),
        Just("#frag")
    ];
    (scheme, user, host, port, segments, tail)
        .prop_map(|(s, u, h, p, segs, t)| format!("{s}{u}{h}{p}/{}{t}", segs.join("/")))
}

proptest! {
    #[test]
    fn equivalent_spellings_of_owner_and_repo_agree(
        host in host(),
        owner in name().prop_flat_map(recase),
        repo in name().prop_flat_map(recase),
    ) {
        let path = format!("{owner}/{repo}");
        let expected = format!("{host}/{}", path.to_ascii_lowercase());
        for spelling in spellings(&host, &path) {
            let url = RepoUrl::parse(&spelling)
                .map_err(|e| TestCaseError::fail(format!("{spelling}: {e}")))?;
            prop_assert_eq!(url.key(), expected.as_str(), "{}", spelling);
            prop_assert_eq!(url.name(), repo.as_str());
        }
    }

    #[test]
    fn gitlab_subgroups_of_any_depth_agree(
        groups in proptest::collection::vec(name(), 1..5),
        repo in name(),
    ) {
        let path = format!("{}/{repo}", groups.join("/"));
        let a = RepoUrl::parse(&format!("https://gitlab.com/{path}.git")).unwrap();
        let b = RepoUrl::parse(&format!("git@gitlab.com:{}", path.to_uppercase())).unwrap();
        prop_assert_eq!(a.key(), b.key());
        prop_assert_eq!(a.key().matches('/').count(), groups.len() + 1);
    }

    #[test]
    fn azure_devops_spellings_agree(
        org in "[a-z][a-z0-9]{0,10}",
        project in name(),
        repo in name(),
    ) {
        let expected = format!("dev.azure.com/{org}/{project}/{repo}").to_lowercase();
        for spelling in [
            format!("https://dev.azure.com/{org}/{project}/_git/{repo}"),
            format!("https://{org}@dev.azure.com/{org}/{project}/_git/{repo}"),
            format!("git@ssh.dev.azure.com:v3/{org}/{project}/{repo}"),
            format!("https://{org}.visualstudio.com/{project}/_git/{repo}"),
            format!("https://{org}.visualstudio.com/DefaultCollection/{project}/_git/{repo}"),
        ] {
            let url = RepoUrl::parse(&spelling)
                .map_err(|e| TestCaseError::fail(format!("{spelling}: {e}")))?;
            prop_assert_eq!(url.key(), expected.as_str(), "{}", spelling);
        }
    }

    #[test]
    fn normalization_is_idempotent(input in url_like()) {
        if let Ok(url) = RepoUrl::parse(&input) {
            let again = RepoUrl::parse(url.key())
                .map_err(|e| TestCaseError::fail(format!("{input} -> {} fails: {e}", url.key())))?;
            prop_assert_eq!(again.key(), url.key(), "{}", input);
        }
    }

    #[test]
    fn arbitrary_text_never_panics_and_keys_are_fixed_points(input in "\\PC{0,60}") {
        if let Ok(url) = RepoUrl::parse(&input) {
            let again = RepoUrl::parse(url.key())
                .map_err(|e| TestCaseError::fail(format!("{input} -> {} fails: {e}", url.key())))?;
            prop_assert_eq!(again.key(), url.key());
        }
    }
}
