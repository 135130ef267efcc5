//! The regular expressions `grep` accepts here: literals, `.`, bracket
//! expressions, `*`, `+`, `?`, `^`, `$`, backslash escapes and alternation
//! (`|` with `-E`, `\|` without). This covers patterns such as
//! `cassandra.*connected` or `^UN` without a regex dependency.
//!
//! NOTE: groups, intervals (`{n,m}`) and back-references are not supported;
//! their characters match literally.

#[derive(Debug, Clone)]
enum Atom {
    Any,
    Literal(char),
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Atom {
    fn matches(&self, c: char) -> bool {
        match self {
            Atom::Any => true,
            Atom::Literal(l) => *l == c,
            Atom::Class { negated, ranges } => {
                ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != *negated
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Repeat {
    Once,
    Optional,
    ZeroOrMore,
    OneOrMore,
}

#[derive(Debug, Clone)]
struct Branch {
    at_start: bool,
    at_end: bool,
    pieces: Vec<(Atom, Repeat)>,
}

#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    branches: Vec<Branch>,
    ignore_case: bool,
}

impl Pattern {
    /// Compiles `source`; `extended` selects ERE syntax (`grep -E`).
    pub fn new(source: &str, extended: bool, ignore_case: bool) -> Self {
        let source = if ignore_case {
            source.to_lowercase()
        } else {
            source.to_string()
        };
        let branches = split_alternatives(&source, extended)
            .iter()
            .map(|branch| compile_branch(branch, extended))
            .collect();
        Self {
            branches,
            ignore_case,
        }
    }

    pub fn is_match(&self, line: &str) -> bool {
        let line = if self.ignore_case {
            line.to_lowercase()
        } else {
            line.to_string()
        };
        let text: Vec<char> = line.chars().collect();
        self.branches.iter().any(|branch| {
            let starts = if branch.at_start {
                0..=0
            } else {
                0..=text.len()
            };
            starts
                .into_iter()
                .any(|i| match_here(&branch.pieces, &text[i..], branch.at_end))
        })
    }
}

fn split_alternatives(source: &str, extended: bool) -> Vec<String> {
    let mut branches = vec![String::new()];
    let mut chars = source.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '|' if extended => branches.push(String::new()),
            '\\' if !extended && chars.peek() == Some(&'|') => {
                chars.next();
                branches.push(String::new());
            }
            '\\' => {
                let current = branches.last_mut().expect("branches starts non-empty");
                current.push('\\');
                current.extend(chars.next());
            }
            other => branches
                .last_mut()
                .expect("branches starts non-empty")
                .push(other),
        }
    }
    branches
}

fn compile_branch(source: &str, extended: bool) -> Branch {
    let mut chars: Vec<char> = source.chars().collect();
    let at_start = chars.first() == Some(&'^');
    if at_start {
        chars.remove(0);
    }
    let escaped_dollar = chars.len() >= 2 && chars[chars.len() - 2] == '\\';
    let at_end = chars.last() == Some(&'$') && !escaped_dollar;
    if at_end {
        chars.pop();
    }
    let mut pieces: Vec<(Atom, Repeat)> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        let repeat = match c {
            '*' if !pieces.is_empty() => Some(Repeat::ZeroOrMore),
            '+' if extended && !pieces.is_empty() => Some(Repeat::OneOrMore),
            '?' if extended && !pieces.is_empty() => Some(Repeat::Optional),
            _ => None,
        };
        if let Some(repeat) = repeat {
            pieces.last_mut().expect("checked non-empty").1 = repeat;
            continue;
        }
        let atom = match c {
            '.' => Atom::Any,
            '[' => {
                let (class, next) = parse_class(&chars, i);
                i = next;
                class
            }
            '\\' if i < chars.len() => {
                let escaped = chars[i];
                i += 1;
                match escaped {
                    '+' if !extended => {
                        if let Some(last) = pieces.last_mut() {
                            last.1 = Repeat::OneOrMore;
                        }
                        continue;
                    }
                    '?' if !extended => {
                        if let Some(last) = pieces.last_mut() {
                            last.1 = Repeat::Optional;
                        }
                        continue;
                    }
                    other => Atom::Literal(other),
                }
            }
            other => Atom::Literal(other),
        };
        pieces.push((atom, Repeat::Once));
    }
    Branch {
        at_start,
        at_end,
        pieces,
    }
}

/// Parses a bracket expression starting after `[` at `start`; returns the
/// atom and the index after `]`. An unterminated `[` matches literally.
fn parse_class(chars: &[char], start: usize) -> (Atom, usize) {
    let mut i = start;
    let negated = chars.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    while i < chars.len() && (chars[i] != ']' || first) {
        let lo = chars[i];
        if i + 2 < chars.len() && chars[i + 1] == '-' && chars[i + 2] != ']' {
            ranges.push((lo, chars[i + 2]));
            i += 3;
        } else {
            ranges.push((lo, lo));
            i += 1;
        }
        first = false;
    }
    if i >= chars.len() {
        return (Atom::Literal('['), start);
    }
    (Atom::Class { negated, ranges }, i + 1)
}

fn match_here(pieces: &[(Atom, Repeat)], text: &[char], at_end: bool) -> bool {
    let Some(((atom, repeat), rest)) = pieces.split_first() else {
        return !at_end || text.is_empty();
    };
    let first_matches = text.first().is_some_and(|c| atom.matches(*c));
    match repeat {
        Repeat::Once => first_matches && match_here(rest, &text[1..], at_end),
        Repeat::Optional => {
            (first_matches && match_here(rest, &text[1..], at_end))
                || match_here(rest, text, at_end)
        }
        Repeat::ZeroOrMore | Repeat::OneOrMore => {
            let min = usize::from(*repeat == Repeat::OneOrMore);
            let max = text.iter().take_while(|c| atom.matches(**c)).count();
            (min..=max)
                .rev()
                .any(|n| match_here(rest, &text[n..], at_end))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runbook_patterns_match() {
        let cassandra = Pattern::new("cassandra.*connected", false, true);
        assert!(
            cassandra.is_match("INFO Cassandra session connected to cluster butterfly-cassandra")
        );
        assert!(!cassandra.is_match("INFO Redis connected"));
        let heap = Pattern::new("heap", false, true);
        assert!(heap.is_match("JVM heap: initial=2048m max=4096m"));
    }

    #[test]
    fn anchors_classes_and_repeats() {
        assert!(Pattern::new("^UN", false, false).is_match("UN  10.0.0.1"));
        assert!(!Pattern::new("^UN", false, false).is_match(" UN"));
        assert!(Pattern::new("slots$", false, false).is_match("5461 slots"));
        assert!(Pattern::new("[0-9]+ keys", true, false).is_match("-> 12 keys |"));
        assert!(!Pattern::new("[0-9]+ keys", true, false).is_match("-> no keys"));
        assert!(Pattern::new("U[NJ]", false, false).is_match("UJ"));
        assert!(Pattern::new("colou?r", true, false).is_match("color"));
        assert!(Pattern::new("a\\.b", false, false).is_match("a.b"));
        assert!(!Pattern::new("a\\.b", false, false).is_match("axb"));
    }

    #[test]
    fn alternation() {
        assert!(Pattern::new("UJ|UL", true, false).is_match("UL 10.0.0.2"));
        assert!(Pattern::new("UJ\\|UL", false, false).is_match("UJ 10.0.0.2"));
        assert!(!Pattern::new("UJ|UL", true, false).is_match("UN 10.0.0.2"));
    }
}
