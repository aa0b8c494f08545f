//! The compiled rule: what a rule means, typed, built once when the pack
//! loads. The YAML model (`model::Rule`) is what the author wrote; this is
//! what every consumer reads: the planner, the findings builder, the
//! partitioner, the schema check and any future backend (a Spark or SQL
//! translation reads the same form). See docs/architecture.md.
//!
//! Parse, don't validate: a window that does not parse, an unknown
//! parameter or a rolling window with peers is an error here, once, with
//! the field it sits in, and cannot reach the engine.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use indexmap::IndexMap;

use super::model::{parse_calendar, parse_rolling, placeholders, yaml_scalar_text, Basis, Calendar, Family, FormatError, Rule, Severity};
use crate::contract::InputKind;

/// A SQL expression with the rule's parameters substituted. `${as_of}`
/// stays until the run binds its date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sql {
    /// Where it sits in the rule (`where`, `measures.volume`), for errors.
    pub field: String,
    pub text: String,
}

impl Sql {
    /// The text to run, with the scan's as-of date in it.
    pub(crate) fn bind(&self, as_of: NaiveDate) -> String {
        self.text.replace(AS_OF, &format!("'{as_of}'"))
    }
}

const AS_OF: &str = "${as_of}";

/// How a grouped rule's groups are cut in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// Calendar windows: a day or a month.
    Calendar(Calendar),
    /// A sliding window ending at each row, in milliseconds.
    Rolling { millis: i64 },
}

impl Window {
    /// The name of the window a finding reports (`day`, `month`).
    pub fn label(self) -> Option<&'static str> {
        match self {
            Window::Calendar(Calendar::Day) => Some("day"),
            Window::Calendar(Calendar::Month) => Some("month"),
            Window::Rolling { .. } => None,
        }
    }
}

/// Each group's measure against its peers' (see `model::Peers`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerBaseline {
    pub by: Vec<String>,
    pub of: String,
    pub when: Sql,
}

/// A grouped rule: keys, window, aggregates and the group condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Grouping {
    pub keys: Vec<String>,
    pub window: Option<Window>,
    /// The column windows are cut on.
    pub time_column: String,
    pub measures: IndexMap<String, Sql>,
    pub having: Option<Sql>,
    pub peers: Option<PeerBaseline>,
    /// Fewest rows a group needs to hit, when `having` says so plainly
    /// (`COUNT(*) >= 3` as one of its AND-ed terms): a key with fewer rows
    /// in all cannot hit, so its rows can be left out before windowing.
    pub min_count: Option<u64>,
    /// Likewise `MAX(column) >= v` (or `>`): a key whose largest value in
    /// all is below cannot hit. (column, v, strict)
    pub max_floors: Vec<(String, f64, bool)>,
    /// Likewise `SUM(CASE WHEN c THEN n ELSE 0 END) >= v` with n >= 0.
    /// (the SUM as SQL, v, strict)
    pub sum_floors: Vec<(String, f64, bool)>,
}

/// A rule, compiled.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledRule {
    pub id: String,
    pub title: String,
    pub family: Family,
    pub severity: Severity,
    pub basis: Option<Basis>,
    pub source: InputKind,
    /// Row condition.
    pub filter: Option<Sql>,
    /// None: a row rule (one finding per matching row).
    pub grouping: Option<Grouping>,
    pub evidence: Vec<String>,
    pub message: String,
    /// The Chinese template, when the rule has one.
    pub message_zh: Option<String>,
    /// Parameters as text, for messages.
    pub params: IndexMap<String, String>,
    /// What a group finding is about (`card`, `merchant`).
    pub entity: Option<String>,
    /// Every name the rule uses as a column: in its SQL, keys, evidence,
    /// message and time column. A superset (SQL function names and
    /// aliases are not told apart from columns): for pruning and
    /// partitioning, where reading a column too many is harmless.
    pub names: BTreeSet<String>,
}

impl CompiledRule {
    pub(crate) fn is_grouped(&self) -> bool {
        self.grouping.is_some()
    }

    /// The group keys (empty for a row rule or a whole-input aggregate).
    pub fn keys(&self) -> &[String] {
        self.grouping.as_ref().map_or(&[], |g| &g.keys)
    }

    pub fn window(&self) -> Option<Window> {
        self.grouping.as_ref().and_then(|g| g.window)
    }

    pub fn peers(&self) -> Option<&PeerBaseline> {
        self.grouping.as_ref().and_then(|g| g.peers.as_ref())
    }

    /// The time column: the rule's, else the input's own.
    pub(crate) fn time_column(&self) -> &str {
        self.grouping.as_ref().map_or(self.source.time_column(), |g| g.time_column.as_str())
    }

    /// `names` less those only the condition (`where`) reads: once the
    /// engine has applied the condition, or part of it, the columns only
    /// that part reads are not needed by the rest of the rule.
    pub(crate) fn names_besides_condition(&self) -> BTreeSet<String> {
        names_besides_condition(self)
    }

    /// The names the rule reads outside its measures and `having`: its
    /// condition, keys, evidence, messages, time column and peers. A
    /// column none of these name is read only through aggregates
    /// (`engine::plan::held_for_sums`).
    pub(crate) fn names_outside_aggregates(&self) -> BTreeSet<String> {
        let mut names = names_outside_sql(self);
        names.extend(self.filter.iter().flat_map(|s| identifiers(&s.text)));
        if let Some(p) = self.peers() {
            names.insert(p.of.clone());
            names.extend(identifiers(&p.when.text));
        }
        names
    }

    /// Every SQL text of the rule.
    pub(crate) fn sql(&self) -> impl Iterator<Item = &Sql> {
        let g = self.grouping.as_ref();
        self.filter
            .iter()
            .chain(g.into_iter().flat_map(|g| g.measures.values()))
            .chain(g.and_then(|g| g.having.as_ref()))
            .chain(g.and_then(|g| g.peers.as_ref()).map(|p| &p.when))
    }
}

/// Why a rule does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    #[error(transparent)]
    Format(#[from] FormatError),
    #[error("a rule has either a calendar `window` or a `rolling` one, not both")]
    TwoWindows,
    #[error("peer baselines work with calendar windows or whole-period groups, not rolling windows")]
    PeersWithRolling,
}

/// A compile error and the field it sits in (`where`, `measures.volume`).
pub(crate) type Located = (String, CompileError);

/// Compile a rule as written. Every error is reported, not only the first.
pub(crate) fn compile(rule: &Rule) -> Result<CompiledRule, Vec<Located>> {
    let mut errors: Vec<Located> = Vec::new();
    let sql = |field: &str, text: &str, errors: &mut Vec<Located>| -> Sql {
        // Checked with a stand-in date; `${as_of}` itself is bound per run.
        if let Err(e) = rule.expand(text, NaiveDate::MIN) {
            errors.push((field.to_string(), e.into()));
        }
        Sql {
            field: field.to_string(),
            text: expand_params(rule, text),
        }
    };
    let filter = rule.where_.as_deref().map(|w| sql("where", w, &mut errors));
    let grouping = if rule.is_grouped() {
        let window = match (&rule.window, &rule.rolling) {
            (Some(_), Some(_)) => {
                errors.push(("rolling".into(), CompileError::TwoWindows));
                None
            }
            (Some(w), None) => match parse_calendar(w) {
                Ok(c) => Some(Window::Calendar(c)),
                Err(e) => {
                    errors.push(("window".into(), e.into()));
                    None
                }
            },
            (None, Some(r)) => match parse_rolling(r) {
                Ok(p) => Some(Window::Rolling {
                    millis: rolling_millis(&p),
                }),
                Err(e) => {
                    errors.push(("rolling".into(), e.into()));
                    None
                }
            },
            (None, None) => None,
        };
        let measures = rule
            .measures
            .iter()
            .map(|(name, text)| (name.clone(), sql(&format!("measures.{name}"), text, &mut errors)))
            .collect();
        let having = rule.having.as_deref().map(|h| sql("having", h, &mut errors));
        let peers = rule.peers.as_ref().map(|p| PeerBaseline {
            by: p.by.clone(),
            of: p.of.clone(),
            when: sql("peers.when", &p.when, &mut errors),
        });
        if peers.is_some() && matches!(window, Some(Window::Rolling { .. })) {
            errors.push(("peers".into(), CompileError::PeersWithRolling));
        }
        let min_count = having.as_ref().and_then(|h| count_floor(&h.text));
        let max_floors = having.as_ref().map(|h| max_floors(&h.text)).unwrap_or_default();
        let sum_floors = having.as_ref().map(|h| sum_floors(&h.text)).unwrap_or_default();
        Some(Grouping {
            keys: rule.group_by.clone(),
            window,
            time_column: rule.time_column().to_string(),
            measures,
            having,
            peers,
            min_count,
            max_floors,
            sum_floors,
        })
    } else {
        None
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut compiled = CompiledRule {
        id: rule.id.clone(),
        title: rule.title.clone(),
        family: rule.family,
        severity: rule.severity,
        basis: rule.basis.clone(),
        source: rule.source,
        filter,
        grouping,
        evidence: rule.evidence.clone(),
        message: rule.message.clone(),
        message_zh: rule.message_zh.clone(),
        params: rule.params.iter().map(|(k, v)| (k.clone(), yaml_scalar_text(v))).collect(),
        entity: rule.entity.clone(),
        names: BTreeSet::new(),
    };
    compiled.names = names_of(&compiled);
    Ok(compiled)
}

/// The floor a condition puts on `COUNT(*)`, if one of its top-level
/// AND-ed terms is `COUNT(*) >= n` or `COUNT(*) > n` (or the same of
/// `COUNT(DISTINCT column)`). Terms are split at
/// ANDs outside parentheses and quotes; a condition with a top-level OR
/// has no floor.
pub(crate) fn count_floor(having: &str) -> Option<u64> {
    conjuncts(having)?
        .iter()
        .map(|t| normal(t))
        .filter_map(|t| {
            // A count of distinct values is at most the count of rows, so
            // `COUNT(DISTINCT c) > 3` needs four rows as `COUNT(*) > 3` does.
            let t = match t.strip_prefix("COUNT(DISTINCT") {
                Some(rest) => {
                    let (column, cmp) = rest.split_once(')')?;
                    let valid = !column.is_empty() && column.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                    valid.then(|| format!("COUNT(*){cmp}"))?
                }
                None => t,
            };
            if let Some(n) = t.strip_prefix("COUNT(*)>=") {
                n.parse::<u64>().ok()
            } else if let Some(n) = t.strip_prefix("COUNT(*)>") {
                n.parse::<u64>().ok().map(|n| n + 1)
            } else {
                None
            }
        })
        .max()
}

/// The `MAX(column) >= v` and `MAX(column) > v` terms of a condition's
/// top-level AND, with v a number: (column, v, strict).
pub(crate) fn max_floors(having: &str) -> Vec<(String, f64, bool)> {
    let Some(terms) = conjuncts(having) else { return vec![] };
    terms
        .iter()
        .map(|t| normal(t))
        .filter_map(|t| {
            let inner = t.strip_prefix("MAX(")?;
            let (column, rest) = inner.split_once(')')?;
            let valid = !column.is_empty() && column.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            let (strict, v) = match rest.strip_prefix(">=") {
                Some(v) => (false, v),
                None => (true, rest.strip_prefix('>')?),
            };
            let v = floor_value(v)?;
            valid.then(|| (column.to_ascii_lowercase(), v, strict))
        })
        .collect()
}

/// The `SUM(CASE WHEN c THEN n ELSE 0 END) >= v` (or `>`) terms of a
/// condition's top-level AND, where every THEN and ELSE is a non-negative
/// number: a window's sum is at most its key's total, so a key whose total
/// is below v cannot hit. (the SUM as written, v, strict)
pub(crate) fn sum_floors(having: &str) -> Vec<(String, f64, bool)> {
    let Some(terms) = conjuncts(having) else { return vec![] };
    let branch = regex::Regex::new(r"(?i)\b(THEN|ELSE)\s+([^\s]+)").expect("valid regex");
    terms
        .iter()
        .filter_map(|t| {
            let n = normal(t);
            if !n.starts_with("SUM(CASEWHEN") {
                return None;
            }
            // The SUM(...) as written: up to its closing parenthesis.
            let (mut depth, mut end) = (0i32, None);
            for (i, c) in t.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            end = Some(i + 1);
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let end = end?;
            let (sum, rest) = t.split_at(end);
            let rest: String = rest.chars().filter(|c| !c.is_whitespace()).collect();
            let (strict, v) = match rest.strip_prefix(">=") {
                Some(v) => (false, v.to_string()),
                None => (true, rest.strip_prefix('>')?.to_string()),
            };
            let v = floor_value(&v)?;
            let nonnegative = branch.captures_iter(sum).all(|c| {
                c[2].trim_end_matches(')')
                    .trim_end_matches("END")
                    .parse::<f64>()
                    .is_ok_and(|x| x >= 0.0)
            });
            let has_else = normal(sum).contains("ELSE0END");
            (nonnegative && has_else).then(|| (sum.trim().to_string(), v, strict))
        })
        .collect()
}

/// A floor's number, written plain (`5000`, `4999.5`) or as a fractional
/// parameter is substituted (`CAST('4999.5' AS DECIMAL(5, 1))`, with or
/// without its spaces). Read as the nearest float, as the sums it is
/// compared with are: rounding to the nearest float never reverses an
/// order, and amounts of fen below 2^53 that differ stay apart as floats,
/// so no key that can pass its floor is pruned.
fn floor_value(v: &str) -> Option<f64> {
    let v: String = v.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_uppercase();
    let number = match v.strip_prefix("CAST('") {
        Some(rest) => {
            let (number, cast) = rest.split_once('\'')?;
            let to_decimal = cast.starts_with("ASDECIMAL(") && cast.ends_with("))");
            to_decimal.then(|| number.to_string())?
        }
        None => v,
    };
    number.parse().ok().filter(|v: &f64| v.is_finite())
}

/// Upper case without whitespace, for matching a term's shape.
fn normal(t: &str) -> String {
    t.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_uppercase()
}

/// A condition's top-level AND-ed terms, as written (None when a
/// top-level OR makes no term necessary). Terms are split at ANDs outside
/// parentheses and quotes.
fn conjuncts(having: &str) -> Option<Vec<String>> {
    let mut terms: Vec<String> = vec![String::new()];
    let (mut depth, mut quoted) = (0i32, false);
    let words: Vec<&str> = having.split_inclusive(|c: char| c.is_whitespace()).collect();
    for w in words {
        for c in w.chars() {
            match c {
                '\'' => quoted = !quoted,
                '(' if !quoted => depth += 1,
                ')' if !quoted => depth -= 1,
                _ => {}
            }
        }
        let bare = w.trim();
        if depth == 0 && !quoted && bare.eq_ignore_ascii_case("OR") {
            return None;
        }
        if depth == 0 && !quoted && bare.eq_ignore_ascii_case("AND") {
            terms.push(String::new());
        } else if let Some(t) = terms.last_mut() {
            t.push_str(w);
        }
    }
    Some(terms.into_iter().map(|t| t.trim().to_string()).collect())
}

/// Substitute every parameter but `${as_of}`.
fn expand_params(rule: &Rule, text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = after[..end].trim();
        if name == "as_of" {
            out.push_str(AS_OF);
        } else {
            // `compile` checked the parameter exists.
            let one = format!("${{{name}}}");
            out.push_str(&rule.expand(&one, NaiveDate::MIN).unwrap_or(one));
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Milliseconds of a checked rolling period (`10m`, `3d`).
fn rolling_millis(period: &str) -> i64 {
    let (num, unit) = period.split_at(period.len() - 1);
    let n: i64 = num.parse().unwrap_or(0);
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => 86_400_000,
    };
    n * unit_ms
}

/// SQL keywords and functions: not column names.
const SQL_WORDS: &[&str] = &[
    "AND",
    "OR",
    "NOT",
    "IN",
    "IS",
    "NULL",
    "LIKE",
    "ILIKE",
    "BETWEEN",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "TRUE",
    "FALSE",
    "CAST",
    "AS",
    "DISTINCT",
    "SUM",
    "COUNT",
    "MIN",
    "MAX",
    "AVG",
    "MEDIAN",
    "FIRST",
    "LAST",
    "ABS",
    "ROUND",
    "FLOOR",
    "CEIL",
    "COALESCE",
    "REPLACE",
    "LOWER",
    "UPPER",
    "LENGTH",
    "SUBSTR",
    "SUBSTRING",
    "STDDEV",
    "VARIANCE",
    "ARRAY_AGG",
    "STRING_AGG",
    "DATE",
    "INTERVAL",
    "EXTRACT",
    "FROM",
];

/// Identifiers outside quoted strings, SQL's own words left out: the
/// column names a SQL text may use.
pub fn identifiers(sql: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut chars = sql.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '\'' {
            // Skip the string ('' inside is an escaped quote).
            while let Some((_, d)) = chars.next() {
                if d == '\'' {
                    if chars.peek().is_some_and(|(_, e)| *e == '\'') {
                        chars.next();
                        continue;
                    }
                    break;
                }
            }
        } else if c.is_ascii_alphabetic() || c == '_' {
            let mut end = i + c.len_utf8();
            while let Some((j, d)) = chars.peek().copied() {
                if d.is_ascii_alphanumeric() || d == '_' {
                    end = j + d.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            let word = &sql[i..end];
            if !SQL_WORDS.iter().any(|k| k.eq_ignore_ascii_case(word)) {
                out.insert(word.to_string());
            }
        } else if c.is_ascii_digit() {
            // A number (and any suffix such as `1e5`) is not a name.
            while chars
                .peek()
                .is_some_and(|(_, d)| d.is_ascii_alphanumeric() || *d == '.' || *d == '_')
            {
                chars.next();
            }
        }
    }
    out
}

fn names_of(rule: &CompiledRule) -> BTreeSet<String> {
    let mut names = rule.names_besides_condition();
    names.extend(rule.filter.iter().flat_map(|s| identifiers(&s.text)));
    names
}

/// `names_of` less what only the condition (`where`) reads.
fn names_besides_condition(rule: &CompiledRule) -> BTreeSet<String> {
    let condition = |s: &&Sql| rule.filter.as_ref().is_some_and(|f| std::ptr::eq(*s, f));
    let mut names: BTreeSet<String> = rule.sql().filter(|s| !condition(s)).flat_map(|s| identifiers(&s.text)).collect();
    names.extend(names_outside_sql(rule));
    // Peer statistics of the amounts' sum read `amount` in yuan
    // (`prepare::frame_of_rows` widens it for a rule naming it).
    if let Some(p) = rule.peers().filter(|p| p.of == "sum_amount") {
        names.insert(p.of.clone());
    }
    names
}

/// The names a rule reads outside its SQL texts: keys, evidence,
/// messages, time column and peer groups.
fn names_outside_sql(rule: &CompiledRule) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = rule.keys().iter().cloned().collect();
    names.extend(rule.evidence.iter().cloned());
    names.extend(placeholders(&rule.message));
    names.extend(rule.message_zh.iter().flat_map(|m| placeholders(m)));
    if let Some(g) = &rule.grouping {
        names.insert(g.time_column.clone());
        names.extend(g.peers.iter().flat_map(|p| p.by.iter().cloned()));
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(yaml: &str) -> Rule {
        serde_yaml::from_str(yaml).expect("rule")
    }

    const BASE: &str =
        "id: X-1\ntitle: t\nfamily: suspicious_patterns\nseverity: low\nsource: transactions\nmessage: \"{merchant_id} {n}\"\n";

    #[test]
    fn windows_are_typed_once_and_spaces_do_not_change_their_meaning() {
        let c = compile(&rule(&format!("{BASE}group_by: [merchant_id]\nwindow: \" 1d\"\n"))).unwrap();
        assert_eq!(c.window(), Some(Window::Calendar(Calendar::Day)));
        assert_eq!(c.window().and_then(Window::label), Some("day"));
        let c = compile(&rule(&format!("{BASE}group_by: [card_hash]\nrolling: 10m\n"))).unwrap();
        assert_eq!(c.window(), Some(Window::Rolling { millis: 600_000 }));
        let e = compile(&rule(&format!("{BASE}group_by: [merchant_id]\nwindow: 2w\n"))).unwrap_err();
        assert_eq!(e[0].0, "window");
    }

    #[test]
    fn parameters_are_expanded_once_and_as_of_waits_for_the_run() {
        let c = compile(&rule(&format!(
            "{BASE}params: {{n: 500, kinds: [a, b]}}\nwhere: \"amount > ${{n}} AND kind IN (${{kinds}}) AND txn_time < ${{as_of}}\"\n"
        )))
        .unwrap();
        let f = c.filter.as_ref().unwrap();
        assert_eq!(f.text, "amount > 500 AND kind IN ('a', 'b') AND txn_time < ${as_of}");
        assert_eq!(
            f.bind(NaiveDate::from_ymd_opt(2026, 11, 20).unwrap()),
            "amount > 500 AND kind IN ('a', 'b') AND txn_time < '2026-11-20'"
        );
        assert_eq!(c.params["n"], "500");
        let e = compile(&rule(&format!("{BASE}where: \"amount > ${{missing}}\"\n"))).unwrap_err();
        assert_eq!(e[0].0, "where");
        assert_eq!(e[0].1, CompileError::Format(FormatError::UnknownParameter("missing".into())));
    }

    #[test]
    fn the_names_a_rule_reads_come_from_all_its_parts() {
        let c = compile(&rule(&format!(
            "{BASE}where: \"status = 'approved' AND amount >= 10\"\ngroup_by: [merchant_id]\nwindow: 1M\nmeasures: {{cards: \"COUNT(DISTINCT card_hash)\"}}\nevidence: [cards, app_mcc]\n"
        )))
        .unwrap();
        for n in ["status", "amount", "merchant_id", "card_hash", "app_mcc", "txn_time"] {
            assert!(c.names.contains(n), "{n}: {:?}", c.names);
        }
        assert!(!c.names.contains("approved"), "a string is not a name");
        // Besides the condition: `status` is read by the condition only;
        // `amount` by the condition only too, and the rest by other parts.
        let besides = c.names_besides_condition();
        assert!(!besides.contains("status") && !besides.contains("amount"), "{besides:?}");
        for n in ["merchant_id", "card_hash", "app_mcc", "txn_time"] {
            assert!(besides.contains(n), "{n}: {besides:?}");
        }
        let message = compile(&rule(&format!(
            "{BASE}where: \"status = 'approved' AND amount >= 10\"\nevidence: [amount]\n"
        )))
        .unwrap();
        assert!(message.names_besides_condition().contains("amount"));
        assert!(!message.names_besides_condition().contains("status"));
        assert_eq!(
            identifiers("x1 >= 1e5 AND 'it''s y' <> z"),
            ["x1", "z"].iter().map(|s| s.to_string()).collect()
        );
        assert_eq!(
            identifiers("SUM(CASE WHEN amount > 0 THEN amount ELSE 0 END)"),
            ["amount".to_string()].into()
        );
    }

    #[test]
    fn a_count_floor_is_read_from_plain_conditions_only() {
        assert_eq!(count_floor("COUNT(*) >= 3"), Some(3));
        assert_eq!(
            count_floor("COUNT(*) >= 10 AND SUM(CASE WHEN a > 1 THEN 1 ELSE 0 END) > 0.5 * COUNT(*)"),
            Some(10)
        );
        assert_eq!(count_floor("SUM(amount) > 5 AND count(*) > 4"), Some(5));
        assert_eq!(count_floor("COUNT(*) >= 3 OR SUM(amount) > 5"), None);
        assert_eq!(count_floor("(COUNT(*) >= 3 OR x) AND y"), None);
        // Distinct values are at most the rows.
        assert_eq!(count_floor("COUNT(DISTINCT card_hash) >= 3"), Some(3));
        assert_eq!(count_floor("COUNT(DISTINCT merchant_id) > 3 AND SUM(amount) > 0"), Some(4));
        assert_eq!(count_floor("COUNT(DISTINCT lower(card_hash)) > 3"), None);
        assert_eq!(count_floor("SUM(amount) > 500"), None);
        assert_eq!(count_floor("note = 'a AND COUNT(*) >= 3'"), None);
        assert_eq!(
            max_floors("MAX(days_since_prev_txn) >= 30 AND SUM(amount) >= 10000"),
            [("days_since_prev_txn".to_string(), 30.0, false)]
        );
        assert_eq!(max_floors("MAX(amount) > 4999.5"), [("amount".to_string(), 4999.5, true)]);
        // A fractional parameter, substituted as an exact decimal.
        assert_eq!(
            max_floors("MAX(amount) >= CAST('4999.5' AS DECIMAL(5, 1))"),
            [("amount".to_string(), 4999.5, false)]
        );
        assert!(max_floors("MAX(amount) >= CAST('x' AS DECIMAL(5, 1))").is_empty());
        assert!(max_floors("MAX(amount) >= CAST('4999.5' AS DOUBLE)").is_empty());
        assert!(max_floors("MAX(a) >= 3 OR b").is_empty());
        assert!(max_floors("MAX(a + b) >= 3").is_empty());
        let refunds = "SUM(CASE WHEN txn_type = 'purchase' THEN amount ELSE 0 END) >= 5000 AND SUM(CASE WHEN txn_type = 'refund' THEN 1 ELSE 0 END) >= 2";
        assert_eq!(
            sum_floors(refunds),
            [("SUM(CASE WHEN txn_type = 'refund' THEN 1 ELSE 0 END)".to_string(), 2.0, false)],
            "a column's sum may be negative: no floor from it"
        );
        assert!(sum_floors("SUM(CASE WHEN a THEN -1 ELSE 0 END) >= 2").is_empty());
        assert_eq!(
            sum_floors("SUM(CASE WHEN a THEN 1 ELSE 0 END) > CAST('0.5' AS DECIMAL(1, 1))"),
            [("SUM(CASE WHEN a THEN 1 ELSE 0 END)".to_string(), 0.5, true)]
        );
        assert!(sum_floors("SUM(CASE WHEN a THEN 1 ELSE 0 END) >= 2 OR b").is_empty());
    }

    #[test]
    fn peers_with_a_rolling_window_do_not_compile() {
        let e = compile(&rule(&format!(
            "{BASE}group_by: [merchant_id]\nrolling: 1h\npeers: {{by: [app_mcc], of: count, when: \"count > peer_median\"}}\n"
        )))
        .unwrap_err();
        assert_eq!(e[0].0, "peers");
    }
}
