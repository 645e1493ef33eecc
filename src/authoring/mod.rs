//! Authoring commands: what a support engineer runs while writing rules and
//! formats — the rules' own tests, the records a bundle yields (`events`),
//! scaffolds of new rules and formats, the overlap lint that needs the
//! engine, and the generated documentation.

pub mod docs;
pub mod events;
pub mod kb;
pub mod overlap;
pub mod rule_tests;
pub mod scaffold;
