//! The condition language: grammar, syntax tree, checker and compiled form.
//!
//! Text is parsed into an [`ast`] with spans, then checked against the
//! loaded formats and compiled ([`compile`]) into queries the engine runs;
//! [`constant`] finds conditions whose answer is known without a bundle.

pub mod ast;
pub mod compile;
pub mod constant;
pub mod ir;
pub mod parser;
pub mod registry;
