//! Scripted faults: what the simulator does instead of (or on top of) a normal answer.

use std::time::Duration;

/// The endpoints the simulator serves, for routing faults and reading the request log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `GET /api/v2/projects`
    Projects,
    /// `GET /api/v2/projects/{locator}` (an alias FOSSA does not publish)
    ProjectAlias,
    /// `GET /api/v2/issues`
    Issues,
    /// `GET /api/revisions/{locator}/dependencies`
    Dependencies,
}

impl Endpoint {
    /// The path template, as the client labels its metrics.
    #[must_use]
    pub fn template(self) -> &'static str {
        match self {
            Self::Projects => "/api/v2/projects",
            Self::ProjectAlias => "/api/v2/projects/{locator}",
            Self::Issues => "/api/v2/issues",
            Self::Dependencies => "/api/revisions/{locator}/dependencies",
        }
    }
}

/// Where FOSSA's in-stream `{"error": …}` lands in a 200 dependencies body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InStreamPlacement {
    /// After the closing `]`: `[a,b]{"error":…}`.
    AfterArray,
    /// As the last element: `[a,b,{"error":…}]`.
    InsideArray,
    /// In place of the rest of the array, which never closes: `[a,b{"error":…}`.
    Truncated,
}

/// One scripted misbehaviour.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// 429 with an optional `Retry-After` value, sent as given (`"3"` or an HTTP-date).
    RateLimited {
        /// The header value.
        retry_after: Option<String>,
    },
    /// This status with FOSSA's JSON error body (500, 502, 503, 400, …) and an optional
    /// `Retry-After`.
    Status {
        /// The status.
        status: u16,
        /// The header value.
        retry_after: Option<String>,
    },
    /// Any answer at all, for example a proxy's HTML page or a body of the wrong shape.
    Respond {
        /// The status.
        status: u16,
        /// The `Content-Type`.
        content_type: String,
        /// The body.
        body: String,
    },
    /// Close the connection without answering.
    DropConnection,
    /// The normal 200 answer cut off halfway, so it is not valid JSON.
    MalformedJson,
    /// A 200 dependencies body with FOSSA's in-stream error after `after` elements of the
    /// page (other endpoints: the same text appended to their body).
    InStreamError {
        /// Elements written before the error.
        after: usize,
        /// Where the error object goes.
        placement: InStreamPlacement,
        /// The error text.
        message: String,
    },
    /// The normal answer, sent `chunk` bytes at a time with `delay` between chunks.
    SlowBody {
        /// Bytes per chunk (at least one).
        chunk: usize,
        /// Pause between chunks.
        delay: Duration,
    },
    /// 202 `{"message":"analysis in-progress","issues":[]}` as FOSSA sends while analysing.
    AnalysisInProgress,
}

impl Fault {
    /// 429 with `Retry-After: <value>`.
    pub fn rate_limited(retry_after: impl Into<String>) -> Self {
        Self::RateLimited {
            retry_after: Some(retry_after.into()),
        }
    }

    /// `status` with FOSSA's JSON error body and no `Retry-After`.
    #[must_use]
    pub fn status(status: u16) -> Self {
        Self::Status {
            status,
            retry_after: None,
        }
    }

    /// 503 with `Retry-After: <value>`.
    pub fn unavailable(retry_after: impl Into<String>) -> Self {
        Self::Status {
            status: 503,
            retry_after: Some(retry_after.into()),
        }
    }

    /// `status` with an HTML page, as a proxy or load balancer sends.
    #[must_use]
    pub fn proxy_html(status: u16) -> Self {
        Self::Respond {
            status,
            content_type: "text/html".to_owned(),
            body: format!(
                "<html><head><title>{status}</title></head><body><h1>{status}</h1>\
                 <p>upstream unavailable</p></body></html>"
            ),
        }
    }

    /// A 200 JSON body of your choosing (for example one of the wrong shape).
    pub fn json_body(body: impl Into<String>) -> Self {
        Self::Respond {
            status: 200,
            content_type: "application/json".to_owned(),
            body: body.into(),
        }
    }

    /// An in-stream error after `after` dependency elements.
    #[must_use]
    pub fn in_stream_error(after: usize, placement: InStreamPlacement) -> Self {
        Self::InStreamError {
            after,
            placement,
            message: "dependency stream interrupted: upstream query failed".to_owned(),
        }
    }
}

/// A fault waiting to happen on one endpoint (or every endpoint).
#[derive(Clone, Debug)]
pub(crate) struct FaultRule {
    pub(crate) endpoint: Option<Endpoint>,
    pub(crate) fault: Fault,
    /// `None`: until cleared.
    pub(crate) remaining: Option<u32>,
}

/// The scripted faults and latencies.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    rules: Vec<FaultRule>,
    latency: Vec<(Option<Endpoint>, Duration)>,
}

impl Faults {
    pub(crate) fn push(&mut self, rule: FaultRule) {
        if rule.remaining != Some(0) {
            self.rules.push(rule);
        }
    }

    pub(crate) fn set_latency(&mut self, endpoint: Option<Endpoint>, latency: Duration) {
        self.latency.retain(|(e, _)| *e != endpoint);
        if !latency.is_zero() {
            self.latency.push((endpoint, latency));
        }
    }

    pub(crate) fn clear(&mut self) {
        self.rules.clear();
        self.latency.clear();
    }

    /// The first rule for `endpoint`, used up by one.
    pub(crate) fn take(&mut self, endpoint: Endpoint) -> Option<Fault> {
        let index = self
            .rules
            .iter()
            .position(|r| r.endpoint.is_none_or(|e| e == endpoint))?;
        let rule = self.rules.get_mut(index)?;
        let fault = rule.fault.clone();
        if let Some(remaining) = rule.remaining.as_mut() {
            *remaining -= 1;
            if *remaining == 0 {
                self.rules.remove(index);
            }
        }
        Some(fault)
    }

    /// Added latency for `endpoint`: its own plus the one for every endpoint.
    pub(crate) fn latency(&self, endpoint: Endpoint) -> Duration {
        self.latency
            .iter()
            .filter(|(e, _)| e.is_none_or(|e| e == endpoint))
            .map(|(_, d)| *d)
            .sum()
    }

    /// Rules still pending.
    pub(crate) fn pending(&self) -> usize {
        self.rules.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_used_up_in_order_and_per_endpoint() {
        let mut faults = Faults::default();
        faults.push(FaultRule {
            endpoint: Some(Endpoint::Issues),
            fault: Fault::status(500),
            remaining: Some(2),
        });
        faults.push(FaultRule {
            endpoint: None,
            fault: Fault::DropConnection,
            remaining: Some(1),
        });
        assert_eq!(faults.take(Endpoint::Projects), Some(Fault::DropConnection));
        assert_eq!(faults.take(Endpoint::Projects), None);
        assert_eq!(faults.take(Endpoint::Issues), Some(Fault::status(500)));
        assert_eq!(faults.take(Endpoint::Issues), Some(Fault::status(500)));
        assert_eq!(faults.take(Endpoint::Issues), None);
        assert_eq!(faults.pending(), 0);
    }

    #[test]
    fn latency_adds_up() {
        let mut faults = Faults::default();
        faults.set_latency(None, Duration::from_millis(5));
        faults.set_latency(Some(Endpoint::Issues), Duration::from_millis(10));
        assert_eq!(faults.latency(Endpoint::Issues), Duration::from_millis(15));
        assert_eq!(faults.latency(Endpoint::Projects), Duration::from_millis(5));
        faults.clear();
        assert_eq!(faults.latency(Endpoint::Issues), Duration::ZERO);
    }
}
