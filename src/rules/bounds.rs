//! Limits on the size of a rule's SQL, checked when the pack loads.
//!
//! Why: polars turns SQL into a tree of expressions and walks it
//! recursively, on worker threads with small stacks. A condition that ORs
//! 2,000 terms overflows such a stack and aborts the process (no error, no
//! outputs); 200,000 terms overflow the main thread. These limits are far
//! above what a readable rule needs (the shipped pack's largest condition
//! has a few dozen operators) and far below what overflows; a test runs a
//! rule at the limits through the real engine.

use super::model::Rule;

/// Characters in one SQL text after `${param}` substitution.
pub(crate) const MAX_SQL_CHARS: usize = 16 * 1024;
/// Operators (AND, OR, NOT, WHEN, comparisons, arithmetic) in one SQL text.
pub const MAX_SQL_OPERATORS: usize = 256;
/// Nesting of parentheses in one SQL text.
pub(crate) const MAX_SQL_DEPTH: usize = 32;
/// Characters in a message template.
pub(crate) const MAX_MESSAGE_CHARS: usize = 4096;

/// The size of one SQL text: operators and deepest parenthesis nesting,
/// outside quoted strings.
pub fn measure(sql: &str) -> (usize, usize) {
    let b = sql.as_bytes();
    let (mut ops, mut depth, mut max_depth) = (0usize, 0usize, 0usize);
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\'' | b'"' => {
                // Skip the quoted text ('' inside is an escaped quote).
                i += 1;
                while i < b.len() {
                    if b[i] == c {
                        if i + 1 < b.len() && b[i + 1] == c {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
            }
            b'(' => {
                depth += 1;
                max_depth = max_depth.max(depth);
            }
            b')' => depth = depth.saturating_sub(1),
            b'+' | b'-' | b'*' | b'/' | b'%' | b'=' | b'<' | b'>' => {
                ops += 1;
                // Two-character operators (<=, >=, <>, !=) count once.
                if i + 1 < b.len() && matches!(b[i + 1], b'=' | b'>') && matches!(c, b'<' | b'>') {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i + 1 < b.len() && (b[i + 1].is_ascii_alphanumeric() || b[i + 1] == b'_') {
                    i += 1;
                }
                let word = &sql[start..=i];
                if ["and", "or", "not", "when"].iter().any(|w| word.eq_ignore_ascii_case(w)) {
                    ops += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    (ops, max_depth)
}

/// A limit a rule exceeds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BoundError {
    #[error("the SQL is longer than {MAX_SQL_CHARS} characters (parameters included); split the rule or use a reference table")]
    SqlTooLong,
    #[error("the SQL has {0} operators, more than the {MAX_SQL_OPERATORS} allowed; use `IN (...)` for lists of values, or split the rule")]
    TooManyOperators(usize),
    #[error("parentheses nest {0} deep, more than the {MAX_SQL_DEPTH} allowed")]
    TooDeep(usize),
    #[error("the message is longer than {MAX_MESSAGE_CHARS} characters")]
    MessageTooLong,
}

/// Every limit the rule exceeds, and the field it sits in.
pub fn check(rule: &Rule) -> Vec<(String, BoundError)> {
    let mut issues = Vec::new();
    let mut texts: Vec<(String, &str)> = Vec::new();
    if let Some(w) = &rule.where_ {
        texts.push(("where".into(), w));
    }
    if let Some(h) = &rule.having {
        texts.push(("having".into(), h));
    }
    for (name, m) in &rule.measures {
        texts.push((format!("measures.{name}"), m));
    }
    if let Some(p) = &rule.peers {
        texts.push(("peers.when".into(), &p.when));
    }
    for (field, text) in texts {
        // Parameters are substituted first: a list parameter counts at its size.
        let date = chrono::NaiveDate::from_ymd_opt(2000, 1, 1).expect("a date");
        let expanded = rule.expand(text, date).unwrap_or_else(|_| text.to_string());
        if expanded.chars().count() > MAX_SQL_CHARS {
            issues.push((field.clone(), BoundError::SqlTooLong));
            continue;
        }
        let (ops, depth) = measure(&expanded);
        if ops > MAX_SQL_OPERATORS {
            issues.push((field.clone(), BoundError::TooManyOperators(ops)));
        }
        if depth > MAX_SQL_DEPTH {
            issues.push((field.clone(), BoundError::TooDeep(depth)));
        }
    }
    if rule.message.chars().count() > MAX_MESSAGE_CHARS {
        issues.push(("message".to_string(), BoundError::MessageTooLong));
    }
    issues
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_and_depth_are_counted_outside_strings() {
        assert_eq!(measure("amount > 500 AND txn_type = 'a or b'"), (3, 0));
        assert_eq!(measure("((a <= 1) OR NOT (b <> 2))"), (4, 2));
        assert_eq!(measure("x IN ('it''s', 'and')"), (0, 1));
        assert_eq!(measure("CASE WHEN a = 1 THEN b * 2 END"), (3, 0));
    }
}
