//! A matcher for record patterns in which one byte of look-ahead decides
//! every choice: which branch of an alternation, whether a repetition goes
//! on. Such a pattern is matched in one pass, without backtracking, and
//! with tight loops over character classes: about twice as fast as the
//! general capture engines on a tcpdump packet (`cargo bench`), which spend
//! about 4 ns a byte whatever the pattern (regex-automata's one-pass DFA as
//! much as its bounded backtracker).
//!
//! Log formats are written this way by nature: a field ends where a
//! delimiter that cannot be part of it begins. [`OnePass::new`] accepts a
//! pattern only when it can prove that every choice is decided by the next
//! byte; anything else (lazy repetitions, look-around other than a leading
//! `^`, classes with part of the non-ASCII range) is left to the regex
//! engines. The result is the leftmost-first match the regex crate finds,
//! group for group; a proptest and a fuzz target (`fuzz/`) check it against
//! regex-automata on random patterns.

use regex_automata::util::primitives::NonMaxUsize;
use regex_syntax::hir::{Class, Hir, HirKind, Look};

/// A set of bytes.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct ByteSet([u64; 4]);

impl ByteSet {
    fn insert(&mut self, b: u8) {
        self.0[usize::from(b >> 6)] |= 1 << (b & 63);
    }

    fn insert_range(&mut self, lo: u8, hi: u8) {
        for b in lo..=hi {
            self.insert(b);
        }
    }

    #[inline]
    fn contains(&self, b: u8) -> bool {
        self.0[usize::from(b >> 6)] & (1 << (b & 63)) != 0
    }

    fn union(self, other: ByteSet) -> ByteSet {
        ByteSet(std::array::from_fn(|i| self.0[i] | other.0[i]))
    }

    fn intersects(&self, other: &ByteSet) -> bool {
        self.0.iter().zip(other.0.iter()).any(|(a, b)| a & b != 0)
    }
}

/// What may come after a node: the bytes that can start it, and whether
/// the match may end there instead.
#[derive(Clone, Default)]
struct Follow {
    first: ByteSet,
    /// `Some` when what follows can match the empty string and end the
    /// match: the slots of the groups that then match empty.
    end: Option<Box<[usize]>>,
}

/// One character of a class, as bytes of UTF-8 text.
#[derive(Clone, Copy)]
struct CharClass {
    /// The ASCII characters in the class.
    ascii: ByteSet,
    /// Whether every non-ASCII character is in the class too (`[^\n]`,
    /// `.`); a class with only some of them is not accepted.
    non_ascii: bool,
    /// The bytes a run of the class's characters is made of: its ASCII
    /// characters and, with `non_ascii`, every byte >= 0x80 (a table: one
    /// load a byte in the loops over runs).
    run: [bool; 256],
}

impl CharClass {
    /// Whether `b` can be part of a run of the class's characters: an
    /// ASCII byte of the class, or any byte of a non-ASCII character when
    /// all of those are in it.
    #[inline]
    fn in_run(&self, b: u8) -> bool {
        self.run[usize::from(b)]
    }

    fn new(ascii: ByteSet, non_ascii: bool) -> CharClass {
        let run = std::array::from_fn(|b| if b < 0x80 { ascii.contains(b as u8) } else { non_ascii });
        CharClass { ascii, non_ascii, run }
    }

    /// The bytes that can start a character of the class.
    fn first(&self) -> ByteSet {
        let mut set = self.ascii;
        if self.non_ascii {
            // Lead bytes of 2- to 4-byte UTF-8 sequences.
            set.insert_range(0xC2, 0xF4);
        }
        set
    }

    /// The length of the class's character at `hay[pos]`, if it is one.
    #[inline]
    fn step(&self, hay: &[u8], pos: usize) -> Option<usize> {
        let b = *hay.get(pos)?;
        if b < 0x80 {
            return self.ascii.contains(b).then_some(1);
        }
        // The haystack is a `&str`: a lead byte says how long its
        // character is.
        self.non_ascii.then(|| utf8_len(b))
    }
}

/// The length of the character that ends at `end`.
fn utf8_char_back(hay: &[u8], end: usize) -> usize {
    let mut n = 1;
    while n < 4 && n < end && hay[end - n] & 0xC0 == 0x80 {
        n += 1;
    }
    n
}

fn utf8_len(lead: u8) -> usize {
    match lead {
        0xF0.. => 4,
        0xE0.. => 3,
        _ => 2,
    }
}

#[derive(Clone)]
enum Node {
    Empty,
    Literal(Box<[u8]>),
    Class(CharClass),
    /// A class repeated: the loop runs over bytes, not nodes.
    ClassRepeat {
        class: CharClass,
        min: u32,
        max: u32,
        /// Whether the match may end before the loop's next character,
        /// so that a failure later falls back to ending here, and the
        /// groups that then match empty.
        end: Option<Box<[usize]>>,
    },
    Repeat {
        sub: Box<Node>,
        first: ByteSet,
        min: u32,
        max: u32,
        end: Option<Box<[usize]>>,
    },
    Alternation {
        branches: Vec<(ByteSet, Node)>,
        /// A last branch that matches the empty string, taken when no other
        /// branch's first byte is next.
        empty: Option<Box<Node>>,
        end: Option<Box<[usize]>>,
    },
    Capture {
        slot: usize,
        sub: Box<Node>,
    },
    /// A group around a node of [`Node::is_leaf`]: matched inline.
    CaptureLeaf {
        slot: usize,
        sub: Box<Node>,
    },
    Concat(Vec<Node>),
}

impl Node {
    /// Whether [`Run::leaf`] matches it without a call.
    fn is_leaf(&self) -> bool {
        matches!(
            self,
            Node::Empty | Node::Literal(_) | Node::Class(_) | Node::ClassRepeat { .. }
        )
    }
}

/// Facts about a pattern node used to check and compile its parent.
struct Shape {
    first: ByteSet,
    nullable: bool,
    /// Whether it holds a choice (alternation or variable repetition).
    has_choice: bool,
    /// When nullable: the slots of the groups that match empty on the way
    /// a backtracking engine takes to match it empty.
    empty_groups: Vec<usize>,
}

/// Slots of the most groups a one-pass pattern may have (the fallback
/// copy of them lives on the stack).
const MAX_SLOTS: usize = 64;

/// Slots of the patterns rules usually read (a narrowed pattern keeps a
/// few groups).
const SMALL_SLOTS: usize = 16;

/// A compiled one-pass record pattern.
#[derive(Clone)]
pub struct OnePass {
    root: Node,
    slot_len: usize,
}

impl std::fmt::Debug for OnePass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnePass")
            .field("slot_len", &self.slot_len)
            .finish_non_exhaustive()
    }
}

impl OnePass {
    /// Compiles `hir` when it starts with `^` and every choice in it is
    /// decided by one byte; `None` otherwise.
    pub fn new(hir: &Hir) -> Option<OnePass> {
        let body = strip_start_anchor(hir)?;
        let mut max_group = 0;
        let root = compile(
            &body,
            Follow {
                first: ByteSet::default(),
                end: Some(Box::new([])),
            },
            &mut max_group,
        )?;
        let slot_len = 2 * (max_group + 1);
        (slot_len <= MAX_SLOTS).then_some(OnePass { root, slot_len })
    }

    /// Slots needed: start and end of group 0 and of every group.
    pub fn slot_len(&self) -> usize {
        self.slot_len
    }

    /// Matches at the start of `text`, filling `slots` (at least
    /// [`OnePass::slot_len`] long) as regex-automata does; false when the
    /// pattern does not match.
    pub fn captures(&self, text: &str, slots: &mut [Option<NonMaxUsize>]) -> bool {
        slots.fill(None);
        let slots = &mut slots[..self.slot_len];
        // The fallback copy, on the stack: sized to the pattern, since
        // clearing the largest one cost as much as a short match.
        let (mut small, mut large);
        let saved_slots = if self.slot_len <= SMALL_SLOTS {
            small = [None; SMALL_SLOTS];
            &mut small[..self.slot_len]
        } else {
            large = [None; MAX_SLOTS];
            &mut large[..self.slot_len]
        };
        let mut run = Run {
            hay: text.as_bytes(),
            slots,
            saved: None,
            saved_slots,
        };
        let end = match run.node(&self.root, 0) {
            Some(end) => end,
            None => match run.saved {
                Some(end) => {
                    run.slots.copy_from_slice(run.saved_slots);
                    end
                }
                None => return false,
            },
        };
        run.slots[0] = NonMaxUsize::new(0);
        run.slots[1] = NonMaxUsize::new(end);
        true
    }
}

/// The pattern without its leading `^`, or `None` when it has none (an
/// unanchored search is left to the regex engines).
fn strip_start_anchor(hir: &Hir) -> Option<Hir> {
    match hir.kind() {
        HirKind::Look(Look::Start) => Some(Hir::empty()),
        HirKind::Concat(parts) => {
            let (head, rest) = parts.split_first()?;
            let head = strip_start_anchor(head)?;
            Some(Hir::concat(std::iter::once(head).chain(rest.iter().cloned()).collect()))
        }
        HirKind::Capture(c) => {
            let sub = strip_start_anchor(&c.sub)?;
            Some(Hir::capture(regex_syntax::hir::Capture {
                index: c.index,
                name: c.name.clone(),
                sub: Box::new(sub),
            }))
        }
        _ => None,
    }
}

fn char_class(class: &Class) -> Option<CharClass> {
    let mut ascii = ByteSet::default();
    match class {
        Class::Unicode(c) => {
            // Non-ASCII characters covered, to see whether all are.
            let mut non_ascii: u64 = 0;
            for r in c.ranges() {
                let (lo, hi) = (u32::from(r.start()), u32::from(r.end()));
                if lo < 0x80 {
                    ascii.insert_range(lo as u8, hi.min(0x7F) as u8);
                }
                if hi >= 0x80 {
                    let lo = lo.max(0x80);
                    // Ranges of `char` may span the surrogates numerically.
                    let surrogates = hi.min(0xDFFF).saturating_sub(lo.max(0xD800)) + 1;
                    let surrogates = if lo <= 0xDFFF && hi >= 0xD800 { surrogates } else { 0 };
                    non_ascii += u64::from(hi - lo + 1 - surrogates);
                }
            }
            // Every scalar value from U+0080 on: the surrogates are not
            // characters and never in a class.
            const ALL_NON_ASCII: u64 = 0x10FFFF - 0x80 + 1 - 0x800;
            match non_ascii {
                0 => Some(CharClass::new(ascii, false)),
                ALL_NON_ASCII => Some(CharClass::new(ascii, true)),
                _ => None,
            }
        }
        Class::Bytes(c) => {
            for r in c.ranges() {
                if r.end() >= 0x80 {
                    return None;
                }
                ascii.insert_range(r.start(), r.end());
            }
            Some(CharClass::new(ascii, false))
        }
    }
}

/// First bytes and nullability, without compiling.
fn shape(hir: &Hir) -> Option<Shape> {
    Some(match hir.kind() {
        HirKind::Empty => Shape {
            first: ByteSet::default(),
            nullable: true,
            has_choice: false,
            empty_groups: Vec::new(),
        },
        HirKind::Literal(lit) => {
            let mut first = ByteSet::default();
            first.insert(*lit.0.first()?);
            Shape {
                first,
                nullable: false,
                has_choice: false,
                empty_groups: Vec::new(),
            }
        }
        HirKind::Class(class) => Shape {
            first: char_class(class)?.first(),
            nullable: false,
            has_choice: false,
            empty_groups: Vec::new(),
        },
        HirKind::Look(_) => return None,
        HirKind::Repetition(rep) => {
            let sub = shape(&rep.sub)?;
            Shape {
                first: sub.first,
                nullable: rep.min == 0 || sub.nullable,
                has_choice: sub.has_choice || rep.max != Some(rep.min),
                // Empty by taking no turn (a body that can be empty is
                // refused when compiled).
                empty_groups: Vec::new(),
            }
        }
        HirKind::Capture(c) => {
            let mut sub = shape(&c.sub)?;
            if sub.nullable {
                sub.empty_groups.insert(0, c.index as usize * 2);
            }
            sub
        }
        HirKind::Concat(parts) => {
            let mut out = Shape {
                first: ByteSet::default(),
                nullable: true,
                has_choice: false,
                empty_groups: Vec::new(),
            };
            for part in parts {
                let s = shape(part)?;
                if out.nullable {
                    out.first = out.first.union(s.first);
                }
                out.nullable &= s.nullable;
                out.has_choice |= s.has_choice;
                out.empty_groups.extend(s.empty_groups);
            }
            out
        }
        HirKind::Alternation(branches) => {
            let mut out = Shape {
                first: ByteSet::default(),
                nullable: false,
                has_choice: true,
                empty_groups: Vec::new(),
            };
            for b in branches {
                let s = shape(b)?;
                out.first = out.first.union(s.first);
                if s.nullable && !out.nullable {
                    // The first branch that can be empty is the one taken.
                    out.empty_groups = s.empty_groups;
                }
                out.nullable |= s.nullable;
            }
            out
        }
    })
}

/// Compiles `hir`, which is followed by `follow`; `None` when a choice in
/// it cannot be decided by the next byte.
#[expect(
    clippy::too_many_lines,
    reason = "one arm per regex construct, each a few lines; split, the arms would only be listed twice"
)]
fn compile(hir: &Hir, follow: Follow, max_group: &mut usize) -> Option<Node> {
    Some(match hir.kind() {
        HirKind::Empty => Node::Empty,
        HirKind::Literal(lit) => Node::Literal(lit.0.clone()),
        HirKind::Class(class) => Node::Class(char_class(class)?),
        HirKind::Look(_) => return None,
        HirKind::Capture(c) => {
            let index = c.index as usize;
            *max_group = (*max_group).max(index);
            let sub = Box::new(compile(&c.sub, follow, max_group)?);
            match sub.is_leaf() {
                true => Node::CaptureLeaf { slot: index * 2, sub },
                false => Node::Capture { slot: index * 2, sub },
            }
        }
        HirKind::Concat(parts) => {
            // Each part is followed by what the parts after it can start
            // with, up to the first that cannot be empty.
            let mut follows = vec![follow.clone(); parts.len()];
            let mut after = follow;
            for (i, part) in parts.iter().enumerate().rev() {
                follows[i] = after.clone();
                let s = shape(part)?;
                after = Follow {
                    first: if s.nullable {
                        s.first.union(after.first)
                    } else {
                        s.first
                    },
                    end: match (s.nullable, &after.end) {
                        (true, Some(end)) => Some(s.empty_groups.iter().chain(end.iter()).copied().collect()),
                        _ => None,
                    },
                };
            }
            let nodes = parts
                .iter()
                .zip(follows)
                .map(|(part, f)| compile(part, f, max_group))
                .collect::<Option<Vec<_>>>()?;
            Node::Concat(nodes)
        }
        HirKind::Alternation(branches) => {
            let mut compiled: Vec<(ByteSet, Node)> = Vec::new();
            let mut empty = None;
            let mut taken = ByteSet::default();
            for (i, branch) in branches.iter().enumerate() {
                let s = shape(branch)?;
                if s.nullable {
                    // Only a last empty-capable branch: earlier, it would
                    // be preferred over the branches after it.
                    if i != branches.len() - 1 || s.first.intersects(&follow.first) {
                        return None;
                    }
                    if s.first.intersects(&taken) {
                        return None;
                    }
                    empty = Some((s.empty_groups, Box::new(compile(branch, follow.clone(), max_group)?)));
                    continue;
                }
                if s.first.intersects(&taken) {
                    return None;
                }
                taken = taken.union(s.first);
                compiled.push((s.first, compile(branch, follow.clone(), max_group)?));
            }
            // Without an empty branch, a byte that starts no branch fails
            // the match; with one, the bytes after must not start a branch.
            if empty.is_some() && taken.intersects(&follow.first) {
                return None;
            }
            // If a branch fails, the empty one is the way out; then its
            // empty groups and those of what follows match empty.
            let end = match (&empty, &follow.end) {
                (Some((groups, _)), Some(end)) => Some(groups.iter().chain(end.iter()).copied().collect()),
                _ => None,
            };
            Node::Alternation {
                branches: compiled,
                empty: empty.map(|(_, node)| node),
                end,
            }
        }
        HirKind::Repetition(rep) => {
            if !rep.greedy {
                return None;
            }
            let sub_shape = shape(&rep.sub)?;
            if sub_shape.nullable {
                return None;
            }
            let max = rep.max.unwrap_or(u32::MAX);
            let variable = max != rep.min;
            // Whether to go on is decided by the next byte: it must not
            // also start what follows.
            if variable && sub_shape.first.intersects(&follow.first) {
                return None;
            }
            if let HirKind::Class(class) = rep.sub.kind() {
                return Some(Node::ClassRepeat {
                    class: char_class(class)?,
                    min: rep.min,
                    max,
                    end: follow.end,
                });
            }
            // Inside the body, what follows is another turn (when there can
            // be one) or what follows the loop. Whether the match may end after a turn
            // depends on the count when more than one turn is required:
            // such a body must hold no choice that would fall back on it.
            let sub_follow = Follow {
                first: if max > 1 {
                    sub_shape.first.union(follow.first)
                } else {
                    follow.first
                },
                end: follow.end.clone().filter(|_| rep.min <= 1),
            };
            if follow.end.is_some() && rep.min > 1 && sub_shape.has_choice {
                return None;
            }
            let sub = compile(&rep.sub, sub_follow, max_group)?;
            Node::Repeat {
                sub: Box::new(sub),
                first: sub_shape.first,
                min: rep.min,
                max,
                end: follow.end,
            }
        }
    })
}

/// The state of one match.
struct Run<'a, 'h> {
    hay: &'h [u8],
    slots: &'a mut [Option<NonMaxUsize>],
    /// The match as it stood at the last place it could have ended before
    /// a greedy choice went on: the end and the slots. A failure after it
    /// falls back to it, as a backtracking engine would.
    saved: Option<usize>,
    saved_slots: &'a mut [Option<NonMaxUsize>],
}

impl Run<'_, '_> {
    /// Records that the match could end at `pos`, the groups at `empty`
    /// matching empty there.
    fn save(&mut self, pos: usize, empty: &[usize]) {
        let saved = &mut *self.saved_slots;
        saved.copy_from_slice(self.slots);
        // Groups open here (started, not ended) end here.
        for group in saved.chunks_exact_mut(2) {
            if group[0].is_some() && group[1].is_none() {
                group[1] = NonMaxUsize::new(pos);
            }
        }
        for &slot in empty {
            saved[slot] = NonMaxUsize::new(pos);
            saved[slot + 1] = NonMaxUsize::new(pos);
        }
        self.saved = Some(pos);
    }

    /// Matches a node that holds no choice of its own to fall back on:
    /// inlined into the loop over a sequence, where most nodes are these
    /// (a call per node cost more than matching it).
    #[inline(always)]
    fn leaf(&mut self, node: &Node, pos: usize) -> Option<usize> {
        match node {
            Node::CaptureLeaf { slot, sub } => self.group(*slot, pos, |run| run.simple(sub, pos)),
            Node::Empty | Node::Literal(_) | Node::Class(_) | Node::ClassRepeat { .. } => self.simple(node, pos),
            _ => self.node(node, pos),
        }
    }

    /// A capture group whose inside `inner` matches from `pos`.
    #[inline(always)]
    fn group(&mut self, slot: usize, pos: usize, inner: impl FnOnce(&mut Self) -> Option<usize>) -> Option<usize> {
        // Inside, the group is open: start set, end cleared, so a fallback
        // saved inside it ends it there.
        let previous = (self.slots[slot], self.slots[slot + 1]);
        self.slots[slot] = NonMaxUsize::new(pos);
        self.slots[slot + 1] = None;
        let Some(end) = inner(self) else {
            (self.slots[slot], self.slots[slot + 1]) = previous;
            return None;
        };
        self.slots[slot + 1] = NonMaxUsize::new(end);
        Some(end)
    }

    /// [`Run::leaf`] for the nodes that hold no other.
    #[inline(always)]
    fn simple(&mut self, node: &Node, pos: usize) -> Option<usize> {
        match node {
            Node::Empty => Some(pos),
            Node::Literal(lit) => {
                // Record literals are short: a loop beats a call to memcmp.
                let end = pos + lit.len();
                let same = self
                    .hay
                    .get(pos..end)
                    .is_some_and(|h| h.iter().zip(lit.iter()).all(|(a, b)| a == b));
                same.then_some(end)
            }
            Node::Class(class) => class.step(self.hay, pos).map(|n| pos + n),
            Node::ClassRepeat { class, min, max, end } => {
                let start = pos;
                let mut pos = pos;
                if *max == u32::MAX && *min <= 1 {
                    // Only whether there is one character counts: run over
                    // bytes (all bytes of a non-ASCII character are >= 0x80).
                    pos += self.hay[pos..]
                        .iter()
                        .position(|&b| !class.in_run(b))
                        .unwrap_or(self.hay.len() - pos);
                    if pos == start && *min == 1 {
                        return None;
                    }
                    if let Some(end) = end {
                        if pos > start && (*min == 0 || pos - start > utf8_char_back(self.hay, pos)) {
                            self.save(pos - utf8_char_back(self.hay, pos), end);
                        }
                    }
                    return Some(pos);
                }
                let mut count = 0u32;
                let mut before_last = pos;
                while count < *max {
                    let Some(n) = class.step(self.hay, pos) else { break };
                    before_last = pos;
                    pos += n;
                    count += 1;
                }
                if count < *min {
                    return None;
                }
                // Giving back characters is a way out only when the match
                // may end there (what follows cannot start with a class
                // character), and the last one given back is the nearest.
                if let (Some(end), true) = (end, count > *min) {
                    self.save(before_last, end);
                }
                Some(pos)
            }
            _ => unreachable!("not a simple node"),
        }
    }

    fn node(&mut self, node: &Node, pos: usize) -> Option<usize> {
        match node {
            Node::Empty | Node::Literal(_) | Node::Class(_) | Node::ClassRepeat { .. } | Node::CaptureLeaf { .. } => {
                self.leaf(node, pos)
            }
            Node::Repeat {
                sub,
                first,
                min,
                max,
                end,
            } => {
                let mut pos = pos;
                let mut count = 0u32;
                while count < *max {
                    if count >= *min {
                        match self.hay.get(pos) {
                            Some(&b) if first.contains(b) => {}
                            _ => break,
                        }
                        if let Some(end) = end {
                            self.save(pos, end);
                        }
                    }
                    pos = self.node(sub, pos)?;
                    count += 1;
                }
                Some(pos)
            }
            Node::Alternation { branches, empty, end } => {
                let next = self.hay.get(pos).copied();
                let chosen = next.and_then(|b| branches.iter().find(|(set, _)| set.contains(b)));
                match (chosen, empty) {
                    (Some((_, branch)), Some(_)) if end.is_some() => {
                        // The empty branch comes after: if this one fails,
                        // the match ends here.
                        self.save(pos, end.as_deref().unwrap_or_default());
                        self.node(branch, pos)
                    }
                    (Some((_, branch)), _) => self.node(branch, pos),
                    (None, Some(empty)) => self.node(empty, pos),
                    (None, None) => None,
                }
            }
            Node::Capture { slot, sub } => self.group(*slot, pos, |run| run.node(sub, pos)),
            Node::Concat(nodes) => {
                let mut pos = pos;
                for n in nodes {
                    pos = self.leaf(n, pos)?;
                }
                Some(pos)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matching::regex_util::ascii_classes;
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use regex_automata::{meta, Input};

    /// Record patterns run in their ASCII form (`\\d` is `[0-9]`).
    fn onepass(pattern: &str) -> Option<OnePass> {
        OnePass::new(&regex_syntax::Parser::new().parse(&ascii_classes(pattern)).unwrap())
    }

    /// Start and end of each group, `None` when it took no part.
    type Spans = Vec<Option<usize>>;

    /// Both engines' slots for `pattern` on `hay`; `None` when the pattern
    /// is not one-pass.
    fn both(pattern: &str, hay: &str) -> Option<(Option<Spans>, Option<Spans>)> {
        let fast = onepass(pattern)?;
        let re = meta::Regex::new(&ascii_classes(pattern)).unwrap();
        let mut expected = vec![None; re.group_info().slot_len()];
        let expected = re
            .search_slots(&Input::new(hay), &mut expected)
            .map(|_| expected.iter().map(|s| s.map(|s| s.get())).collect());
        let mut got = vec![None; re.group_info().slot_len()];
        assert!(fast.slot_len() <= got.len());
        let got = fast
            .captures(hay, &mut got)
            .then(|| got.iter().map(|s| s.map(|s| s.get())).collect());
        Some((got, expected))
    }

    #[test]
    fn record_patterns_are_accepted() {
        let tcpdump = r"^(?P<ts>\d\d:\d\d:\d\d\.\d+) IP \(tos (?P<tos>0x[0-9a-f]+),(?:ECT\(\d\), |CE, | )ttl (?P<ttl>\d+)(?:, (?:[^()\n]|\([^()\n]*\))*)?\)[ \t\r]*\n[ \t]+(?P<src>\d+\.\d+\.\d+\.\d+)\.(?P<sport>\d+): Flags \[(?P<flags>[^\]]*)\](?:, (?:cksum (?P<cksum>correct|incorrect)|seq (?P<seq>\d+(?::\d+)?)|win (?P<win>\d+)|options \[(?P<options>[^\]\n]*)\]))*";
        let hay = "08:10:20.156901 IP (tos 0x0,ECT(1), ttl 64, options (RA))\n    127.0.0.1.54838: Flags [S], cksum incorrect, seq 1:518, win 65495, options [mss 65495,nop], length 0";
        let (got, expected) = both(tcpdump, hay).expect("one-pass");
        assert_eq!(got, expected);
        assert!(got.is_some());
        // A choice that two bytes decide, a lazy loop, an unanchored
        // pattern: left to the regex engines.
        assert!(onepass(r"^(?:\d{4}-\d\d )?\d\d:").is_none());
        assert!(onepass(r"^a(?:, [^\n]*?)?\)").is_none());
        assert!(onepass(r"a+b").is_none());
        assert!(
            onepass(r"^\p{Greek}+").is_none(),
            "a class with only some non-ASCII characters"
        );
        assert!(onepass(r"^[^\n]+").is_some());
    }

    #[test]
    fn a_failed_greedy_turn_falls_back_to_the_shorter_match() {
        for (pattern, hay) in [
            (r"^a(?:, (?:x\d|y\d))*", "a, x1, y2, z3"),
            (r"^(?P<g>a(?:, b)*)", "a, b, c"),
            (r"^a(?:bc|d)?", "ab"),
            (r"^(?P<n>\d+)?", "x"),
            (r"^(?P<l>[a-z]+)(?P<d>\d*)", "abc1x"),
            // The way out matches a group empty.
            (r"^(?:(?:\d){2}|((?:a){0,2}))", "1"),
            (r"^a(?:bc|d)?(?P<e>x*)", "ab"),
        ] {
            let (got, expected) = both(pattern, hay).expect(pattern);
            assert_eq!(got, expected, "{pattern} on {hay:?}");
        }
    }

    /// Small patterns over a small alphabet, so that choices collide often.
    fn pattern() -> impl Strategy<Value = String> {
        let atom = prop_oneof![
            Just("a".to_string()),
            Just("b".to_string()),
            Just("ab".to_string()),
            Just(":".to_string()),
            Just(" ".to_string()),
            Just(r"\d".to_string()),
            Just("[a-b]".to_string()),
            Just(r"[^:\n]".to_string()),
            Just(".".to_string()),
            Just("é".to_string()),
        ];
        atom.prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 1..4).prop_map(|v| v.concat()),
                prop::collection::vec(inner.clone(), 2..4).prop_map(|v| format!("(?:{})", v.join("|"))),
                (
                    inner.clone(),
                    prop_oneof![
                        Just("*"),
                        Just("+"),
                        Just("?"),
                        Just("{1,3}"),
                        Just("{2}"),
                        Just("{0,2}")
                    ]
                )
                    .prop_map(|(p, q)| format!("(?:{p}){q}")),
                inner.prop_map(|p| format!("({p})")),
            ]
        })
        .prop_map(|p| format!("^{p}"))
    }

    fn haystack() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                Just('a'),
                Just('b'),
                Just(':'),
                Just(' '),
                Just('1'),
                Just('\n'),
                Just('é')
            ],
            0..12,
        )
        .prop_map(|v| v.into_iter().collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16000))]
        #[test]
        fn agrees_with_the_regex_engine(pattern in pattern(), hays in prop::collection::vec(haystack(), 8)) {
            for hay in &hays {
                if let Some((got, expected)) = both(&pattern, hay) {
                    prop_assert_eq!(got, expected, "{} on {:?}", pattern, hay);
                }
            }
        }
    }

    /// The differential test above says something only if many of its
    /// patterns are one-pass.
    #[test]
    fn the_random_patterns_are_often_one_pass() {
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let tries = 2000;
        let accepted = (0..tries)
            .filter(|_| onepass(&pattern().new_tree(&mut runner).unwrap().current()).is_some())
            .count();
        eprintln!("{accepted} of {tries} random patterns are one-pass");
        assert!(accepted * 5 > tries, "{accepted} of {tries}");
    }
}
