//! The condition language: grammar, syntax tree, checker and compiled form.
//!
//! Text is parsed into an [`ast`] with spans, then checked against the
//! loaded formats and compiled ([`check`]) into the runtime form ([`ir`])
//! that scanning and the engine run; [`constant`] finds conditions whose
//! answer is known without a bundle.
//!
//! The layers above use the names re-exported here: the runtime form, and
//! the checker's entry points for the rules.

pub(crate) mod ast;
pub(crate) mod check;
pub(crate) mod constant;
pub(crate) mod foreign;
pub(crate) mod ir;
pub(crate) mod parser;
pub(crate) mod registry;

pub(crate) use check::{compile_predicate, compile_rule, MacroKind, MacroUse, Macros, RuleTexts};
pub(crate) use ir::{
    CCond, COperand, CPred, CompiledCondition, CompiledQuery, FieldRef, ListField, ListFilter, LiteralSet, Placeholder,
    Truth,
};
