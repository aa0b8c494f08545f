//! The language findings are written in: English (the default, for CI)
//! or Chinese (`--lang zh`, for the officers who act on them).

use super::model::Finding;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Lang {
    #[default]
    En,
    Zh,
}

impl std::str::FromStr for Lang {
    type Err = String;
    fn from_str(s: &str) -> Result<Lang, String> {
        match s.to_ascii_lowercase().as_str() {
            "en" | "english" => Ok(Lang::En),
            "zh" | "zh-cn" | "zh_cn" | "cn" | "chinese" => Ok(Lang::Zh),
            _ => Err(format!("`{s}` is not a language posaudit writes (en or zh)")),
        }
    }
}

impl Lang {
    /// `--lang`, else `$POSAUDIT_LANG`, else English.
    pub fn resolve(given: Option<Lang>) -> Lang {
        given
            .or_else(|| std::env::var("POSAUDIT_LANG").ok().and_then(|v| v.parse().ok()))
            .unwrap_or_default()
    }

    /// Pick the text of this language, falling back to English.
    pub fn pick<'a>(self, en: &'a str, zh: Option<&'a str>) -> &'a str {
        match (self, zh) {
            (Lang::Zh, Some(z)) => z,
            _ => en,
        }
    }
}

/// Write each finding's message in `lang` (its rule's Chinese template
/// where it has one). Fingerprints are made before, from the English, so
/// they do not depend on the language.
pub fn localize(findings: &mut [Finding], lang: Lang) {
    if lang == Lang::Zh {
        for f in findings {
            if let Some(m) = f.message_zh.take() {
                f.message = m;
            }
        }
    }
}
