//! The condition language: grammar, syntax tree, checker and compiled form.
//!
//! Text is parsed into an [`ast`] with spans, then checked against the
//! loaded formats and compiled ([`check`]) into the runtime form ([`ir`])
//! that scanning and the engine run; [`constant`] finds conditions whose
//! answer is known without a bundle.
//!
//! The layers above use the names re-exported here: the runtime form, and
//! the checker's entry points for the rules.

pub mod ast;
pub mod check;
pub mod constant;
pub mod ir;
pub mod parser;
pub mod registry;

pub use check::{compile_predicate, compile_rule, MacroKind, MacroUse, Macros, RuleTexts};
pub use ir::{
    CCond, COperand, CPred, CompiledCondition, CompiledQuery, FieldRef, ListField, LiteralSet, Placeholder, QueryId,
    Truth,
};
