//! The simulator's answers, shaped and paged as FOSSA's.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::StatusCode;
use compliance_core::domain::IssueCategory;
use rand::Rng;
use serde_json::{json, Value};

use super::generate::fossa_time;
use super::model::{Analysis, SimProject};
use crate::locator::revision_locator;

/// An answer before faults are applied.
pub(crate) enum Reply {
    /// A JSON body.
    Json { status: StatusCode, body: String },
    /// A non-JSON body.
    Text {
        status: StatusCode,
        content_type: &'static str,
        body: String,
    },
    /// A 200 JSON array of pre-rendered objects (the dependencies endpoint).
    Items(Vec<Arc<str>>),
}

impl Reply {
    pub(crate) fn into_parts(self) -> (StatusCode, &'static str, String) {
        match self {
            Self::Json { status, body } => (status, "application/json; charset=utf-8", body),
            Self::Text {
                status,
                content_type,
                body,
            } => (status, content_type, body),
            Self::Items(items) => (
                StatusCode::OK,
                "application/json; charset=utf-8",
                format!("[{}]", join(&items)),
            ),
        }
    }
}

/// Objects joined with commas, without re-parsing them.
pub(crate) fn join(items: &[Arc<str>]) -> String {
    let mut out = String::with_capacity(items.iter().map(|i| i.len() + 1).sum());
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(item);
    }
    out
}

/// FOSSA's standard error body.
pub(crate) fn error(status: StatusCode, code: u32, name: &str, message: &str) -> Reply {
    let uuid = {
        let n: u128 = rand::rng().random();
        let hex = format!("{n:032x}");
        format!(
            "{}-{}-{}-{}-{}",
            hex.get(0..8).unwrap_or_default(),
            hex.get(8..12).unwrap_or_default(),
            hex.get(12..16).unwrap_or_default(),
            hex.get(16..20).unwrap_or_default(),
            hex.get(20..32).unwrap_or_default()
        )
    };
    Reply::Json {
        status,
        body: json!({
            "uuid": uuid, "code": code, "message": message, "name": name,
            "httpStatusCode": status.as_u16()
        })
        .to_string(),
    }
}

pub(crate) fn not_found_json(name: &str, code: u32, message: &str) -> Reply {
    error(StatusCode::NOT_FOUND, code, name, message)
}

fn bad_request(message: &str) -> Reply {
    error(StatusCode::BAD_REQUEST, 2003, "BadRequestError", message)
}

/// The 202 answer of the issues endpoint while FOSSA analyses.
pub(crate) fn analysing() -> Reply {
    Reply::Json {
        status: StatusCode::ACCEPTED,
        body: json!({ "message": "analysis in-progress", "issues": [] }).to_string(),
    }
}

fn param<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find_map(|(k, v)| (k == key).then_some(v.as_str()))
}

/// A numeric parameter within `lo..=hi`, its default when absent, or a 400.
fn number(
    pairs: &[(String, String)],
    key: &str,
    default: usize,
    lo: usize,
    hi: usize,
) -> Result<usize, Reply> {
    match param(pairs, key) {
        None => Ok(default),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (lo..=hi).contains(&n) => Ok(n),
            _ => Err(bad_request(&format!(
                "\"{key}\" must be an integer from {lo} to {hi}"
            ))),
        },
    }
}

/// One project in the v2 list's shape.
pub(crate) fn project_json(project: &SimProject) -> Value {
    let latest = project.latest();
    let count = |category: IssueCategory| {
        latest.map_or(0, |r| {
            r.issues
                .iter()
                .filter(|i| i.category == category && !i.ignored)
                .count()
        })
    };
    let (licensing, security, quality) = (
        count(IssueCategory::Licensing),
        count(IssueCategory::Vulnerability),
        count(IssueCategory::Quality),
    );
    json!({
        "id": project.locator,
        "title": project.title,
        "branch": project.branch,
        "version": latest.map(|r| r.revision.as_str()),
        "type": project.project_type,
        "public": project.public,
        "originOrganizationName": null,
        "url": project.url,
        "scanned": latest.map(|r| fossa_time(r.scanned_at)),
        "lastAnalyzed": latest.map(|r| fossa_time(r.analyzed_at)),
        "teams": project.teams,
        "latestRevision": latest.map(|r| json!({
            "locator": revision_locator(&project.locator, &r.revision),
            "message": r.message,
        })),
        "latestBuildStatus": match latest.map(|r| r.analysis) {
            Some(Analysis::InProgress) => "running",
            _ => "succeeded",
        },
        "issues": {
            "total": licensing + security + quality,
            "licensing": licensing,
            "security": security,
            "quality": quality,
        },
        "labels": project.labels,
    })
}

/// `GET /api/v2/projects?locators[]=…&page=…&count=…`
pub(crate) fn projects(
    projects: &BTreeMap<String, SimProject>,
    pairs: &[(String, String)],
) -> Reply {
    if param(pairs, "locators").is_some() {
        return bad_request("\"locators\": expected array, received string");
    }
    let wanted: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "locators[]")
        .map(|(_, v)| v.as_str())
        .collect();
    let (count, page) = match (
        number(pairs, "count", 20, 1, 1000),
        number(pairs, "page", 1, 1, usize::MAX),
    ) {
        (Ok(c), Ok(p)) => (c, p),
        (Err(reply), _) | (_, Err(reply)) => return reply,
    };

    let matching: Vec<&SimProject> = projects
        .values()
        .filter(|p| wanted.is_empty() || wanted.contains(&p.locator.as_str()))
        .collect();
    let page_items: Vec<Value> = matching
        .iter()
        .skip((page - 1).saturating_mul(count))
        .take(count)
        .map(|p| project_json(p))
        .collect();
    Reply::Json {
        status: StatusCode::OK,
        body: json!({ "projects": page_items, "total": matching.len() }).to_string(),
    }
}

/// `GET /api/v2/projects/{locator}`: the alias the workflow document names.
pub(crate) fn project_alias(projects: &BTreeMap<String, SimProject>, locator: &str) -> Reply {
    match projects.get(locator) {
        Some(project) => Reply::Json {
            status: StatusCode::OK,
            body: project_json(project).to_string(),
        },
        None => not_found_json(
            "ProjectNotFoundError",
            1002,
            &format!("Could not find project {locator}"),
        ),
    }
}

/// `GET /api/v2/issues?category=…&scope[type]=project&scope[id]=…&scope[revision]=…`
pub(crate) fn issues(projects: &BTreeMap<String, SimProject>, pairs: &[(String, String)]) -> Reply {
    let Some(category) = param(pairs, "category") else {
        return bad_request("\"category\" is required");
    };
    let Some(category) = IssueCategory::parse(category) else {
        return bad_request("\"category\" must be one of licensing, vulnerability, quality");
    };
    match param(pairs, "scope[type]") {
        None => return bad_request("\"scope[type]\" is required"),
        Some("project") => {}
        // Limitation: `global` and `releaseGroup` scopes are not simulated.
        Some(_) => return bad_request("the simulator serves \"scope[type]=project\" only"),
    }
    let Some(project_id) = param(pairs, "scope[id]") else {
        return bad_request("\"scope[id]\" is required with scope[type]=project");
    };
    let (count, page) = match (
        number(pairs, "count", 20, 1, 1000),
        number(pairs, "page", 1, 1, usize::MAX),
    ) {
        (Ok(c), Ok(p)) => (c, p),
        (Err(reply), _) | (_, Err(reply)) => return reply,
    };
    let status = param(pairs, "status").unwrap_or("active");
    if !matches!(status, "active" | "ignored" | "all") {
        return bad_request("\"status\" must be active, ignored or all");
    }

    let Some(project) = projects.get(project_id) else {
        return not_found_json(
            "NotFoundError",
            2004,
            &format!("Project {project_id} not found"),
        );
    };
    let revision = match param(pairs, "scope[revision]") {
        // FOSSA joins scope[id] and scope[revision] itself: a full locator here is unknown.
        Some(r) => project.revision(r),
        None => project
            .revisions
            .iter()
            .rev()
            .find(|r| r.analysis == Analysis::Done)
            .or_else(|| project.latest()),
    };
    let Some(revision) = revision else {
        return not_found_json("NotFoundError", 2004, "Revision not found");
    };
    if revision.analysis == Analysis::InProgress {
        return analysing();
    }

    let selected: Vec<Arc<str>> = revision
        .issues
        .iter()
        .filter(|i| i.category == category)
        .filter(|i| match status {
            "active" => !i.ignored,
            "ignored" => i.ignored,
            _ => true,
        })
        .skip((page - 1).saturating_mul(count))
        .take(count)
        .map(|i| Arc::clone(&i.json))
        .collect();
    Reply::Json {
        status: StatusCode::OK,
        body: format!("{{\"issues\":[{}]}}", join(&selected)),
    }
}

/// `GET /api/revisions/{locator}/dependencies?limit=…&offset=…&include_ignored=…`
pub(crate) fn dependencies(
    projects: &BTreeMap<String, SimProject>,
    revision_locator: &str,
    pairs: &[(String, String)],
) -> Reply {
    let revision = projects.values().find_map(|p| {
        let rest = revision_locator.strip_prefix(p.locator.as_str())?;
        p.revision(rest.strip_prefix('$')?)
    });
    let Some(revision) = revision else {
        // FOSSA answers this 404 in plain text, not JSON.
        return Reply::Text {
            status: StatusCode::NOT_FOUND,
            content_type: "text/plain; charset=utf-8",
            body: "Not Found".to_owned(),
        };
    };

    let include_ignored = param(pairs, "include_ignored") == Some("true");
    // FOSSA clamps `limit` to 25..=100; without one it sends everything.
    let limit = match param(pairs, "limit") {
        None => usize::MAX,
        Some(v) => match v.parse::<usize>() {
            Ok(n) => n.clamp(25, 100),
            Err(_) => return bad_request("\"limit\" must be an integer"),
        },
    };
    let offset = match number(pairs, "offset", 0, 0, usize::MAX) {
        Ok(n) => n,
        Err(reply) => return reply,
    };

    Reply::Items(
        revision
            .dependencies
            .iter()
            .filter(|d| include_ignored || !d.ignored)
            .skip(offset)
            .take(limit)
            .map(|d| Arc::clone(&d.json))
            .collect(),
    )
}
