//! The scan plan: every rule's queries by global id and, per format, what
//! its files are scanned for (the automaton over the queries' literals,
//! the queries that see every record, the formats with levels) and the
//! fields its records are parsed for. Built once per knowledge base.

use std::collections::HashMap;

use rayon::prelude::*;

use super::automaton::{build_automaton, Automaton};
use super::{GlobalQuery, LEVEL_HIT, SECONDARY_KEYS};
use crate::format::{Format, FormatKind, NarrowPatterns};
use crate::lang::{CPred, FieldRef};
use crate::rules::KnowledgeBase;
use crate::time::ZoneSpec;

/// A query of some rule, as the scanner sees it.
#[derive(Debug, Clone)]
pub struct PlannedQuery {
    /// Index of the rule in the knowledge base.
    pub rule: usize,
    /// Index of the query in the rule.
    pub local: usize,
}

/// What the scanner needs for files of one format.
#[derive(Debug, Default)]
pub(super) struct GroupPlan {
    /// One automaton over all the literals of the format, so each file is
    /// scanned once even when some literals ignore case.
    pub(super) literals: Option<Automaton>,
    /// Queries that see every record.
    pub(super) slow: Vec<GlobalQuery>,
    /// The formats, this one or embedded in it, whose records have levels.
    pub(super) leveled: Vec<usize>,
    /// For each secondary key: the query and which of its other literal
    /// sets (1, 2, …) a hit of the key stands for.
    pub(super) secondary: Vec<(GlobalQuery, u8)>,
    /// By query: how many other literal sets a record must hold a literal
    /// of besides the query's own (0 for most).
    pub(super) also_needed: HashMap<GlobalQuery, u8>,
    /// Whether some query of the group is asked only whether it matches.
    pub(super) has_existence_only: bool,
}

/// The compiled scan: all rules' queries, grouped by the format of the file.
#[derive(Debug)]
pub struct ScanPlan {
    /// Every query, by global id.
    pub queries: Vec<PlannedQuery>,
    /// For each rule, the global id of its first query.
    pub rule_offsets: Vec<u32>,
    pub(super) groups: Vec<GroupPlan>,
    /// Per format: its patterns capturing only the fields the queries
    /// read.
    pub(super) narrow: Vec<Option<NarrowPatterns>>,
}

/// Per format, by field index: whether a query reads the field (in its
/// predicate, a distinct count, a time, or as the message or time of a
/// record that embeds another). What is left out is still read when asked
/// for, only slower.
fn fields_read(kb: &KnowledgeBase, queries: &[PlannedQuery]) -> Vec<Vec<bool>> {
    let formats = &kb.formats.formats;
    let mut read: Vec<Vec<bool>> = formats.iter().map(|f| vec![false; f.fields.len()]).collect();
    let mut mark = |fi: usize, f: FieldRef| {
        let format = &formats[fi];
        let fields = match f {
            FieldRef::Field(i) => vec![i],
            FieldRef::Message => format.message_field.into_iter().collect(),
            FieldRef::Time => time_fields(format),
            FieldRef::Text | FieldRef::File | FieldRef::Line => Vec::new(),
        };
        for i in fields {
            if let Some(r) = read[fi].get_mut(i) {
                *r = true;
            }
        }
    };
    for (fi, format) in formats.iter().enumerate() {
        // A file that states a product's release is read for it.
        if let (Some(_), Some(i)) = (&format.product, format.field_index("version")) {
            mark(fi, FieldRef::Field(i));
        }
        // An error or a warning is grouped by its template, with its time.
        if let Some(levels) = &format.levels {
            mark(fi, FieldRef::Field(levels.field));
            mark(fi, levels.template_field.map_or(FieldRef::Message, FieldRef::Field));
            mark(fi, FieldRef::Time);
            for (outer, host) in formats.iter().enumerate() {
                if host.embeds.contains(&format.name) {
                    mark(outer, FieldRef::Message);
                    mark(outer, FieldRef::Time);
                }
            }
        }
    }
    for pq in queries {
        let q = &kb.rules[pq.rule].compiled.queries[pq.local];
        let mut refs = Vec::new();
        pred_fields(&q.pred, &mut refs);
        refs.extend(&q.distinct_fields);
        refs.extend(q.tallied.iter().filter_map(|f| match f {
            crate::lang::ListField::Field(f) => Some(*f),
            crate::lang::ListField::Capture(_) => None,
        }));
        if q.needs_time {
            refs.push(FieldRef::Time);
        }
        for f in refs {
            mark(q.source, f);
        }
        // A record read from another's message: the outer record's message
        // and time.
        for (outer, format) in formats.iter().enumerate() {
            if format.embeds.iter().any(|e| *e == formats[q.source].name) {
                mark(outer, FieldRef::Message);
                mark(outer, FieldRef::Time);
            }
        }
    }
    read
}

/// The fields a record's time is read from: the time stamp and its zone.
fn time_fields(format: &Format) -> Vec<usize> {
    let Some(spec) = &format.timestamp else {
        return Vec::new();
    };
    let mut fields = vec![spec.field];
    if let ZoneSpec::Field(name) = &spec.zone {
        fields.extend(format.field_index(name));
    }
    fields
}

/// Adds the fields a predicate tests.
fn pred_fields(p: &CPred, out: &mut Vec<FieldRef>) {
    match p {
        CPred::True => {}
        CPred::Cmp(f, ..)
        | CPred::Contains(f, _)
        | CPred::ContainsAny(f, _)
        | CPred::StartsWith(f, _)
        | CPred::EndsWith(f, _)
        | CPred::Matches(f, ..)
        | CPred::InList(f, _)
        | CPred::InCidr(f, _)
        | CPred::Is(f, _) => out.push(*f),
        CPred::And(children) | CPred::Or(children) => children.iter().for_each(|c| pred_fields(c, out)),
        CPred::Not(inner) => pred_fields(inner, out),
    }
}

impl ScanPlan {
    /// Builds the plan for a knowledge base.
    pub fn new(kb: &KnowledgeBase) -> ScanPlan {
        let formats = &kb.formats;
        let mut queries = Vec::new();
        let mut rule_offsets = Vec::new();
        for (ri, rule) in kb.rules.iter().enumerate() {
            rule_offsets.push(queries.len() as u32);
            for li in 0..rule.compiled.queries.len() {
                queries.push(PlannedQuery { rule: ri, local: li });
            }
        }
        // Formats are planned in parallel: building an automaton, or
        // narrowed patterns, takes milliseconds each.
        let groups: Vec<GroupPlan> = (0..formats.formats.len())
            .into_par_iter()
            .map(|fi| {
                let mut members = vec![fi];
                members.extend(formats.embedded(fi));
                let mut exact: Vec<(String, GlobalQuery)> = Vec::new();
                let mut caseless: Vec<(String, GlobalQuery)> = Vec::new();
                let mut slow = Vec::new();
                let mut secondary: Vec<(GlobalQuery, u8)> = Vec::new();
                let mut also_needed: HashMap<GlobalQuery, u8> = HashMap::new();
                for (gid, pq) in queries.iter().enumerate() {
                    let q = &kb.rules[pq.rule].compiled.queries[pq.local];
                    if !members.contains(&q.source) {
                        continue;
                    }
                    // Literals only help when the record text of this file is
                    // the text the query sees (not for JSON).
                    let literals = if formats.formats[fi].kind == FormatKind::Json {
                        None
                    } else {
                        q.literals.as_ref()
                    };
                    let mut add = |set: &crate::lang::LiteralSet, key: GlobalQuery| {
                        for l in &set.literals {
                            if set.case_insensitive {
                                caseless.push((l.clone(), key));
                            } else {
                                exact.push((l.clone(), key));
                            }
                        }
                    };
                    match literals {
                        Some(set) => {
                            add(set, gid as GlobalQuery);
                            for (n, also) in q.also_literals.iter().enumerate() {
                                add(also, SECONDARY_KEYS + secondary.len() as GlobalQuery);
                                secondary.push((gid as GlobalQuery, n as u8 + 1));
                            }
                            if !q.also_literals.is_empty() {
                                also_needed.insert(gid as GlobalQuery, q.also_literals.len() as u8);
                            }
                        }
                        None => slow.push(gid as GlobalQuery),
                    }
                }
                // Records that may be errors or warnings are candidates too,
                // tested for their level alone: a JSON file's objects are all
                // read anyway.
                let leveled: Vec<usize> = members
                    .iter()
                    .copied()
                    .filter(|&m| formats.formats[m].levels.is_some())
                    .collect();
                for &m in &leveled {
                    let levels = formats.formats[m].levels.as_ref().expect("filtered on levels");
                    match formats.formats[fi].kind {
                        FormatKind::Lines => exact.extend(levels.literals.iter().map(|l| (l.clone(), LEVEL_HIT))),
                        FormatKind::Json if !slow.contains(&LEVEL_HIT) => slow.push(LEVEL_HIT),
                        FormatKind::Json => {}
                    }
                }
                let has_existence_only = queries.iter().any(|pq| {
                    let q = &kb.rules[pq.rule].compiled.queries[pq.local];
                    members.contains(&q.source) && q.existence_only
                });
                GroupPlan {
                    literals: build_automaton(exact, caseless),
                    slow,
                    leveled,
                    secondary,
                    also_needed,
                    has_existence_only,
                }
            })
            .collect();
        let narrow = formats
            .formats
            .par_iter()
            .zip(fields_read(kb, &queries))
            .map(|(format, read)| format.narrow(&read))
            .collect();
        ScanPlan {
            queries,
            rule_offsets,
            groups,
            narrow,
        }
    }

    /// Number of distinct literals in the automaton of each format.
    pub fn literal_counts(&self) -> Vec<usize> {
        self.groups
            .iter()
            .map(|g| g.literals.as_ref().map_or(0, |a| a.owners.len()))
            .collect()
    }
}
