//! A compiled rule as one Spark SQL query over the prepared inputs (the
//! frames `posaudit prepare` writes, registered as views named after their
//! input: `transactions`, `applications`, ...).
//!
//! Each query returns the rule's hits in the shape the embedded engine's
//! plan gives them (`engine::plan`): a row rule's hit rows with `__row_id`,
//! `_src`, `_line` and the columns its evidence and message name; a
//! grouped rule's groups with their keys, `__window`, the built-in
//! measures, the rule's measures, peer statistics, the members' ids in
//! time order (`__ids`), merchants (`__merchants`), evidence lists and the
//! first member's origin. `posaudit import spark` turns those into
//! findings with the same code the engine uses, so both give the same
//! fingerprints, messages and masking.
//!
//! What the query means follows the engine exactly:
//! - calendar windows are the day (`CAST(t AS DATE)`) or the month
//!   (`trunc(.., 'MM')`) and are named `yyyy-MM-dd` / `yyyy-MM`;
//! - a rolling window ends at each row and holds the same key's rows in
//!   (t - period, t]: an integer range over milliseconds, `period - 1`
//!   preceding, so the left end is open as in polars (`ClosedWindow::Right`);
//! - hit windows of one key that share rows are one episode (each starts
//!   at or before the previous one ends), named by its first transaction,
//!   with the measures of its densest window (most rows, the earliest of
//!   equals) and the rows of the whole episode as members;
//! - peer statistics are medians and linear percentiles over the groups
//!   that share the peer columns and the window, rounded half to even to
//!   two decimals; a group's own history is the median over its keys'
//!   windows;
//! - members are ordered by time, then by input order (`_src`, `_line`).
//!
//! A rule whose form the translation does not cover fails with the reason;
//! nothing is dropped silently.

use std::collections::{BTreeMap, BTreeSet};

use crate::contract::InputKind;
use crate::rules::compiled::{CompiledRule, Grouping, Window};
use crate::rules::model::Calendar;

/// Where the driver puts the columns a rule names that this run's data
/// may not have (evidence, message placeholders): at each mark, for each
/// such column the view has, `, ` and the mark's template with `{c}`
/// replaced by the column (`SparkRule::fills`).
const ROW_MARK: &str = "/*posaudit:row*/";
const MEMBERS_MARK: &str = "/*posaudit:members*/";
const SELECT_MARK: &str = "/*posaudit:select*/";

/// Measures every group carries (as `engine::plan::BUILTIN_MEASURES`).
const BUILTIN: [&str; 4] = ["count", "window_start", "window_end", "sum_amount"];
const PEER_COLUMNS: [&str; 6] = ["peer_median", "peer_p95", "peer_p99", "peer_count", "own_median", "own_windows"];

/// One rule for the Spark job.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SparkRule {
    pub id: String,
    /// The view it reads.
    pub source: &'static str,
    /// The query, `${as_of}` left for the run to bind.
    pub sql: String,
    /// Columns the query lists at its marks when the view has them.
    pub optional: Vec<String>,
    /// Mark -> the template written there for each optional column.
    pub fills: BTreeMap<&'static str, String>,
    /// The rule's kind of plan, for the job's log.
    pub shape: &'static str,
}

/// Translate a compiled rule, given the columns its input can have (the
/// full prepared schema: every contract and derived column).
pub fn translate(rule: &CompiledRule, columns: &BTreeSet<String>) -> Result<SparkRule, String> {
    let source = rule.source.name();
    match &rule.grouping {
        None => row_rule(rule, columns),
        Some(g) => match g.window {
            Some(Window::Rolling { millis }) => rolling_rule(rule, g, millis, columns),
            _ => group_rule(rule, g, columns),
        },
    }
    .map(|(sql, optional, fills, shape)| SparkRule {
        id: rule.id.clone(),
        source,
        sql,
        optional,
        fills,
        shape,
    })
}

type Translated = (String, Vec<String>, BTreeMap<&'static str, String>, &'static str);

/// A column's values over a group's rows, in time and input order.
fn member_list(order: &str, value: &str) -> String {
    format!("transform(array_sort(collect_list(struct({order}, {value} AS __v))), x -> x.__v)")
}

/// The fills of a grouped rule: evidence lists in the members, then selected.
fn list_fills(order: &str) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        (MEMBERS_MARK, format!("{} AS {{c}}", member_list(order, "r.{c}"))),
        (SELECT_MARK, "m.{c}".to_string()),
    ])
}

/// The id of one row of an input, as text (`engine::plan::row_entity`).
fn row_id(kind: InputKind) -> String {
    match kind.entity().1 {
        Some(c) => format!("CAST({c} AS STRING)"),
        None => "concat_ws('|', merchant_id, item, date_format(effective_at, 'yyyy-MM-dd HH:mm:ss'))".to_string(),
    }
}

/// The row condition. The source is always given an alias (`FROM t AS
/// __source`): without one, Spark reads `FROM t WHERE (c)` as the table
/// `t` aliased `WHERE` with a column list.
fn condition(rule: &CompiledRule) -> String {
    match &rule.filter {
        Some(f) => format!("({})", f.text),
        None => "TRUE".to_string(),
    }
}

/// Columns a row rule's hits carry (`engine::plan::row_columns`).
fn row_rule(rule: &CompiledRule, columns: &BTreeSet<String>) -> Result<Translated, String> {
    let mut wanted: Vec<String> = vec!["merchant_id".to_string()];
    for c in rule
        .evidence
        .iter()
        .cloned()
        .chain(crate::rules::model::placeholders(&rule.message))
    {
        if !wanted.contains(&c) {
            wanted.push(c);
        }
    }
    wanted.retain(|c| columns.contains(c));
    let sql = format!(
        "SELECT {id} AS __row_id, _src, _line {ROW_MARK}\nFROM {src} AS __source\nWHERE {cond}",
        id = row_id(rule.source),
        src = rule.source.name(),
        cond = condition(rule)
    );
    Ok((sql, wanted, BTreeMap::from([(ROW_MARK, "{c}".to_string())]), "rows"))
}

/// `a <=> b AND ...` over the keys (null-safe, as the engine joins).
fn keys_equal(keys: &[String], left: &str, right: &str) -> String {
    if keys.is_empty() {
        return "TRUE".to_string();
    }
    keys.iter()
        .map(|k| format!("{left}.{k} <=> {right}.{k}"))
        .collect::<Vec<_>>()
        .join(" AND ")
}

fn list(items: &[String]) -> String {
    items.join(", ")
}

/// Evidence columns gathered per group: those not already a key or a
/// measure (`engine::plan::build`'s member list).
fn evidence_lists(rule: &CompiledRule, g: &Grouping, columns: &BTreeSet<String>) -> Vec<String> {
    // A peer column is the group's own value already (the engine's member
    // list of it is dropped as a duplicate name).
    let peer_by: &[String] = g.peers.as_ref().map_or(&[], |p| &p.by);
    rule.evidence
        .iter()
        .filter(|e| !g.keys.contains(e) && !g.measures.contains_key(*e) && !BUILTIN.contains(&e.as_str()))
        .filter(|e| !peer_by.contains(e))
        .filter(|e| columns.contains(*e))
        .cloned()
        .collect()
}

fn window_key(cal: Calendar, t: &str) -> (String, &'static str) {
    match cal {
        Calendar::Day => (format!("CAST({t} AS DATE)"), "yyyy-MM-dd"),
        Calendar::Month => (format!("trunc(CAST({t} AS DATE), 'MM')"), "yyyy-MM"),
    }
}

fn group_rule(rule: &CompiledRule, g: &Grouping, columns: &BTreeSet<String>) -> Result<Translated, String> {
    let src = rule.source.name();
    let t = g.time_column.as_str();
    let timed = columns.contains(t);
    let calendar = match g.window {
        Some(Window::Calendar(c)) => {
            if !timed {
                return Err(format!("its time column `{t}` is not a column of the {src} input"));
            }
            Some(window_key(c, t))
        }
        _ => None,
    };
    let mut group_by: Vec<String> = g.keys.clone();
    if calendar.is_some() {
        group_by.push("__window".into());
    }
    let mut aggs: Vec<String> = vec!["COUNT(*) AS count".into()];
    if timed {
        aggs.push(format!("MIN({t}) AS window_start"));
        aggs.push(format!("MAX({t}) AS window_end"));
    }
    if columns.contains("amount") {
        aggs.push("SUM(amount) AS sum_amount".into());
    }
    for (name, m) in &g.measures {
        aggs.push(format!("{} AS {name}", m.text));
    }
    let having = g.having.as_ref().map(|h| h.text.clone()).unwrap_or_else(|| "TRUE".into());
    aggs.push(format!("({having}) AS __hit"));
    let mut peer_by_extra: Vec<String> = Vec::new();
    if let Some(p) = &g.peers {
        for b in p.by.iter().filter(|b| !g.keys.contains(b)) {
            aggs.push(format!("MIN({b}) AS {b}"));
            peer_by_extra.push(b.clone());
        }
    }
    let window_col = calendar.as_ref().map(|(e, _)| format!(", {e} AS __window")).unwrap_or_default();
    let mut sql = format!(
        "WITH __rows AS (\n  SELECT *, {id} AS __id{window_col} FROM {src} AS __source WHERE {cond}\n),\n__groups AS (\n  SELECT {keys}{comma}{aggs}\n  FROM __rows{group}\n)",
        id = row_id(rule.source),
        cond = condition(rule),
        keys = list(&group_by),
        comma = if group_by.is_empty() { "" } else { ", " },
        aggs = aggs.join(", "),
        group = if group_by.is_empty() {
            String::new()
        } else {
            format!(" GROUP BY {}", list(&group_by))
        },
    );
    let mut hits_from = "__groups";
    let mut hit = "__hit = true".to_string();
    if let Some(p) = &g.peers {
        let of = format!("CAST(g.{} AS DOUBLE)", p.of);
        let mut part: Vec<String> = p.by.clone();
        if calendar.is_some() {
            part.push("__window".into());
        }
        // Statistics per peer set (and per key for the own history) from
        // one sorted array each, joined back: as polars computes them.
        sql += &format!(
            ",\n__peer_sets AS (\n  SELECT {cols}array_sort(collect_list({of})) AS __pv, COUNT(*) AS peer_count\n  FROM __groups g{group}\n)",
            cols = part.iter().map(|c| format!("g.{c} AS {c}, ")).collect::<String>(),
            group = if part.is_empty() {
                String::new()
            } else {
                format!(" GROUP BY {}", part.iter().map(|c| format!("g.{c}")).collect::<Vec<_>>().join(", "))
            },
        );
        let own_history = !(g.keys.is_empty() || g.window.is_none());
        if own_history {
            sql += &format!(
                ",\n__own_sets AS (\n  SELECT {cols}, array_sort(collect_list({of})) AS __ov, COUNT(*) AS own_windows\n  FROM __groups g GROUP BY {keys}\n)",
                cols = g.keys.iter().map(|c| format!("g.{c} AS {c}")).collect::<Vec<_>>().join(", "),
                keys = g.keys.iter().map(|c| format!("g.{c}")).collect::<Vec<_>>().join(", "),
            );
        }
        let (own_median, own_windows, own_join) = if own_history {
            (
                round2(&quantile("o.__ov", 0.5)),
                "o.own_windows".to_string(),
                format!(" LEFT JOIN __own_sets o ON {}", keys_equal(&g.keys, "g", "o")),
            )
        } else {
            (round2(&of), "1".to_string(), String::new())
        };
        sql += &format!(
            ",\n__peered AS (\n  SELECT g.*, {median} AS peer_median, {p95} AS peer_p95, {p99} AS peer_p99, \
             s.peer_count AS peer_count, {own_median} AS own_median, {own_windows} AS own_windows\n  \
             FROM __groups g LEFT JOIN __peer_sets s ON {on}{own_join}\n)",
            median = round2(&quantile("s.__pv", 0.5)),
            p95 = round2(&quantile("s.__pv", 0.95)),
            p99 = round2(&quantile("s.__pv", 0.99)),
            on = keys_equal(&part, "g", "s"),
        );
        hits_from = "__peered";
        hit = format!("{hit} AND ({})", p.when.text);
    }
    sql += &format!(",\n__hits AS (SELECT * FROM {hits_from} WHERE {hit})");
    // Members of the groups that hit, in time order, then input order.
    let order = if timed {
        format!("r.{t} AS __a, r._src AS __b, r._line AS __c")
    } else {
        "r._src AS __b, r._line AS __c".to_string()
    };
    let sorted = |field: &str| member_list(&order, &format!("r.{field}"));
    // The first member's origin: the least (time, file, line), found once.
    let mut members: Vec<String> = vec![format!("{} AS __ids", sorted("__id")), format!("MIN(struct({order})) AS __first")];
    let merchants = !g.keys.iter().any(|k| k == "merchant_id") && columns.contains("merchant_id");
    if merchants {
        members.push(format!("{} AS __merchants", sorted("merchant_id")));
    }
    sql +=
        &format!(
        ",\n__members AS (\n  SELECT {keys}{comma}{members} {MEMBERS_MARK}\n  FROM __rows r LEFT SEMI JOIN __hits h ON {on}\n  {group}\n)",
        keys = group_by.iter().map(|k| format!("r.{k} AS {k}")).collect::<Vec<_>>().join(", "),
        comma = if group_by.is_empty() { "" } else { ", " },
        members = members.join(", "),
        on = keys_equal(&group_by, "r", "h"),
        group = if group_by.is_empty() {
            String::new()
        } else {
            format!("GROUP BY {}", group_by.iter().map(|k| format!("r.{k}")).collect::<Vec<_>>().join(", "))
        },
    );
    let mut out: Vec<String> = g.keys.iter().map(|k| format!("h.{k}")).collect();
    if let Some((_, fmt)) = &calendar {
        out.push(format!("date_format(h.__window, '{fmt}') AS __window"));
    }
    out.push("h.count".into());
    if timed {
        out.push("h.window_start".into());
        out.push("h.window_end".into());
    }
    if columns.contains("amount") {
        out.push("h.sum_amount".into());
    }
    out.extend(g.measures.keys().map(|m| format!("h.{m}")));
    out.extend(peer_by_extra.iter().map(|b| format!("h.{b}")));
    if g.peers.is_some() {
        out.extend(PEER_COLUMNS.iter().map(|c| format!("h.{c}")));
    }
    out.extend([
        "m.__ids".to_string(),
        "m.__first.__b AS _src".into(),
        "m.__first.__c AS _line".into(),
    ]);
    if merchants {
        out.push("m.__merchants".into());
    }
    sql += &format!(
        "\nSELECT {out} {SELECT_MARK}\nFROM __hits h LEFT JOIN __members m ON {on}",
        out = out.join(", "),
        on = keys_equal(&group_by, "h", "m"),
    );
    Ok((sql, evidence_lists(rule, g, columns), list_fills(&order), "groups"))
}

const AGGREGATES: [&str; 6] = ["SUM", "COUNT", "MIN", "MAX", "AVG", "MEDIAN"];

/// Replace every aggregate call of a SQL expression (`SUM(..)`, `COUNT(..)`,
/// ...) by what `f` makes of its name (upper case) and argument text.
fn rewrite_aggregates(text: &str, mut f: impl FnMut(&str, &str) -> Result<String, String>) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len() + 32);
    let mut i = 0;
    let mut last = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'\'' {
            // Skip a string literal ('' is a quote inside it).
            i += 1;
            while i < bytes.len() {
                if bytes[i] == b'\'' {
                    if bytes.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            i += 1;
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            let word = text[start..i].to_ascii_uppercase();
            let mut j = i;
            while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                j += 1;
            }
            if AGGREGATES.contains(&word.as_str()) && bytes.get(j) == Some(&b'(') {
                let close = matching(bytes, j).ok_or_else(|| format!("unbalanced parentheses in `{text}`"))?;
                let inner = text[j + 1..close].trim();
                if AGGREGATES.iter().any(|a| contains_call(inner, a)) {
                    return Err(format!("an aggregate inside an aggregate (`{text}`) has no rolling form"));
                }
                out.push_str(&text[last..start]);
                out.push_str(&f(&word, inner)?);
                i = close + 1;
                last = i;
            }
            continue;
        }
        i += 1;
    }
    out.push_str(&text[last..]);
    Ok(out)
}

/// The `q` quantile of a sorted array of doubles as polars computes it
/// (`QuantileMethod::Linear`): at (n - 1) q, between the two values around
/// it, `proportion * (upper - lower) + lower`. NULL for no values.
fn quantile(arr: &str, q: f64) -> String {
    let fi = format!("((size({arr}) - 1) * CAST({q:?} AS DOUBLE))");
    let at = |k: u32| format!("element_at({arr}, CAST(floor({fi}) AS INT) + {k})");
    format!(
        "(CASE WHEN size({arr}) = 0 THEN NULL WHEN ceil({fi}) = floor({fi}) OR {lo} = {hi} THEN {lo} \
         ELSE ({fi} - floor({fi})) * ({hi} - {lo}) + {lo} END)",
        lo = at(1),
        hi = at(2),
    )
}

/// Two decimals, half to even, as polars rounds a double: the double
/// times 100, rounded to the nearest integer (ties to even), over 100.
fn round2(x: &str) -> String {
    format!("(rint(({x}) * 100.0) / 100.0)")
}

/// Append `OVER <window>` to every aggregate call of a SQL expression, so
/// that a group's measure becomes a rolling window's. COUNT(DISTINCT x)
/// becomes the size of the window's set of x; MEDIAN(x) its 0.5 percentile.
pub(crate) fn windowed(text: &str, window: &str) -> Result<String, String> {
    rewrite_aggregates(text, |word, inner| {
        let upper = inner.to_ascii_uppercase();
        Ok(if word == "COUNT" && upper.starts_with("DISTINCT ") {
            format!("size(collect_set({}) OVER {window})", &inner[9..])
        } else if word == "MEDIAN" {
            format!("percentile({inner}, 0.5) OVER {window}")
        } else {
            format!("{word}({inner}) OVER {window}")
        })
    })
}

/// The running sums a rolling expression needs, when it only sums and
/// counts: each aggregate becomes the difference of two prefix sums (to
/// the row, and to the window's open left end), so a window costs O(1)
/// whatever its size. `sums` collects (name, expression summed); None: an
/// aggregate with no prefix form (MIN, MAX, MEDIAN, COUNT(DISTINCT)).
fn prefix_form(text: &str, sums: &mut Vec<(String, String)>) -> Option<String> {
    // The sum over the window: to the row, less to the left end (none
    // there: zero).
    let mut add = |expr: String| -> String {
        let name = match sums.iter().position(|(_, e)| *e == expr) {
            Some(i) => sums[i].0.clone(),
            None => {
                let name = format!("__p{}", sums.len());
                sums.push((name.clone(), expr));
                name
            }
        };
        format!("({name} - COALESCE({name}__left, 0))")
    };
    rewrite_aggregates(text, |word, inner| {
        let upper = inner.to_ascii_uppercase();
        match word {
            "COUNT" if inner == "*" => Ok(add("1".into())),
            "COUNT" if !upper.starts_with("DISTINCT ") => Ok(add(format!("CASE WHEN ({inner}) IS NULL THEN 0 ELSE 1 END"))),
            "SUM" => {
                // NULL when the window has no value, as SUM is.
                let v = add(format!("COALESCE({inner}, 0)"));
                let n = add(format!("CASE WHEN ({inner}) IS NULL THEN 0 ELSE 1 END"));
                Ok(format!("(CASE WHEN {n} = 0 THEN NULL ELSE {v} END)"))
            }
            _ => Err(String::new()),
        }
    })
    .ok()
}

/// The index of the parenthesis closing the one at `open`, quotes skipped.
fn matching(bytes: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = open;
    let mut quoted = false;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' => quoted = !quoted,
            b'(' if !quoted => depth += 1,
            b')' if !quoted => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn contains_call(text: &str, name: &str) -> bool {
    let upper = text.to_ascii_uppercase();
    upper.match_indices(name).any(|(i, _)| {
        let before_ok = i == 0 || !(upper.as_bytes()[i - 1].is_ascii_alphanumeric() || upper.as_bytes()[i - 1] == b'_');
        before_ok && upper[i + name.len()..].trim_start().starts_with('(')
    })
}

fn rolling_rule(rule: &CompiledRule, g: &Grouping, millis: i64, columns: &BTreeSet<String>) -> Result<Translated, String> {
    let src = rule.source.name();
    let t = g.time_column.as_str();
    if !columns.contains(t) {
        return Err(format!("its time column `{t}` is not a column of the {src} input"));
    }
    if millis < 1 {
        return Err("a rolling window shorter than a millisecond".into());
    }
    let keys = &g.keys;
    let part = if keys.is_empty() {
        String::new()
    } else {
        format!("PARTITION BY {} ", list(keys))
    };
    let key_list = |prefix: &str| keys.iter().map(|k| format!("{prefix}{k}")).collect::<Vec<_>>();
    let keys_comma = |prefix: &str| {
        if keys.is_empty() {
            String::new()
        } else {
            format!("{}, ", key_list(prefix).join(", "))
        }
    };
    let windows = match prefix_windows(g, millis, columns, &part, &keys_comma("")) {
        Some(w) => w,
        None => frame_windows(g, millis, columns, &part, &keys_comma(""))?,
    };
    let order = "__ms, __s, __l";
    let ep_part = if keys.is_empty() {
        "PARTITION BY __ep".to_string()
    } else {
        format!("PARTITION BY {}, __ep", list(keys))
    };
    let member_order = "r.__ms AS __a, r._src AS __b, r._line AS __c";
    let order_member = |field: &str| member_list(member_order, field);
    let mut window_members: Vec<String> = vec![format!("MIN(struct({member_order})) AS __first")];
    let merchants = !keys.iter().any(|k| k == "merchant_id") && columns.contains("merchant_id");
    if merchants {
        window_members.push(format!("{} AS __merchants", order_member("r.merchant_id")));
    }
    let group_d = {
        let mut v = key_list("d.");
        v.push("d.__ep".into());
        v.join(", ")
    };
    let sql = format!(
        "WITH __all AS (\n  SELECT *, {id} AS __id, unix_millis(CAST({t} AS TIMESTAMP)) AS __ms FROM {src} AS __source WHERE {cond} AND {t} IS NOT NULL\n),\n\
__rows AS ({rows}),\n\
{windows},\n\
__hits AS (SELECT * FROM __windows WHERE __hit = true),\n\
__marked AS (\n  SELECT *, CASE WHEN LAG(window_end) OVER __o IS NULL OR window_start > LAG(window_end) OVER __o THEN 1 ELSE 0 END AS __new\n  FROM __hits WINDOW __o AS ({part}ORDER BY {order})\n),\n\
__episodes AS (\n  SELECT *, SUM(__new) OVER ({part}ORDER BY {order} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS __ep FROM __marked\n),\n\
__densest AS (\n  SELECT * FROM (\n    SELECT *, MIN(window_start) OVER ({ep_part}) AS __ep_from, MAX(window_end) OVER ({ep_part}) AS __ep_to,\n      ROW_NUMBER() OVER ({ep_part} ORDER BY count DESC, {order}) AS __rank\n    FROM __episodes\n  ) WHERE __rank = 1\n),\n\
__episode_members AS (\n  SELECT {keys_d}d.__ep, {ids} AS __ids\n  FROM __densest d JOIN __rows r ON {on} AND r.{t} BETWEEN d.__ep_from AND d.__ep_to\n  GROUP BY {group_d}\n),\n\
__window_members AS (\n  SELECT {keys_d}d.__ep, {wm} {MEMBERS_MARK}\n  FROM __densest d JOIN __rows r ON {on} AND r.{t} BETWEEN d.window_start AND d.window_end\n  GROUP BY {group_d}\n)\n\
SELECT {keys_out}d.count, d.__ep_from AS window_start, d.__ep_to AS window_end{sum}{measures}, e.__ids, m.__first.__b AS _src, m.__first.__c AS _line{merchants_out} {SELECT_MARK}\n\
FROM __densest d\nLEFT JOIN __episode_members e ON {on_e} AND d.__ep = e.__ep\nLEFT JOIN __window_members m ON {on_m} AND d.__ep = m.__ep",
        id = row_id(rule.source),
        cond = condition(rule),
        rows = floors(g, columns, keys)?,
        keys_d = keys_comma("d."),
        ids = order_member("r.__id"),
        on = keys_equal(keys, "d", "r"),
        wm = window_members.join(", "),
        keys_out = keys_comma("d."),
        sum = if columns.contains("amount") { ", d.sum_amount" } else { "" },
        measures = g.measures.keys().map(|m| format!(", d.{m}")).collect::<String>(),
        merchants_out = if merchants { ", m.__merchants" } else { "" },
        on_e = keys_equal(keys, "d", "e"),
        on_m = keys_equal(keys, "d", "m"),
    );
    Ok((sql, evidence_lists(rule, g, columns), list_fills(member_order), "rolling"))
}

/// The rows of keys that can hit: a key with fewer rows in all than the
/// condition's `COUNT(*)` floor, or whose largest value or `SUM(CASE ..)`
/// total is below its floor, cannot (`Grouping::min_count`, `max_floors`,
/// `sum_floors`, as the engine prunes). Exact, and it spares the windows
/// of most keys (most cards pay once).
fn floors(g: &Grouping, columns: &BTreeSet<String>, keys: &[String]) -> Result<String, String> {
    if keys.is_empty() {
        return Ok("SELECT * FROM __all".into());
    }
    let over = format!("(PARTITION BY {})", list(keys));
    let mut add: Vec<String> = Vec::new();
    let mut keep: Vec<String> = Vec::new();
    if let Some(k) = g.min_count.filter(|k| *k > 1) {
        add.push(format!("COUNT(*) OVER {over} AS __floor_n"));
        keep.push(format!("__floor_n >= {k}"));
    }
    for (i, (c, v, strict)) in g.max_floors.iter().filter(|(c, _, _)| columns.contains(c)).enumerate() {
        add.push(format!("MAX(CAST({c} AS DOUBLE)) OVER {over} AS __floor_max{i}"));
        keep.push(format!("__floor_max{i} {} {v:?}", if *strict { ">" } else { ">=" }));
    }
    for (i, (text, v, strict)) in g.sum_floors.iter().enumerate() {
        add.push(format!("CAST({} AS DOUBLE) AS __floor_sum{i}", windowed(text, &over)?));
        keep.push(format!("__floor_sum{i} {} {v:?}", if *strict { ">" } else { ">=" }));
    }
    if add.is_empty() {
        return Ok("SELECT * FROM __all".into());
    }
    Ok(format!(
        "SELECT * FROM (SELECT *, {} FROM __all) WHERE {}",
        add.join(", "),
        keep.join(" AND ")
    ))
}

/// `__windows`: one row per row of `__rows`, the window ending at it, by
/// Spark's sliding range frame. Each window is aggregated anew (the frame
/// has no inverse), so a key's cost grows with its rows times the rows in
/// a window: the form for MIN, MAX and the like only.
fn frame_windows(g: &Grouping, millis: i64, columns: &BTreeSet<String>, part: &str, keys_c: &str) -> Result<String, String> {
    let t = g.time_column.as_str();
    let w = "__w";
    let mut aggs: Vec<String> = vec![
        format!("COUNT(*) OVER {w} AS count"),
        format!("MIN({t}) OVER {w} AS window_start"),
        format!("MAX({t}) OVER {w} AS window_end"),
    ];
    if columns.contains("amount") {
        aggs.push(format!("SUM(amount) OVER {w} AS sum_amount"));
    }
    for (name, m) in &g.measures {
        aggs.push(format!(
            "{} AS {name}",
            windowed(&m.text, w).map_err(|e| format!("measure `{name}`: {e}"))?
        ));
    }
    let having = match &g.having {
        Some(h) => windowed(&h.text, w).map_err(|e| format!("having: {e}"))?,
        None => "TRUE".into(),
    };
    aggs.push(format!("({having}) AS __hit"));
    Ok(format!(
        "__windows AS (\n  SELECT {keys_c}__ms, _src AS __s, _line AS __l, {aggs}\n  FROM __rows\n  WINDOW {w} AS ({part}ORDER BY __ms RANGE BETWEEN {before} PRECEDING AND CURRENT ROW)\n)",
        aggs = aggs.join(", "),
        before = millis - 1,
    ))
}

/// `__windows` in linear time, when every aggregate is a sum or a count:
/// running sums to each row (`__cum`), the same sums to the window's open
/// left end t - period found by one sorted sweep over the rows and a
/// probe per row (`__left`: the last row at or before t - period, and the
/// first row after it, whose time is the window's start); each aggregate
/// is the difference. None: some aggregate has no such form.
fn prefix_windows(g: &Grouping, millis: i64, columns: &BTreeSet<String>, part: &str, keys_c: &str) -> Option<String> {
    let t = g.time_column.as_str();
    let mut sums: Vec<(String, String)> = Vec::new();
    let count = prefix_form("COUNT(*)", &mut sums)?;
    let mut aggs: Vec<String> = vec![
        format!("{count} AS count"),
        "__first AS window_start".into(),
        "__t AS window_end".into(),
    ];
    if columns.contains("amount") {
        aggs.push(format!("{} AS sum_amount", prefix_form("SUM(amount)", &mut sums)?));
    }
    for (name, m) in &g.measures {
        aggs.push(format!("{} AS {name}", prefix_form(&m.text, &mut sums)?));
    }
    let having = match &g.having {
        Some(h) => prefix_form(&h.text, &mut sums)?,
        None => "TRUE".into(),
    };
    aggs.push(format!("({having}) AS __hit"));
    let cum: Vec<String> = sums.iter().map(|(n, e)| format!("SUM({e}) OVER __u AS {n}")).collect();
    let names: Vec<String> = sums.iter().map(|(n, _)| n.clone()).collect();
    let nulls: Vec<String> = sums.iter().map(|(n, _)| format!("NULL AS {n}")).collect();
    let lefts: Vec<String> = sums.iter().map(|(n, _)| format!("last({n}, true) OVER __a AS {n}__left")).collect();
    Some(format!(
        "__cum AS (\n  SELECT {keys_c}__ms, _src AS __s, _line AS __l, {t} AS __t, {cum}\n  FROM __rows\n  \
WINDOW __u AS ({part}ORDER BY __ms RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)\n),\n\
__points AS (\n  SELECT {keys_c}__ms AS __at, 1 AS __kind, __s, __l, __t, {names}\n  FROM __cum\n  UNION ALL\n  \
SELECT {keys_c}__ms - {millis} AS __at, 0 AS __kind, __s, __l, NULL AS __t, {nulls}\n  FROM __cum\n),\n\
__left AS (\n  SELECT * FROM (\n    SELECT __kind, __s AS __ls, __l AS __ll, {lefts}, last(__t, true) OVER __b AS __first\n    FROM __points\n    \
WINDOW __a AS ({part}ORDER BY __at, __kind DESC ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW),\n      \
__b AS ({part}ORDER BY __at DESC, __kind ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)\n  ) WHERE __kind = 0\n),\n\
__windows AS (\n  SELECT {keys_c}__ms, __s, __l, {aggs}\n  FROM __cum JOIN __left ON __s = __ls AND __l = __ll\n)",
        cum = cum.join(", "),
        names = names.join(", "),
        nulls = nulls.join(", "),
        lefts = lefts.join(", "),
        aggs = aggs.join(", "),
    ))
}

/// Every rule of a pack, translated or refused: (rules, rule id -> reason).
pub fn translate_pack<'a>(
    rules: impl IntoIterator<Item = &'a CompiledRule>,
    columns: &BTreeMap<InputKind, BTreeSet<String>>,
) -> (Vec<SparkRule>, BTreeMap<String, String>) {
    let mut ok = Vec::new();
    let mut refused = BTreeMap::new();
    let none = BTreeSet::new();
    for r in rules {
        match translate(r, columns.get(&r.source).unwrap_or(&none)) {
            Ok(s) => ok.push(s),
            Err(reason) => {
                refused.insert(r.id.clone(), reason);
            }
        }
    }
    (ok, refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregates_become_window_functions() {
        assert_eq!(
            windowed(
                "COUNT(*) >= 10 AND SUM(CASE WHEN a = 'x(' THEN 1 ELSE 0 END) > 0.5 * count(*)",
                "__w"
            )
            .unwrap(),
            "COUNT(*) OVER __w >= 10 AND SUM(CASE WHEN a = 'x(' THEN 1 ELSE 0 END) OVER __w > 0.5 * COUNT(*) OVER __w"
        );
        assert_eq!(
            windowed("COUNT(DISTINCT merchant_id) > 3", "__w").unwrap(),
            "size(collect_set(merchant_id) OVER __w) > 3"
        );
        assert_eq!(windowed("MEDIAN(amount)", "__w").unwrap(), "percentile(amount, 0.5) OVER __w");
        // A column whose name ends like an aggregate is no call.
        assert_eq!(windowed("my_sum(x) + max_amount", "__w").unwrap(), "my_sum(x) + max_amount");
        assert!(windowed("SUM(MAX(x))", "__w").unwrap_err().contains("inside an aggregate"));
    }

    #[test]
    fn sums_and_counts_take_a_prefix_form_and_the_rest_do_not() {
        let mut sums = Vec::new();
        let f = prefix_form("COUNT(*) >= 3 AND SUM(amount) > 2 * COUNT(*)", &mut sums).unwrap();
        assert_eq!(
            f,
            "(__p0 - COALESCE(__p0__left, 0)) >= 3 AND (CASE WHEN (__p2 - COALESCE(__p2__left, 0)) = 0 THEN NULL \
             ELSE (__p1 - COALESCE(__p1__left, 0)) END) > 2 * (__p0 - COALESCE(__p0__left, 0))"
        );
        // One running sum per distinct expression.
        assert_eq!(sums.len(), 3);
        assert!(prefix_form("MAX(days_since_prev_txn) >= 30", &mut sums).is_none());
        assert!(prefix_form("COUNT(DISTINCT card_hash) > 3", &mut sums).is_none());
    }
}
