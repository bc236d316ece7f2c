//! The small template language of pipeline SQL: dbt's `{{ ref('model') }}`,
//! `{{ source('snapshot', 'table') }}`, `{{ var('name') }}`, `{{ config(key='value') }}`, plus
//! `{{ as_of }}`, `{{ as_of_date }}`, `{{ build_id }}`, `{{ snapshot_id }}`, `{{ inputs_hash }}`, and for models whose closed months are
//! frozen `{{ closed('model') }}` (the frozen rows) and `{{ frozen_through }}` (the last frozen
//! month, or null). Comments `{# … #}` are dropped.
//!
//! Publish gating (SPEC §6): a model with `config(blocked_inputs='last_good')` still runs when an
//! input model is blocked, reading that input's last good published version; it learns which
//! with `{{ input_status('model') }}` ('ok', 'stale' = reading the last good version, or
//! 'blocked' = no good version exists: reading the rejected rows) and
//! `{{ blocked_reason('model') }}` (the reason, or null). `{{ definition_version }}` is the
//! model's declared `config(definition_version=…)` plus a hash of its SQL and of every model
//! upstream of it, so changing a definition changes the version recorded on its rows.
//! Nothing else: logic belongs in SQL or in a tested Rust UDF, not in templates.
//!
//! Parsing ([`parse`]) finds a file's inputs and config without knowing the run; rendering
//! ([`render`]) substitutes table names and values for one run.

use std::collections::BTreeMap;

/// A reference to another node of the DAG.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Ref {
    Model(String),
    Source(String),
}

/// One `{{ … }}` call.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    Ref(String),
    Source(String, String),
    Var(String, Option<String>),
    Config(BTreeMap<String, ConfigValue>),
    AsOf,
    AsOfDate,
    BuildId,
    Closed(String),
    FrozenThrough,
    DefinitionVersion,
    SnapshotId,
    InputsHash,
    InputStatus(String),
    BlockedReason(String),
    /// The time through which every input of a model (or one source) was loaded: see
    /// [`crate::project::Renderer`].
    InputsLoadedAt(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ConfigValue {
    Str(String),
    List(Vec<String>),
    Bool(bool),
    Num(f64),
}

/// A template split into literal text and calls.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Text(String),
    Call { call: Call, line: usize },
}

/// A parse error with its 1-based line.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateError {
    pub line: usize,
    pub message: String,
}

pub fn parse(text: &str) -> Result<Vec<Piece>, TemplateError> {
    let mut out = Vec::new();
    let mut rest = text;
    let mut line = 1;
    loop {
        let next_call = rest.find("{{");
        let next_comment = rest.find("{#");
        let (at, comment) = match (next_call, next_comment) {
            (None, None) => {
                if !rest.is_empty() {
                    out.push(Piece::Text(rest.to_string()));
                }
                return Ok(out);
            }
            (Some(a), Some(b)) if b < a => (b, true),
            (None, Some(b)) => (b, true),
            (Some(a), _) => (a, false),
        };
        let (before, after) = rest.split_at(at);
        if !before.is_empty() {
            out.push(Piece::Text(before.to_string()));
        }
        line += before.matches('\n').count();
        let close = if comment { "#}" } else { "}}" };
        let end = after[2..].find(close).ok_or_else(|| TemplateError {
            line,
            message: format!("`{}` is never closed with `{close}`", &after[..2]),
        })?;
        let inner = &after[2..2 + end];
        if !comment {
            let call =
                parse_call(inner.trim()).map_err(|message| TemplateError { line, message })?;
            out.push(Piece::Call { call, line });
        }
        line += inner.matches('\n').count();
        rest = &after[2 + end + 2..];
    }
}

/// Tokens of a call's argument list.
fn parse_call(s: &str) -> Result<Call, String> {
    match s {
        "as_of" => return Ok(Call::AsOf),
        "as_of_date" => return Ok(Call::AsOfDate),
        "build_id" => return Ok(Call::BuildId),
        "frozen_through" => return Ok(Call::FrozenThrough),
        "definition_version" => return Ok(Call::DefinitionVersion),
        "snapshot_id" => return Ok(Call::SnapshotId),
        "inputs_hash" => return Ok(Call::InputsHash),
        _ => {}
    }
    let open = s.find('(').ok_or_else(|| format!("`{{{{ {s} }}}}` is not a call gtmos knows (ref, source, var, config, as_of, as_of_date, build_id)"))?;
    if !s.ends_with(')') {
        return Err(format!("`{s}`: expected a closing `)`"));
    }
    let name = s[..open].trim();
    let args = split_args(&s[open + 1..s.len() - 1])?;
    let positional = |args: &[(Option<String>, ConfigValue)]| -> Result<Vec<String>, String> {
        args.iter()
            .map(|(k, v)| match (k, v) {
                (None, ConfigValue::Str(s)) => Ok(s.clone()),
                _ => Err(format!("`{name}` takes quoted string arguments")),
            })
            .collect()
    };
    match name {
        "ref" => match positional(&args)?.as_slice() {
            [m] => Ok(Call::Ref(m.clone())),
            _ => Err("ref() takes one model name: {{ ref('model') }}".into()),
        },
        "source" => match positional(&args)?.as_slice() {
            [s, t] => Ok(Call::Source(s.clone(), t.clone())),
            _ => {
                Err("source() takes a source and a table: {{ source('snapshot', 'table') }}".into())
            }
        },
        "var" => match positional(&args)?.as_slice() {
            [v] => Ok(Call::Var(v.clone(), None)),
            [v, d] => Ok(Call::Var(v.clone(), Some(d.clone()))),
            _ => Err("var() takes a name and an optional default: {{ var('name') }}".into()),
        },
        "closed" => match positional(&args)?.as_slice() {
            [m] => Ok(Call::Closed(m.clone())),
            _ => Err("closed() takes one model name: {{ closed('model') }}".into()),
        },
        "input_status" => match positional(&args)?.as_slice() {
            [m] => Ok(Call::InputStatus(m.clone())),
            _ => Err("input_status() takes one model name: {{ input_status('model') }}".into()),
        },
        "inputs_loaded_at" => match positional(&args)?.as_slice() {
            [m] => Ok(Call::InputsLoadedAt(m.clone())),
            _ => Err(
                "inputs_loaded_at() takes one model or source name: {{ inputs_loaded_at('model') }}"
                    .into(),
            ),
        },
        "blocked_reason" => match positional(&args)?.as_slice() {
            [m] => Ok(Call::BlockedReason(m.clone())),
            _ => Err("blocked_reason() takes one model name: {{ blocked_reason('model') }}".into()),
        },
        "config" => {
            let mut m = BTreeMap::new();
            for (k, v) in args {
                let k = k.ok_or("config() takes key=value arguments")?;
                m.insert(k, v);
            }
            Ok(Call::Config(m))
        }
        other => Err(format!(
            "unknown function `{other}` (expected ref, source, var, config, closed, input_status, blocked_reason or inputs_loaded_at)"
        )),
    }
}

fn split_args(s: &str) -> Result<Vec<(Option<String>, ConfigValue)>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < chars.len() && chars[*i].is_whitespace() {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        if i >= chars.len() {
            break;
        }
        // Optional `key=`.
        let mut key = None;
        let start = i;
        while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        skip_ws(&mut i);
        if i < chars.len() && chars[i] == '=' && !word.is_empty() {
            key = Some(word);
            i += 1;
            skip_ws(&mut i);
        } else {
            i = start;
        }
        let value = parse_value(&chars, &mut i)?;
        out.push((key, value));
        skip_ws(&mut i);
        if i < chars.len() {
            if chars[i] != ',' {
                return Err(format!("unexpected `{}` in arguments", chars[i]));
            }
            i += 1;
        }
    }
    Ok(out)
}

fn parse_value(chars: &[char], i: &mut usize) -> Result<ConfigValue, String> {
    let quoted = |chars: &[char], i: &mut usize| -> Result<String, String> {
        let q = chars[*i];
        *i += 1;
        let start = *i;
        while *i < chars.len() && chars[*i] != q {
            *i += 1;
        }
        if *i >= chars.len() {
            return Err("an unterminated string".into());
        }
        let s: String = chars[start..*i].iter().collect();
        *i += 1;
        Ok(s)
    };
    match chars.get(*i) {
        Some('\'') | Some('"') => Ok(ConfigValue::Str(quoted(chars, i)?)),
        Some('[') => {
            *i += 1;
            let mut items = Vec::new();
            loop {
                while *i < chars.len() && (chars[*i].is_whitespace() || chars[*i] == ',') {
                    *i += 1;
                }
                match chars.get(*i) {
                    Some(']') => {
                        *i += 1;
                        return Ok(ConfigValue::List(items));
                    }
                    Some('\'') | Some('"') => items.push(quoted(chars, i)?),
                    _ => return Err("lists hold quoted strings: ['a', 'b']".into()),
                }
            }
        }
        _ => {
            let start = *i;
            while *i < chars.len() && !chars[*i].is_whitespace() && chars[*i] != ',' {
                *i += 1;
            }
            let word: String = chars[start..*i].iter().collect();
            match word.as_str() {
                "true" | "True" => Ok(ConfigValue::Bool(true)),
                "false" | "False" => Ok(ConfigValue::Bool(false)),
                w => w
                    .parse()
                    .map(ConfigValue::Num)
                    .map_err(|_| format!("`{w}` is not a value (quote strings)")),
            }
        }
    }
}

/// The inputs a template reads, in order of first use.
pub fn refs(pieces: &[Piece]) -> Vec<Ref> {
    let mut out = Vec::new();
    for p in pieces {
        let r = match p {
            Piece::Call {
                call: Call::Ref(m), ..
            } => Ref::Model(m.clone()),
            Piece::Call {
                call: Call::Source(_, t),
                ..
            } => Ref::Source(t.clone()),
            _ => continue,
        };
        if !out.contains(&r) {
            out.push(r);
        }
    }
    out
}

/// The merged `{{ config(...) }}` calls of a template.
pub fn config(pieces: &[Piece]) -> BTreeMap<String, ConfigValue> {
    let mut m = BTreeMap::new();
    for p in pieces {
        if let Piece::Call {
            call: Call::Config(c),
            ..
        } = p
        {
            m.extend(c.clone());
        }
    }
    m
}

/// What a render substitutes.
pub struct RenderContext<'a> {
    pub vars: &'a BTreeMap<String, String>,
    /// SQL for `{{ as_of }}`; None leaves the call visible (compiling without a snapshot).
    pub as_of: Option<String>,
    pub as_of_date: Option<String>,
    pub build_id: Option<String>,
    /// SQL for `{{ snapshot_id }}` and `{{ inputs_hash }}` (string literals).
    pub snapshot_id: Option<String>,
    pub inputs_hash: Option<String>,
    /// SQL for `{{ frozen_through }}` (a date literal, or a typed null).
    pub frozen_through: Option<String>,
    pub relation: &'a dyn Fn(&Ref) -> String,
    /// SQL for `{{ definition_version }}` (a string literal).
    pub definition_version: Option<String>,
    /// The state of an input model this run: None when it is fine.
    pub input_state: &'a dyn Fn(&str) -> Option<InputState>,
    /// SQL for `{{ inputs_loaded_at('x') }}` per model or source name.
    pub inputs_loaded_at: &'a BTreeMap<String, String>,
}

/// An input model that was blocked this run, as a `blocked_inputs='last_good'` model sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct InputState {
    /// True when the last good published version is read; false when none exists.
    pub last_good: bool,
    pub reason: String,
}

pub fn render(pieces: &[Piece], ctx: &RenderContext) -> Result<String, TemplateError> {
    let mut out = String::new();
    for p in pieces {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Call { call, line } => match call {
                Call::Ref(m) => out.push_str(&(ctx.relation)(&Ref::Model(m.clone()))),
                Call::Source(_, t) => out.push_str(&(ctx.relation)(&Ref::Source(t.clone()))),
                Call::Var(v, default) => match ctx.vars.get(v).or(default.as_ref()) {
                    Some(x) => out.push_str(x),
                    None => {
                        return Err(TemplateError {
                            line: *line,
                            message: format!("var `{v}` is not set in the project's vars"),
                        });
                    }
                },
                Call::Config(_) => {}
                Call::AsOf => out.push_str(ctx.as_of.as_deref().unwrap_or("{{ as_of }}")),
                Call::AsOfDate => {
                    out.push_str(ctx.as_of_date.as_deref().unwrap_or("{{ as_of_date }}"))
                }
                Call::BuildId => {
                    out.push_str(ctx.build_id.as_deref().unwrap_or("'{{ build_id }}'"))
                }
                Call::Closed(m) => out.push_str(&format!("closed.{}", crate::engine::ident(m))),
                Call::FrozenThrough => out.push_str(
                    ctx.frozen_through
                        .as_deref()
                        .unwrap_or("CAST(NULL AS DATE)"),
                ),
                Call::SnapshotId => {
                    out.push_str(ctx.snapshot_id.as_deref().unwrap_or("'{{ snapshot_id }}'"))
                }
                Call::InputsHash => {
                    out.push_str(ctx.inputs_hash.as_deref().unwrap_or("'{{ inputs_hash }}'"))
                }
                Call::DefinitionVersion => match &ctx.definition_version {
                    Some(v) => out.push_str(v),
                    None => {
                        return Err(TemplateError {
                            line: *line,
                            message: "{{ definition_version }} needs config(definition_version='…') in the model".into(),
                        });
                    }
                },
                Call::InputsLoadedAt(m) => match ctx.inputs_loaded_at.get(m) {
                    Some(sql) => out.push_str(sql),
                    None => {
                        return Err(TemplateError {
                            line: *line,
                            message: format!(
                                "inputs_loaded_at('{m}'): no model or source of that name"
                            ),
                        });
                    }
                },
                Call::InputStatus(m) => out.push_str(match (ctx.input_state)(m) {
                    None => "'ok'",
                    Some(InputState {
                        last_good: true, ..
                    }) => "'stale'",
                    Some(_) => "'blocked'",
                }),
                Call::BlockedReason(m) => match (ctx.input_state)(m) {
                    None => out.push_str("CAST(NULL AS VARCHAR)"),
                    Some(s) => out.push_str(&crate::engine::quote(&s.reason)),
                },
            },
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_refs_sources_vars_and_config() {
        let sql = "{{ config(materialized='view', order_by=['a', 'b'], enabled=true) }}\n{# a comment with {{ ref('x') }} #}\nselect * from {{ ref('usage_current') }}\n join {{ source('snapshot', 'accounts') }} a\n where x > {{ var('limit') }} and t < {{ as_of }}";
        let p = parse(sql).unwrap();
        assert_eq!(
            refs(&p),
            vec![
                Ref::Model("usage_current".into()),
                Ref::Source("accounts".into())
            ]
        );
        let c = config(&p);
        assert_eq!(c["materialized"], ConfigValue::Str("view".into()));
        assert_eq!(
            c["order_by"],
            ConfigValue::List(vec!["a".into(), "b".into()])
        );
        let vars = BTreeMap::from([("limit".to_string(), "10".to_string())]);
        let rel = |r: &Ref| match r {
            Ref::Model(m) => format!("models.{m}"),
            Ref::Source(t) => format!("sources.{t}"),
        };
        let ctx = RenderContext {
            vars: &vars,
            as_of: Some("NOW".into()),
            as_of_date: None,
            build_id: None,
            snapshot_id: None,
            inputs_hash: None,
            frozen_through: None,
            relation: &rel,
            definition_version: None,
            input_state: &|_| None,
            inputs_loaded_at: &BTreeMap::new(),
        };
        let out = render(&p, &ctx).unwrap();
        assert!(
            out.contains("from models.usage_current") && out.contains("join sources.accounts a"),
            "{out}"
        );
        assert!(
            out.contains("x > 10 and t < NOW") && !out.contains("comment"),
            "{out}"
        );
    }

    #[test]
    fn errors_carry_the_line() {
        let e = parse("select 1\nfrom {{ ref('a') \n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = parse("select\n\n{{ jinja_magic() }}").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.message.contains("unknown function `jinja_magic`"));
        assert!(parse("{{ ref(a) }}").is_err());
        let p = parse("{{ var('missing') }}").unwrap();
        let vars = BTreeMap::new();
        let rel = |_: &Ref| String::new();
        let ctx = RenderContext {
            vars: &vars,
            as_of: None,
            as_of_date: None,
            build_id: None,
            snapshot_id: None,
            inputs_hash: None,
            frozen_through: None,
            relation: &rel,
            definition_version: None,
            input_state: &|_| None,
            inputs_loaded_at: &BTreeMap::new(),
        };
        assert!(
            render(&p, &ctx)
                .unwrap_err()
                .message
                .contains("var `missing`")
        );
    }
}
