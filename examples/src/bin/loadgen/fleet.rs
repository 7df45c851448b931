//! The synthetic repositories of a run and the FOSSA simulator that knows them.
//!
//! The load generator hosts the simulator itself: before each valid webhook it adds the new
//! revision to the repository's FOSSA project, exactly as a CI scan would, so every webhook
//! names a revision FOSSA has and every sync can finish. The server under test is pointed at
//! the simulator with `--fossa-base-url` and `--fossa-api-key`.
//!
//! Revisions are 40 hex digits: the run's id, the repository's index and a sequence number,
//! so an event on the WebSocket says which webhooks it covers.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use compliance_fossa::sim::{FossaSimulator, ProjectSpec, RevisionChange, SimConfig, SimHandle};
use rand::Rng;

/// How many revisions a simulated project keeps; older ones are dropped so that a long run
/// does not grow without bound. Only the newest pending job of a component is ever synced,
/// so a worker never asks for one this old.
const KEEP_REVISIONS: usize = 48;

/// One repository, registered as a component and backed by a simulated project.
pub(crate) struct Repo {
    pub(crate) index: u32,
    pub(crate) name: String,
    pub(crate) url: String,
    pub(crate) locator: String,
    state: Mutex<RepoState>,
}

struct RepoState {
    /// The latest sequence number handed out.
    seq: u64,
    /// Revisions the simulated project holds.
    kept: usize,
}

/// The shape of the simulated projects.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ProjectShape {
    pub(crate) dependencies: usize,
    pub(crate) issues: usize,
    /// Issues fixed and added by each new revision.
    pub(crate) churn: usize,
}

/// The repositories and the simulator.
pub(crate) struct Fleet {
    pub(crate) run_id: u32,
    pub(crate) repos: Vec<Arc<Repo>>,
    shape: ProjectShape,
    sim: SimHandle,
}

/// The webhook of one new revision.
pub(crate) struct NextScan {
    pub(crate) seq: u64,
    pub(crate) revision: String,
    pub(crate) body: String,
}

impl Fleet {
    /// Starts the simulator on `sim_addr` and generates `count` projects.
    pub(crate) async fn start(
        sim_addr: SocketAddr,
        sim_token: &str,
        prefix: &str,
        count: u32,
        shape: ProjectShape,
    ) -> Result<Self, String> {
        if !sim_addr.ip().is_loopback() {
            return Err("the simulator listens on loopback only".into());
        }
        if count == 0 {
            return Err("a run needs at least one repository".into());
        }
        let sim = FossaSimulator::start(SimConfig {
            addr: sim_addr,
            token: Some(sim_token.to_owned()),
        })
        .await
        .map_err(|e| format!("simulator on {sim_addr}: {e}"))?;
        let run_id: u32 = rand::rng().random();
        let repos = (0..count)
            .map(|index| {
                let name = format!("{prefix}-{index:05}");
                let path = format!("github.com/loadgen/{name}");
                let repo = Repo {
                    index,
                    url: format!("https://{path}"),
                    locator: format!("custom+1/{path}"),
                    name,
                    state: Mutex::new(RepoState { seq: 0, kept: 1 }),
                };
                let spec = ProjectSpec::new(
                    &repo.locator,
                    shape.dependencies,
                    shape.issues,
                    u64::from(index) + 1,
                )
                .with_revision(revision(run_id, index, 0));
                sim.state().generate_project(&spec);
                Arc::new(repo)
            })
            .collect();
        Ok(Self {
            run_id,
            repos,
            shape,
            sim,
        })
    }

    /// The repository for the `n`th request.
    pub(crate) fn pick(&self, n: u64) -> &Arc<Repo> {
        let len = self.repos.len().max(1) as u64;
        let index = usize::try_from(n % len).unwrap_or(0);
        #[allow(clippy::indexing_slicing)] // `start` refuses an empty fleet.
        &self.repos[index]
    }

    /// Adds the next revision of `repo` to FOSSA and returns its webhook body.
    pub(crate) fn next_scan(&self, repo: &Repo) -> Result<NextScan, String> {
        let mut state = repo.state.lock().unwrap_or_else(PoisonError::into_inner);
        let seq = state.seq + 1;
        let rev = revision(self.run_id, repo.index, seq);
        let mut change = RevisionChange::new(&rev, self.shape.churn, self.shape.churn);
        change.seed = seq;
        self.sim
            .state()
            .advance_revision(&repo.locator, &change)
            .map_err(|e| e.to_string())?;
        state.seq = seq;
        state.kept += 1;
        if state.kept > 2 * KEEP_REVISIONS {
            if let Some(mut project) = self.sim.state().project(&repo.locator) {
                let drop = project.revisions.len().saturating_sub(KEEP_REVISIONS);
                project.revisions.drain(..drop);
                state.kept = project.revisions.len();
                self.sim.state().add_project(project);
            }
        }
        Ok(NextScan {
            seq,
            body: body(repo, &rev),
            revision: rev,
        })
    }

    /// The webhook body of the revision the project started with (sequence 0).
    pub(crate) fn first_scan(&self, repo: &Repo) -> NextScan {
        let rev = revision(self.run_id, repo.index, 0);
        NextScan {
            seq: 0,
            body: body(repo, &rev),
            revision: rev,
        }
    }

    /// A webhook body for a revision FOSSA does not have (for requests meant to fail).
    pub(crate) fn junk_scan(repo: &Repo) -> String {
        let n: u128 = rand::rng().random();
        body(repo, &format!("{n:032x}00000000"))
    }

    /// The repository and sequence number a revision of this run stands for.
    pub(crate) fn parse_revision(&self, revision: &str) -> Option<(u32, u64)> {
        let run = u32::from_str_radix(revision.get(0..8)?, 16).ok()?;
        if run != self.run_id || revision.len() != 40 {
            return None;
        }
        let repo = u32::from_str_radix(revision.get(8..16)?, 16).ok()?;
        let seq = u64::from_str_radix(revision.get(16..40)?, 16).ok()?;
        Some((repo, seq))
    }

    pub(crate) async fn stop(self) {
        self.sim.shutdown().await;
    }
}

fn revision(run_id: u32, repo: u32, seq: u64) -> String {
    format!("{run_id:08x}{repo:08x}{seq:024x}")
}

/// A complete webhook body, the way the CI templates send it; the scan time has microseconds
/// so that scans of one repository keep their order.
fn body(repo: &Repo, revision: &str) -> String {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    format!(
        concat!(
            r#"{{"event":"fossa.scan.completed","timestamp":"{now}","#,
            r#""repository":{{"name":"{name}","url":"{url}","provider":"github"}},"#,
            r#""scan":{{"revision":"{revision}","branch":"main","status":"failed","issues_found":true}},"#,
            r#""pipeline":{{"id":"{pipeline}","url":"{url}/actions/runs/{pipeline}","provider":"github-actions"}},"#,
            r#""metadata":{{"triggered_by":"push","actor":"loadgen@acme.example"}}}}"#
        ),
        now = now,
        name = repo.name,
        url = repo.url,
        revision = revision,
        pipeline = revision.get(32..).unwrap_or(revision),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn revisions_name_their_repository_and_sequence() {
        let shape = ProjectShape {
            dependencies: 3,
            issues: 2,
            churn: 1,
        };
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let fleet = Fleet::start(addr, "t", "r", 3, shape).await.unwrap();
        let repo = fleet.pick(4).clone();
        assert_eq!(repo.index, 1);
        let first = fleet.next_scan(&repo).unwrap();
        let second = fleet.next_scan(&repo).unwrap();
        assert_eq!((first.seq, second.seq), (1, 2));
        let value: serde_json::Value = serde_json::from_str(&second.body).unwrap();
        let rev = value["scan"]["revision"].as_str().unwrap();
        assert_eq!(fleet.parse_revision(rev), Some((1, 2)));
        assert_eq!(fleet.parse_revision("abc123"), None);
        assert_eq!(value["repository"]["url"], repo.url);

        // The simulator has the revision the webhook names, and keeps a bounded history.
        for _ in 0..(3 * KEEP_REVISIONS) {
            fleet.next_scan(&repo).unwrap();
        }
        let project = fleet.sim.state().project(&repo.locator).unwrap();
        assert!(project.revisions.len() <= 2 * KEEP_REVISIONS);
        let latest = project.latest().unwrap();
        assert_eq!(
            fleet.parse_revision(&latest.revision),
            Some((1, 2 + 3 * KEEP_REVISIONS as u64))
        );
        fleet.stop().await;
    }
}
