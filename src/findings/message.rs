//! Message templates: `{name}` placeholders filled from a finding's
//! evidence, measures and the rule's parameters.

use indexmap::IndexMap;

pub use crate::rules::model::placeholders;

/// Fill a template; a placeholder with no value is left as `{name}` so the
/// gap is visible rather than silently blank.
pub fn render(template: &str, values: &IndexMap<String, String>) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find('}') {
            Some(end) => {
                let name = after[..end].trim();
                match values.get(name) {
                    Some(v) => out.push_str(v),
                    None => out.push_str(&rest[start..start + end + 2]),
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_and_fills_placeholders() {
        let t = "payer {card_hash} paid {sum_amount} yuan on {window_start} ({card_hash})";
        assert_eq!(placeholders(t), vec!["card_hash", "sum_amount", "window_start"]);
        let mut v = IndexMap::new();
        v.insert("card_hash".to_string(), "c1".to_string());
        v.insert("sum_amount".to_string(), "600.00".to_string());
        assert_eq!(render(t, &v), "payer c1 paid 600.00 yuan on {window_start} (c1)");
    }
}
