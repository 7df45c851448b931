//! Work in progress: see the tracker.
