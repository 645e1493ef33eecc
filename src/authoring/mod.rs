//! Authoring commands: what a support engineer runs while writing rules and
//! formats — the rules' own tests, the records a bundle yields (`events`),
//! scaffolds of new rules and formats, the overlap lint that needs the
//! engine, and the generated documentation.

pub(crate) mod docs;
pub(crate) mod events;
pub(crate) mod kb;
pub(crate) mod overlap;
pub(crate) mod rule_tests;
pub(crate) mod scaffold;
