//! Reference deployment of the compliance crates.
