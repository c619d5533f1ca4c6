//! The web UI's languages: Fluent catalogs (`i18n/en.ftl`, `i18n/ru.ftl`) compiled into
//! the binary, the reader's language chosen from their override (a cookie) or
//! `Accept-Language`, and the same catalog for the browser's script as a small module
//! of patterns its `i18n.js` formats (plural rules from the browser's `Intl`).

use std::collections::HashMap;
use std::sync::LazyLock;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use fluent_syntax::ast;
use serde_json::{Value, json};
use unic_langid::LanguageIdentifier;

/// A language of the UI.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Lang {
    /// English, the fallback.
    #[default]
    En,
    /// Russian.
    Ru,
}

impl Lang {
    /// Every language, in the order the chooser lists them.
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Ru];

    /// The BCP 47 code (`<html lang>`, the cookie's value).
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ru => "ru",
        }
    }

    /// The language's own name for itself.
    pub fn name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Ru => "Русский",
        }
    }

    /// The language `code` names (its primary subtag: `ru-RU` is Russian).
    pub fn parse(code: &str) -> Option<Lang> {
        let primary = code.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        Lang::ALL.into_iter().find(|l| l.code() == primary)
    }

    /// The reader's language: their choice when made (`chosen`), else the first of
    /// `accept` (an `Accept-Language` value, by quality) that the UI has, else English.
    pub fn negotiate(chosen: Option<&str>, accept: Option<&str>) -> Lang {
        if let Some(lang) = chosen.and_then(Lang::parse) {
            return lang;
        }
        let mut ranges: Vec<(f32, &str)> = (accept.unwrap_or_default().split(','))
            .filter_map(|range| {
                let mut parts = range.split(';');
                let tag = parts.next()?.trim();
                let quality = parts
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .map_or(Some(1.0), |q| q.trim().parse().ok())?;
                (!tag.is_empty() && quality > 0.0).then_some((quality, tag))
            })
            .collect();
        ranges.sort_by(|a, b| b.0.total_cmp(&a.0));
        (ranges.into_iter())
            .find_map(|(_, tag)| Lang::parse(tag))
            .unwrap_or_default()
    }

    fn source(self) -> &'static str {
        match self {
            Lang::En => include_str!("../i18n/en.ftl"),
            Lang::Ru => include_str!("../i18n/ru.ftl"),
        }
    }
}

struct Catalog {
    bundle: FluentBundle<FluentResource>,
    /// The catalog for the browser (`/static/i18n/{lang}.js`).
    script: String,
}

static CATALOGS: LazyLock<HashMap<Lang, Catalog>> = LazyLock::new(|| {
    (Lang::ALL.into_iter())
        .map(|lang| (lang, Catalog::load(lang)))
        .collect()
});

impl Catalog {
    fn load(lang: Lang) -> Self {
        let resource = FluentResource::try_new(lang.source().to_owned())
            .unwrap_or_else(|(_, errors)| panic!("{} catalog: {errors:?}", lang.code()));
        let id: LanguageIdentifier = lang.code().parse().expect("a language id");
        let mut bundle = FluentBundle::new_concurrent(vec![id]);
        // Pages are left to right; isolation marks would only show up in tests and copies.
        bundle.set_use_isolating(false);
        bundle
            .add_resource(resource)
            .unwrap_or_else(|errors| panic!("{} catalog: {errors:?}", lang.code()));
        Self {
            bundle,
            script: script_catalog(lang),
        }
    }
}

/// Message `id` in `lang` with `args`; the id itself when the catalog lacks it (a test
/// makes sure none does).
pub fn translate(lang: Lang, id: &str, args: Option<&FluentArgs>) -> String {
    let catalog = &CATALOGS[&lang];
    let Some(pattern) = catalog.bundle.get_message(id).and_then(|m| m.value()) else {
        tracing::warn!(id, lang = lang.code(), "missing translation");
        return id.to_owned();
    };
    let mut errors = Vec::new();
    let text = catalog.bundle.format_pattern(pattern, args, &mut errors);
    if !errors.is_empty() {
        tracing::warn!(id, lang = lang.code(), ?errors, "translation failed");
    }
    text.into_owned()
}

/// Message `id` with one argument.
pub fn translate_with<'a>(
    lang: Lang,
    id: &str,
    name: &'a str,
    value: impl Into<FluentValue<'a>>,
) -> String {
    let mut args = FluentArgs::new();
    args.set(name, value);
    translate(lang, id, Some(&args))
}

/// The browser's catalog of `lang`: an ES module whose default export maps each message
/// id to its pattern (see `script_pattern`).
pub fn script(lang: Lang) -> &'static str {
    &CATALOGS[&lang].script
}

fn script_catalog(lang: Lang) -> String {
    let resource = fluent_syntax::parser::parse(lang.source())
        .unwrap_or_else(|(_, errors)| panic!("{} catalog: {errors:?}", lang.code()));
    let mut messages = serde_json::Map::new();
    for entry in &resource.body {
        if let ast::Entry::Message(message) = entry
            && let Some(value) = &message.value
        {
            messages.insert(message.id.name.to_owned(), script_pattern(value));
        }
    }
    let catalog = json!({"lang": lang.code(), "messages": messages});
    format!("export default {catalog};\n")
}

/// A pattern as the script formats it: a string when it is plain text, else a list of
/// parts — text, `{"v": name}` for a variable, `{"s": name, "o": {key: parts}, "d": key}`
/// for a selection on a variable (by exact number, then plural category, else default).
fn script_pattern(pattern: &ast::Pattern<&str>) -> Value {
    let parts: Vec<Value> = pattern.elements.iter().map(script_element).collect();
    match parts.as_slice() {
        [] => Value::String(String::new()),
        [Value::String(text)] => Value::String(text.clone()),
        _ => Value::Array(parts),
    }
}

fn script_element(element: &ast::PatternElement<&str>) -> Value {
    match element {
        ast::PatternElement::TextElement { value } => json!(value),
        ast::PatternElement::Placeable { expression } => match expression {
            ast::Expression::Inline(inline) => script_inline(inline),
            ast::Expression::Select { selector, variants } => {
                let ast::InlineExpression::VariableReference { id } = selector else {
                    panic!("the script's catalog selects on variables only");
                };
                let options: serde_json::Map<String, Value> = (variants.iter())
                    .map(|v| (variant_key(&v.key), script_pattern(&v.value)))
                    .collect();
                let default = variants
                    .iter()
                    .find(|v| v.default)
                    .map(|v| variant_key(&v.key));
                json!({"s": id.name, "o": options, "d": default})
            }
        },
    }
}

fn script_inline(inline: &ast::InlineExpression<&str>) -> Value {
    match inline {
        ast::InlineExpression::VariableReference { id } => json!({"v": id.name}),
        ast::InlineExpression::StringLiteral { value }
        | ast::InlineExpression::NumberLiteral { value } => json!(value),
        other => panic!("the script's catalog has no {other:?}"),
    }
}

fn variant_key(key: &ast::VariantKey<&str>) -> String {
    match key {
        ast::VariantKey::Identifier { name } => (*name).to_owned(),
        ast::VariantKey::NumberLiteral { value } => format!("={value}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(lang: Lang) -> Vec<String> {
        let resource = fluent_syntax::parser::parse(lang.source()).expect("parses");
        let mut ids: Vec<String> = (resource.body.iter())
            .filter_map(|e| match e {
                ast::Entry::Message(m) => Some(m.id.name.to_owned()),
                _ => None,
            })
            .collect();
        ids.sort();
        ids
    }

    #[test]
    fn every_language_has_every_message_and_each_formats() {
        let english = ids(Lang::En);
        assert!(english.len() > 100, "{}", english.len());
        for lang in Lang::ALL {
            assert_eq!(ids(lang), english, "{} has other ids", lang.code());
            let mut args = FluentArgs::new();
            for (name, value) in [("name", "x"), ("room", "r"), ("who", "w"), ("when", "t")] {
                args.set(name, value);
            }
            for name in ["sender", "where", "names", "emoji", "replies", "theme"] {
                args.set(name, "x");
            }
            args.set("n", 3);
            for id in &english {
                let bundle = &CATALOGS[&lang].bundle;
                let pattern = bundle.get_message(id).and_then(|m| m.value()).expect(id);
                let mut errors = Vec::new();
                let text = bundle.format_pattern(pattern, Some(&args), &mut errors);
                assert!(errors.is_empty(), "{} {id}: {errors:?}", lang.code());
                assert!(!text.trim().is_empty(), "{} {id} is empty", lang.code());
            }
        }
    }

    #[test]
    fn plurals_follow_each_language() {
        let replies = |lang, n: i64| translate_with(lang, "replies", "n", n);
        assert_eq!(replies(Lang::En, 1), "1 reply");
        assert_eq!(replies(Lang::En, 5), "5 replies");
        assert_eq!(replies(Lang::Ru, 1), "1 ответ");
        assert_eq!(replies(Lang::Ru, 3), "3 ответа");
        assert_eq!(replies(Lang::Ru, 5), "5 ответов");
        assert_eq!(replies(Lang::Ru, 21), "21 ответ");
    }

    #[test]
    fn the_choice_beats_the_browser_and_quality_orders_the_rest() {
        assert_eq!(Lang::negotiate(None, None), Lang::En);
        assert_eq!(
            Lang::negotiate(None, Some("ru-RU,ru;q=0.9,en;q=0.8")),
            Lang::Ru
        );
        assert_eq!(
            Lang::negotiate(None, Some("de, en;q=0.5, ru;q=0.7")),
            Lang::Ru
        );
        assert_eq!(Lang::negotiate(None, Some("ru;q=0, en")), Lang::En);
        assert_eq!(Lang::negotiate(Some("en"), Some("ru")), Lang::En);
        assert_eq!(Lang::negotiate(Some("xx"), Some("ru")), Lang::Ru);
    }

    #[test]
    fn the_script_catalog_keeps_variables_and_plurals() {
        let module = script(Lang::Ru);
        let body = module
            .strip_prefix("export default ")
            .and_then(|m| m.trim_end().strip_suffix(';'))
            .expect("a module");
        let catalog: Value = serde_json::from_str(body).unwrap();
        let messages = &catalog["messages"];
        assert_eq!(messages["room-send"], "Отправить");
        assert_eq!(
            messages["home-hello"],
            json!(["Здравствуйте, ", {"v": "name"}])
        );
        let replies = &messages["replies"][0];
        assert_eq!(replies["s"], "n");
        assert_eq!(replies["d"], "many");
        assert_eq!(replies["o"]["few"], json!([{"v": "n"}, " ответа"]));
    }
}
