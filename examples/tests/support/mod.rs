//! Test support shared by the browser tests.

pub(crate) mod cdp;
