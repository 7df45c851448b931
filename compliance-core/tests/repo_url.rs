#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Repository URL normalization: every spelling of one repository gives one key.

use compliance_core::RepoUrl;

fn key(input: &str) -> String {
    match RepoUrl::parse(input) {
        Ok(url) => url.key().to_owned(),
        Err(e) => panic!("{input:?} should parse: {e}"),
    }
}

fn reason(input: &str) -> &'static str {
    match RepoUrl::parse(input) {
        Ok(url) => panic!("{input:?} should be refused, got key {}", url.key()),
        Err(e) => e.reason(),
    }
}

#[test]
fn the_issue_forms_find_the_same_component() {
    let expected = "github.com/acme/payment-service";
    assert_eq!(key("git@github.com:Acme/Payment-Service.git"), expected);
    assert_eq!(key("https://github.com/acme/payment-service/"), expected);
    assert_eq!(key("ssh://git@github.com/acme/payment-service"), expected);
}

#[test]
fn schemes_user_info_port_suffix_and_slashes_are_dropped() {
    let expected = "github.com/acme/payment-service";
    for input in [
        "https://github.com/acme/payment-service",
        "http://github.com/acme/payment-service",
        "HTTPS://GitHub.com/Acme/Payment-Service.git",
        "https://github.com/acme/payment-service.git/",
        "https://github.com/acme/payment-service//",
        "https://github.com//acme//payment-service",
        "https://x-access-token:ghs_abc@github.com/acme/payment-service",
        "https://github.com:443/acme/payment-service",
        "https://github.com/acme/payment-service?tab=readme#top",
        "https://github.com./acme/payment-service",
        "git://github.com/acme/payment-service.git",
        "git+https://github.com/acme/payment-service.git",
        "ssh://git@github.com:22/acme/payment-service.git",
        "git+ssh://git@github.com/acme/payment-service.git",
        "ssh://git@github.com:acme/payment-service.git",
        "github.com:acme/payment-service.git",
        "github.com/acme/payment-service",
        "  https://github.com/acme/payment-service \n",
    ] {
        assert_eq!(key(input), expected, "{input}");
    }
}

#[test]
fn gitlab_subgroups_are_kept() {
    assert_eq!(
        key("https://gitlab.com/group/sub/repo"),
        "gitlab.com/group/sub/repo"
    );
    assert_eq!(
        key("git@gitlab.com:Group/Sub/Deeper/Repo.git"),
        "gitlab.com/group/sub/deeper/repo"
    );
    assert_ne!(
        key("https://gitlab.com/group/sub/repo"),
        key("https://gitlab.com/group/repo")
    );
}

#[test]
fn every_azure_devops_form_gives_one_key() {
    let expected = "dev.azure.com/org/project/repo";
    for input in [
        "https://dev.azure.com/org/project/_git/repo",
        "https://org@dev.azure.com/org/project/_git/repo",
        "https://dev.azure.com/Org/Project/_git/Repo/",
        "git@ssh.dev.azure.com:v3/org/project/repo",
        "ssh://git@ssh.dev.azure.com:22/v3/org/project/repo",
        "org@vs-ssh.visualstudio.com:v3/org/project/repo",
        "https://org.visualstudio.com/project/_git/repo",
        "https://org.visualstudio.com/DefaultCollection/project/_git/repo",
        "dev.azure.com/org/project/repo",
    ] {
        assert_eq!(key(input), expected, "{input}");
    }
}

#[test]
fn azure_repository_named_like_its_project_may_omit_the_project() {
    assert_eq!(
        key("https://dev.azure.com/org/_git/tool"),
        "dev.azure.com/org/tool/tool"
    );
    assert_eq!(
        key("https://org.visualstudio.com/_git/tool"),
        "dev.azure.com/org/tool/tool"
    );
}

#[test]
fn azure_project_names_with_spaces_are_percent_decoded_and_compared_case_insensitively() {
    let a = RepoUrl::parse("https://dev.azure.com/org/My%20Project/_git/repo").unwrap();
    let b = RepoUrl::parse("git@ssh.dev.azure.com:v3/org/my%20project/repo").unwrap();
    let c = RepoUrl::parse("https://org.visualstudio.com/My%20Project/_git/repo").unwrap();
    assert_eq!(a.key(), "dev.azure.com/org/my%20project/repo");
    assert_eq!(a.key(), b.key());
    assert_eq!(a.key(), c.key());
}

#[test]
fn needlessly_encoded_characters_agree_with_plain_ones() {
    assert_eq!(
        key("https://github.com/acme/pay%2Dment"),
        key("https://github.com/acme/pay-ment")
    );
    assert_eq!(
        key("https://github.com/acme/%7Euser"),
        key("https://github.com/acme/~user")
    );
}

#[test]
fn malformed_azure_paths_are_refused_rather_than_mismatched() {
    assert!(RepoUrl::parse("https://dev.azure.com/org").is_err());
    assert!(RepoUrl::parse("https://dev.azure.com/org/project/_git/repo/extra").is_err());
    assert!(RepoUrl::parse("git@ssh.dev.azure.com:v2/org/project/repo").is_err());
    assert!(RepoUrl::parse("https://org.visualstudio.com/project/repo").is_err());
    assert!(RepoUrl::parse("https://dev.azure.com/org/_git/_git/repo").is_err());
    assert!(RepoUrl::parse("https://org.visualstudio.com/_git/_git/repo").is_err());
}

#[test]
fn hosts_are_lowercased_and_internationalized_names_punycoded() {
    assert_eq!(key("https://GIT.Example.COM/a/b"), "git.example.com/a/b");
    assert_eq!(
        key("https://bücher.example/a/b"),
        "xn--bcher-kva.example/a/b"
    );
    assert_eq!(
        key("ssh://git@bücher.example/a/b"),
        "xn--bcher-kva.example/a/b"
    );
}

#[test]
fn ip_and_localhost_hosts_are_accepted() {
    assert_eq!(key("http://127.0.0.1:8080/a/b.git"), "127.0.0.1/a/b");
    assert_eq!(key("ssh://git@[::1]:2222/a/b"), "[::1]/a/b");
    assert_eq!(key("[::1]/a/b"), "[::1]/a/b");
    assert_eq!(key("http://localhost/a/b"), "localhost/a/b");
}

#[test]
fn refuses_what_is_not_a_repository_url() {
    assert_eq!(reason(""), "empty");
    assert_eq!(reason("   "), "empty");
    assert_eq!(
        reason("https://github.com/acme/pay ment"),
        "contains whitespace"
    );
    assert_eq!(reason("not a url"), "contains whitespace");
    assert_eq!(reason("hello"), "not a URL");
    assert_eq!(
        reason("file:///srv/git/repo.git"),
        "file URLs are not repository URLs"
    );
    assert_eq!(reason("ftp://example.com/repo"), "unsupported scheme");
    assert_eq!(reason("https://github.com"), "no path");
    assert_eq!(reason("https://github.com/"), "no path");
    assert_eq!(reason("git@github.com:"), "no path");
    assert_eq!(reason("https:///acme/repo"), "no host");
    assert_eq!(
        reason("https://github.com/acme/.git"),
        "empty repository name"
    );
    assert_eq!(
        reason("https://github.com/acme/../evil"),
        "path has a '.' or '..' segment"
    );
    assert_eq!(
        reason("github.com/acme/..git"),
        "path has a '.' or '..' segment"
    );
    assert_eq!(
        reason("https://github.com:abc/acme/repo"),
        "port is not a number"
    );
    assert_eq!(
        reason("foo/bar"),
        "host is not a fully qualified domain name"
    );
    assert_eq!(
        reason("mailto:dev@example.com"),
        "host is not a fully qualified domain name"
    );
    assert_eq!(reason("C:\\repos\\thing"), "contains a backslash");
    assert_eq!(
        reason("https://github.com/acme/%FF"),
        "path is not valid UTF-8 after percent-decoding"
    );
    assert_eq!(reason("https://exa mple.com/a"), "contains whitespace");
    let long = format!("https://github.com/acme/{}", "a".repeat(2048));
    assert_eq!(reason(&long), "longer than 2048 characters");
}

#[test]
fn original_keeps_the_spelling_but_never_credentials() {
    let url =
        RepoUrl::parse(" https://x-access-token:ghs_secret@GitHub.com/Acme/Repo.git ").unwrap();
    assert_eq!(url.original(), "https://GitHub.com/Acme/Repo.git");
    assert!(!format!("{url} {url:?}").contains("ghs_secret"));

    let ssh = RepoUrl::parse("ssh://git:hunter2@github.com/acme/repo").unwrap();
    assert_eq!(ssh.original(), "ssh://git@github.com/acme/repo");

    let scp = RepoUrl::parse("git@github.com:Acme/Repo.git").unwrap();
    assert_eq!(scp.original(), "git@github.com:Acme/Repo.git");
}

#[test]
fn name_is_the_last_segment_as_spelled() {
    assert_eq!(
        RepoUrl::parse("git@github.com:Acme/Payment-Service.git")
            .unwrap()
            .name(),
        "Payment-Service"
    );
    assert_eq!(
        RepoUrl::parse("https://gitlab.com/g/sub/repo/")
            .unwrap()
            .name(),
        "repo"
    );
    assert_eq!(
        RepoUrl::parse("https://dev.azure.com/org/project/_git/My%20Repo")
            .unwrap()
            .name(),
        "My Repo"
    );
}

#[test]
fn parsing_a_key_gives_the_key_back() {
    for input in [
        "git@github.com:Acme/Payment-Service.git",
        "https://dev.azure.com/org/My%20Project/_git/repo",
        "https://bücher.example/Ä/ö",
        "ssh://git@[::1]:2222/a/b",
        "https://github.com/acme/100%25",
    ] {
        let first = key(input);
        assert_eq!(key(&first), first, "{input}");
    }
}
