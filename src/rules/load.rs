//! Loading rule files: one rule per YAML file or a list of them, from one
//! or more folders, with errors that point at file, line, rule and field.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::compiled::{compile, CompiledRule};
use super::model::Rule;

/// One problem with the rule pack.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RuleIssue {
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub rule_id: Option<String>,
    pub field: Option<String>,
    pub message: String,
}

impl RuleIssue {
    /// A problem with a whole file or folder, not one rule.
    pub(crate) fn of_file(file: String, message: impl Into<String>) -> RuleIssue {
        RuleIssue {
            file,
            line: None,
            column: None,
            rule_id: None,
            field: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for RuleIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.column {
                write!(f, ":{c}")?;
            }
        }
        write!(f, ":")?;
        if let Some(id) = &self.rule_id {
            write!(f, " rule {id}:")?;
        }
        if let Some(field) = &self.field {
            write!(f, " field `{field}`:")?;
        }
        write!(f, " {}", self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub struct RuleErrors(pub Vec<RuleIssue>);

impl fmt::Display for RuleErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// A rule with where it came from: as written (`rule`, for the catalogue,
/// its cases and diffs) and compiled (`compiled`, what everything that
/// evaluates it reads).
#[derive(Debug, Clone)]
pub struct LoadedRule {
    pub rule: Rule,
    pub compiled: CompiledRule,
    pub file: String,
    /// The file's text, to find a field's line for later errors.
    pub text: std::sync::Arc<String>,
}

impl LoadedRule {
    /// Compile a rule read from `file`; the errors come located.
    pub fn new(rule: Rule, file: String, text: std::sync::Arc<String>) -> Result<LoadedRule, Vec<RuleIssue>> {
        match compile(&rule) {
            Ok(compiled) => Ok(LoadedRule {
                rule,
                compiled,
                file,
                text,
            }),
            Err(errors) => {
                // A stand-in to locate the errors with.
                let at = |field: &str, message: String| {
                    let (line, column) = locate(&text, &rule.id, field).map_or((None, None), |(l, c)| (Some(l), Some(c)));
                    RuleIssue {
                        file: file.clone(),
                        line,
                        column,
                        rule_id: Some(rule.id.clone()),
                        field: Some(field.to_string()),
                        message,
                    }
                };
                Err(errors.into_iter().map(|(f, e)| at(&f, e.to_string())).collect())
            }
        }
    }

    /// The same rule with some parameters replaced (a rule case's
    /// `params`), compiled again.
    pub(crate) fn with_params(&self, params: &indexmap::IndexMap<String, serde_yaml::Value>) -> Result<LoadedRule, RuleErrors> {
        let mut rule = self.rule.clone();
        for (name, value) in params {
            match rule.params.get_mut(name) {
                Some(v) => *v = value.clone(),
                None => {
                    return Err(RuleErrors(vec![self.issue(
                        Some("tests"),
                        format!("a case sets `{name}`, which is not a parameter of the rule"),
                    )]))
                }
            }
        }
        LoadedRule::new(rule, self.file.clone(), self.text.clone()).map_err(RuleErrors)
    }

    pub fn issue(&self, field: Option<&str>, message: impl Into<String>) -> RuleIssue {
        let (line, column) = field
            .and_then(|f| locate(&self.text, &self.rule.id, f))
            .map_or((None, None), |(l, c)| (Some(l), Some(c)));
        RuleIssue {
            file: self.file.clone(),
            line,
            column,
            rule_id: Some(self.rule.id.clone()),
            field: field.map(str::to_string),
            message: message.into(),
        }
    }
}

/// The rule pack: rules sorted by id, plus what identifies it.
#[derive(Debug, Clone, Default)]
pub struct RulePack {
    pub rules: Vec<LoadedRule>,
    pub files: Vec<String>,
    /// sha256 over every file's path and bytes, in path order.
    pub digest: String,
    pub dirs: Vec<String>,
}

impl RulePack {
    /// Rules lacking a case that must fire (`.0` false) or one that must
    /// not (`.1` false).
    pub fn case_gaps(&self) -> std::collections::BTreeMap<String, (bool, bool)> {
        self.rules
            .iter()
            .map(|lr| {
                let hit = lr.rule.tests.iter().any(|t| !t.hits.is_empty());
                let miss = lr.rule.tests.iter().any(|t| t.hits.is_empty());
                (lr.rule.id.clone(), (hit, miss))
            })
            .filter(|(_, (h, m))| !(*h && *m))
            .collect()
    }
}

/// Line and column (1-based) of `field:` inside the rule with this id.
pub(crate) fn locate(text: &str, rule_id: &str, field: &str) -> Option<(usize, usize)> {
    let top = field.split(['.', '[']).next().unwrap_or(field);
    let lines: Vec<&str> = text.lines().collect();
    let is_id_line = |l: &str| {
        let t = l.trim_start().trim_start_matches('-').trim_start();
        t.strip_prefix("id:").is_some_and(|v| v.trim().trim_matches(['"', '\'']) == rule_id)
    };
    let start = lines.iter().position(|l| is_id_line(l)).unwrap_or(0);
    // A rule in a list ends where the next list item starts.
    let indent_of_item = lines[start].len() - lines[start].trim_start().len();
    for (i, l) in lines.iter().enumerate().skip(start) {
        if i > start
            && l.trim_start().starts_with("- ")
            && l.len() - l.trim_start().len() < indent_of_item.max(1)
            && lines[start].trim_start().starts_with('-')
        {
            break;
        }
        if i > start && l.trim_start().starts_with("id:") && l.len() - l.trim_start().len() <= indent_of_item + 2 && !is_id_line(l) {
            break;
        }
        let t = l.trim_start().trim_start_matches("- ");
        if t.starts_with(&format!("{top}:")) {
            let col = l.find(top).unwrap_or(0) + 1;
            return Some((i + 1, col));
        }
    }
    None
}

/// How deep rule folders may nest (a symbolic link loop would otherwise
/// recurse for ever).
const MAX_DEPTH: usize = 16;
/// A rule file larger than this is refused unread.
pub(crate) const MAX_RULE_FILE_BYTES: u64 = 1 << 20;

/// YAML files a rules folder may hold beside the rules that are not rules:
/// an officer's exceptions (`findings::exceptions`) and the case scoring
/// (`findings::cases`).
pub const NOT_RULE_FILES: &[&str] = &["exceptions.yaml", "exceptions.yml", "scoring.yaml", "scoring.yml"];

fn is_rule_file(p: &Path) -> bool {
    matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
        && !p.file_name().and_then(|n| n.to_str()).is_some_and(|n| NOT_RULE_FILES.contains(&n))
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    yaml_files_at(dir, out, 0)
}

fn yaml_files_at(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) -> std::io::Result<()> {
    if depth > MAX_DEPTH {
        return Err(std::io::Error::other(format!(
            "folders nest deeper than {MAX_DEPTH} levels (a symbolic link loop?)"
        )));
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            yaml_files_at(&p, out, depth + 1)?;
        } else if is_rule_file(&p) {
            out.push(p);
        }
    }
    Ok(())
}

fn yaml_error(file: &str, rule_id: Option<String>, e: &serde_yaml::Error) -> RuleIssue {
    let loc = e.location();
    // serde_yaml appends " at line X column Y"; the location is shown up front.
    let msg = e.to_string();
    let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
    // Errors that are not about a known field are YAML syntax errors.
    let msg = if e.location().is_some() && !msg.contains('`') && !msg.contains(':') {
        format!("YAML syntax: {msg}")
    } else {
        msg
    };
    // serde names the field either as "unknown field `x`" or as a "x: ..." path prefix.
    let (field, msg) = match msg.strip_prefix("unknown field `").and_then(|r| r.split('`').next()) {
        Some(f) => (Some(f.to_string()), msg.clone()),
        None => match msg.split_once(": ") {
            Some((path, rest)) if !path.is_empty() && path.chars().all(|c| c.is_ascii_alphanumeric() || "_.[]".contains(c)) => {
                (Some(path.to_string()), rest.to_string())
            }
            _ => (None, msg.clone()),
        },
    };
    RuleIssue {
        file: file.to_string(),
        line: loc.as_ref().map(|l| l.line()),
        column: loc.as_ref().map(|l| l.column()),
        rule_id,
        field,
        message: msg,
    }
}

/// A problem with one item of a file kept beside the rules, located at
/// the item's `field` (found by the item's `id`; with no id, at the
/// top-level `field`).
pub(crate) fn side_file_issue(file: &str, text: &str, id: &str, field: &str, message: String) -> RuleIssue {
    let at = if id.is_empty() {
        text.lines().position(|l| l.starts_with(&format!("{field}:"))).map(|i| (i + 1, 1))
    } else {
        locate(text, id, field)
    };
    RuleIssue {
        file: file.to_string(),
        line: at.map(|a| a.0),
        column: at.map(|a| a.1),
        rule_id: None,
        field: Some(field.to_string()),
        message,
    }
}

/// Parse a YAML file kept beside the rules (exceptions, scoring) into `T`,
/// through a YAML value first: that refuses a key written twice, which
/// serde would otherwise settle silently by keeping the last. A problem
/// comes back at its line and column.
pub(crate) fn parse_side_file<T: serde::de::DeserializeOwned>(file: &str, text: &str) -> Result<T, Vec<RuleIssue>> {
    serde_yaml::from_str::<serde_yaml::Value>(text)
        .and_then(|_| serde_yaml::from_str(text))
        .map_err(|e| {
            let loc = e.location();
            let msg = e.to_string();
            vec![RuleIssue {
                file: file.to_string(),
                line: loc.as_ref().map(|l| l.line()),
                column: loc.as_ref().map(|l| l.column()),
                rule_id: None,
                field: None,
                message: msg.split(" at line ").next().unwrap_or(&msg).to_string(),
            }]
        })
}

/// Load every `.yaml`/`.yml` file under the folders. All problems are
/// collected, not just the first.
pub fn load(dirs: &[PathBuf]) -> Loaded {
    let mut issues = Vec::new();
    let mut texts = Vec::new();
    for dir in dirs {
        let mut paths = Vec::new();
        if let Err(e) = yaml_files(dir, &mut paths) {
            issues.push(RuleIssue::of_file(
                dir.display().to_string(),
                format!("cannot read the rules folder: {e}"),
            ));
            continue;
        }
        if paths.is_empty() {
            issues.push(RuleIssue::of_file(
                dir.display().to_string(),
                "no rule files (*.yaml) in this folder: a scan with no rules would check nothing",
            ));
        }
        for path in paths {
            if std::fs::metadata(&path).is_ok_and(|m| m.len() > MAX_RULE_FILE_BYTES) {
                issues.push(RuleIssue::of_file(
                    path.display().to_string(),
                    format!("rule file is larger than {MAX_RULE_FILE_BYTES} bytes"),
                ));
                continue;
            }
            match std::fs::read_to_string(&path) {
                Ok(t) => texts.push((path.display().to_string(), t)),
                Err(e) => issues.push(RuleIssue::of_file(path.display().to_string(), e.to_string())),
            }
        }
    }
    load_texts(texts, dirs.iter().map(|d| d.display().to_string()).collect(), issues)
}

/// The pack built into the binary (the repository's `rules/` at build time),
/// used when no `--rules` is given and there is no `./rules`.
pub(crate) fn load_builtin() -> Loaded {
    fn walk(d: &include_dir::Dir<'static>, out: &mut Vec<(String, String)>) {
        for f in d.files() {
            if is_rule_file(f.path()) {
                out.push((
                    format!("(built-in)/rules/{}", f.path().display()),
                    f.contents_utf8().unwrap_or("").to_string(),
                ));
            }
        }
        for sub in d.dirs() {
            walk(sub, out);
        }
    }
    let mut texts = Vec::new();
    walk(&BUILTIN, &mut texts);
    texts.sort();
    load_texts(texts, vec!["(built-in)/rules".to_string()], vec![])
}

/// A file of the built-in pack by its path under `rules/` (reference tables).
pub fn builtin_file(path: &str) -> Option<String> {
    BUILTIN.get_file(path).and_then(|f| f.contents_utf8()).map(str::to_string)
}

static BUILTIN: include_dir::Dir<'static> = include_dir::include_dir!("$CARGO_MANIFEST_DIR/rules");

/// Parse rule files given as (name, text), in the given order.
pub fn load_texts(texts: Vec<(String, String)>, dirs: Vec<String>, mut issues: Vec<RuleIssue>) -> Loaded {
    let mut rules: Vec<LoadedRule> = Vec::new();
    let mut hasher = Sha256::new();
    let mut files = Vec::new();
    for (file, text) in texts {
        hasher.update(file.as_bytes());
        hasher.update([0]);
        hasher.update(text.as_bytes());
        files.push(file.clone());
        let value: serde_yaml::Value = match serde_yaml::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                issues.push(yaml_error(&file, None, &e));
                continue;
            }
        };
        let text = std::sync::Arc::new(text);
        let parsed: Result<Vec<Rule>, serde_yaml::Error> = match &value {
            serde_yaml::Value::Sequence(_) => serde_yaml::from_str(&text),
            serde_yaml::Value::Null => Ok(vec![]),
            _ => serde_yaml::from_str::<Rule>(&text).map(|r| vec![r]),
        };
        match parsed {
            Ok(rs) => {
                for rule in rs {
                    match LoadedRule::new(rule, file.clone(), text.clone()) {
                        Ok(lr) => rules.push(lr),
                        Err(errors) => issues.extend(errors),
                    }
                }
            }
            Err(e) => {
                let id = match &value {
                    serde_yaml::Value::Mapping(m) => m.get("id").and_then(|v| v.as_str()).map(str::to_string),
                    _ => None,
                };
                issues.push(yaml_error(&file, id, &e));
            }
        }
    }
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for r in &rules {
        if let Some(first) = seen.get(&r.rule.id) {
            issues.push(r.issue(Some("id"), format!("duplicate rule id (first defined in {first})")));
        } else {
            seen.insert(r.rule.id.clone(), r.file.clone());
        }
    }
    if rules.is_empty() && issues.is_empty() {
        issues.push(RuleIssue::of_file(
            dirs.join(", "),
            "the rule files define no rules: a scan with no rules would check nothing",
        ));
    }
    for r in &rules {
        issues.extend(
            super::bounds::check(&r.rule)
                .into_iter()
                .map(|(field, e)| r.issue(Some(&field), e.to_string())),
        );
    }
    rules.sort_by(|a, b| a.rule.id.cmp(&b.rule.id));
    let digest = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Loaded {
        pack: RulePack {
            rules,
            files,
            digest,
            dirs,
        },
        issues,
    }
}

/// The rules that parsed, and the problems with those that did not, so
/// that one run reports every problem in the pack.
pub struct Loaded {
    pub pack: RulePack,
    pub issues: Vec<RuleIssue>,
}

impl Loaded {
    pub fn into_result(self) -> Result<RulePack, RuleErrors> {
        if self.issues.is_empty() {
            Ok(self.pack)
        } else {
            Err(RuleErrors(self.issues))
        }
    }
}
