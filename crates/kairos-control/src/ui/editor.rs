//! A component's editor: a form for offers, rules, zones and segments, JSON for every
//! component, each error on its field or line.

use super::*;

/// The body's lines, numbered, each error under the line it is on.
fn annotated(text: &str, errors: &[(u32, u32, String)]) -> String {
    let mut out = String::from(
        r#"<ol class="code" id="line-errors" aria-label="the component with its errors">"#,
    );
    for (i, line) in text.lines().enumerate() {
        let n = i as u32 + 1;
        let here: Vec<&(u32, u32, String)> = errors.iter().filter(|e| e.0 == n).collect();
        let _ = write!(
            out,
            r#"<li id="line-{n}"{}>{}</li>"#,
            if here.is_empty() {
                ""
            } else {
                r#" class="bad""#
            },
            esc(line)
        );
        for (_, column, message) in here {
            let _ = write!(
                out,
                r#"<div class="field-error" role="alert" data-line="{n}" data-column="{column}">line {n}, column {column}: {}</div>"#,
                esc(message)
            );
        }
    }
    out.push_str("</ol>");
    out
}

struct Editor<'a> {
    channel: &'a str,
    kind: &'a str,
    name: &'a str,
    text: &'a str,
    revision: Option<i64>,
    /// Errors of this component: (line, column, message).
    errors: Vec<(u32, u32, String)>,
    /// Errors elsewhere in the channel.
    others: Vec<String>,
    message: String,
    /// The raw JSON even for a component that has a form.
    raw: bool,
    /// `<datalist>`s of the channel's names, for the form's suggestions.
    suggestions: String,
}

fn editor(caller: &Caller, e: &Editor) -> Response {
    let mut body = e.message.clone();
    let href = format!(
        "/ui/channels/{}/edit/{}/{}",
        enc(e.channel),
        enc(e.kind),
        enc(e.name)
    );
    let _ = write!(
        body,
        r#"<p><a href="/ui/channels/{}">Back to channel {}</a> · revision {}</p>"#,
        enc(e.channel),
        esc(e.channel),
        e.revision.map_or("new".to_string(), |r| r.to_string())
    );
    if e.kind == "flowcharts"
        && let Ok(parsed) = serde_json::from_str::<J>(e.text)
    {
        let _ = write!(
            body,
            r#"<figure class="card scroll">{}</figure>"#,
            crate::flowchart::svg(e.name, &parsed)
        );
    }
    let form = fields_of(e.kind)
        .filter(|_| !e.raw)
        .and_then(|fields| Some((fields, serde_json::from_str::<J>(e.text).ok()?)));
    if form.is_none() && !e.errors.is_empty() {
        body.push_str(&annotated(e.text, &e.errors));
    }
    if !e.others.is_empty() {
        let _ = write!(
            body,
            r#"<details><summary>{} error(s) in other components</summary><ul>"#,
            e.others.len()
        );
        for o in &e.others {
            let _ = write!(body, "<li>{}</li>", esc(o));
        }
        body.push_str("</ul></details>");
    }
    if let Some((fields, current)) = form {
        body.push_str(&e.suggestions);
        body.push_str(&field_form(
            &href,
            e,
            fields,
            &current,
            caller.roles.contains(&Role::Designer),
        ));
    } else if caller.roles.contains(&Role::Designer) {
        if fields_of(e.kind).is_some() {
            let _ = write!(body, r#"<p><a href="{href}">Edit with the form</a></p>"#);
        }
        let _ = write!(
            body,
            r#"<form method="post" action="{href}" class="card"><input type="hidden" name="revision" value="{}"><label for="body">{} (JSON, shaped like its entry in the channel file)</label><textarea id="body" name="body" rows="{}" spellcheck="false"{}>{}</textarea><p><button type="submit" name="action" value="save">Save</button><button type="submit" name="action" value="delete" class="danger">Delete</button></p></form>"#,
            e.revision.map_or(String::new(), |r| r.to_string()),
            esc(&format!("{}/{}", e.kind, e.name)),
            e.text.lines().count().clamp(6, 40) + 2,
            if e.errors.is_empty() {
                ""
            } else {
                r#" aria-invalid="true" aria-describedby="line-errors""#
            },
            esc(e.text)
        );
    } else {
        let _ = write!(body, r#"<pre class="card">{}</pre>"#, esc(e.text));
    }
    page(Some(caller), &format!("{} {}", e.kind, e.name), &body)
}

/// How a form field edits its key of a component's body.
#[derive(Clone, Copy, PartialEq)]
enum FieldKind {
    Text,
    Number,
    /// An expression: its errors point at a character of it.
    Expr,
    /// `enabled`: absent means true.
    Enabled,
    /// A comma-separated list of names.
    Names,
    /// `name=value` lines (attributes).
    Pairs,
    /// Interaction points, a line each: `name`, or `name=default string`.
    Points,
}

struct Field {
    /// The key in the body; `a.b` for a key of a nested mapping.
    key: &'static str,
    label: &'static str,
    kind: FieldKind,
    /// Which names to suggest: `segments`, `zones`, `offers`, `categories`.
    suggest: Option<&'static str>,
}

const fn field(key: &'static str, label: &'static str, kind: FieldKind) -> Field {
    Field {
        key,
        label,
        kind,
        suggest: None,
    }
}

const fn suggested(key: &'static str, label: &'static str, from: &'static str) -> Field {
    Field {
        key,
        label,
        kind: FieldKind::Text,
        suggest: Some(from),
    }
}

const OFFER_FIELDS: &[Field] = &[
    field("name", "Name", FieldKind::Text),
    field("description", "Description", FieldKind::Text),
    suggested("category", "Category", "categories"),
    field(
        "attributes",
        "Attributes (one name=value per line)",
        FieldKind::Pairs,
    ),
    field("effective", "Effective from (date)", FieldKind::Text),
    field("expires", "Expires (date)", FieldKind::Text),
    field(
        "suppression.after_accept",
        "Suppress after an accept (forever or a duration: 30d)",
        FieldKind::Text,
    ),
    field(
        "suppression.after_reject",
        "Suppress after a reject (forever or a duration)",
        FieldKind::Text,
    ),
    field(
        "suppression.max_contacts",
        "Stop after this many contacts",
        FieldKind::Number,
    ),
    field(
        "suppression.within",
        "...within (a duration)",
        FieldKind::Text,
    ),
];

const RULE_FIELDS: &[Field] = &[
    suggested("segment", "Segment (* for every visitor)", "segments"),
    suggested("zone", "Zone (* for every zone)", "zones"),
    suggested("offer", "Offer", "offers"),
    field(
        "offers",
        "Or several offers (comma separated)",
        FieldKind::Names,
    ),
    field(
        "pick",
        "Pick among several (best or random)",
        FieldKind::Text,
    ),
    field("score", "Marketing score", FieldKind::Number),
    field(
        "eligibility",
        "Eligibility (an expression)",
        FieldKind::Expr,
    ),
    field("score_expr", "Score expression", FieldKind::Expr),
    field("effective", "Effective from (date)", FieldKind::Text),
    field("expires", "Expires (date)", FieldKind::Text),
    field("enabled", "Enabled", FieldKind::Enabled),
    field(
        "attributes",
        "Attribute overrides (one name=value per line)",
        FieldKind::Pairs,
    ),
];

const ZONE_FIELDS: &[Field] = &[field(
    "interaction_points",
    "Interaction points (one per line: name, or name=default string)",
    FieldKind::Points,
)];

/// A segment is one expression: the key `""` is the whole body.
const SEGMENT_FIELDS: &[Field] = &[field(
    "",
    "Who is in the segment (an expression)",
    FieldKind::Expr,
)];

fn fields_of(kind: &str) -> Option<&'static [Field]> {
    match kind {
        "offers" => Some(OFFER_FIELDS),
        "rules" => Some(RULE_FIELDS),
        "segments" => Some(SEGMENT_FIELDS),
        "zones" => Some(ZONE_FIELDS),
        _ => None,
    }
}

fn value_at<'a>(body: &'a J, key: &str) -> &'a J {
    if key.is_empty() {
        return body;
    }
    match key.split_once('.') {
        Some((outer, inner)) => &body[outer][inner],
        None => &body[key],
    }
}

fn scalar_text(v: &J) -> String {
    match v {
        J::Null => String::new(),
        J::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A typed value from a form: a number, true/false, or text.
fn typed(text: &str) -> J {
    if let Ok(i) = text.parse::<i64>() {
        return json!(i);
    }
    if let Ok(d) = text.parse::<f64>() {
        return json!(d);
    }
    match text {
        "true" => json!(true),
        "false" => json!(false),
        _ => json!(text),
    }
}

/// The key of `body` each line of its text is in (`suppression.within` for nested ones), so
/// an error's line names the field it belongs to.
fn keys_by_line(text: &str) -> Vec<Option<String>> {
    let mut outer: Option<String> = None;
    text.lines()
        .map(|line| {
            let indent = line.len() - line.trim_start().len();
            let key = line
                .trim_start()
                .strip_prefix('"')
                .and_then(|rest| rest.split_once("\":"))
                .map(|(k, _)| k.to_string());
            match (indent, key) {
                (2, Some(k)) => {
                    outer = Some(k.clone());
                    Some(k)
                }
                (4, Some(k)) => outer.as_ref().map(|o| format!("{o}.{k}")),
                _ => outer.clone(),
            }
        })
        .collect()
}

fn field_form(href: &str, e: &Editor, fields: &[Field], body: &J, editable: bool) -> String {
    let lines: Vec<&str> = e.text.lines().collect();
    let keys = keys_by_line(e.text);
    let mut out = format!(
        r#"<p><a href="{href}?view=json">Edit as JSON</a></p><form method="post" action="{href}" class="card"><input type="hidden" name="revision" value="{}"><input type="hidden" name="mode" value="form">"#,
        e.revision.map_or(String::new(), |r| r.to_string())
    );
    let mut placed = vec![false; e.errors.len()];
    for f in fields {
        let id = if f.key.is_empty() {
            "field-body".to_string()
        } else {
            format!("field-{}", f.key.replace('.', "-"))
        };
        let value = value_at(body, f.key);
        // The errors whose line is in this field's key, nested ones under their parent.
        let mut errors = String::new();
        for (i, (line, column, message)) in e.errors.iter().enumerate() {
            let key = keys.get(*line as usize - 1).cloned().flatten();
            let here = key.as_deref().is_some_and(|k| {
                k == f.key || (f.kind == FieldKind::Pairs && k.starts_with(&format!("{}.", f.key)))
            });
            if !here {
                continue;
            }
            placed[i] = true;
            let mut text = esc(message);
            if f.kind == FieldKind::Expr {
                // The column points into the quoted expression on its line.
                let line_text = lines.get(*line as usize - 1).copied().unwrap_or_default();
                let start = if f.key.is_empty() {
                    line_text.find('"').map_or(0, |p| p + 1)
                } else {
                    line_text.find(": \"").map_or(0, |p| p + 3)
                };
                let at = (*column as usize).saturating_sub(start + 1);
                let expr = scalar_text(value);
                text = format!(
                    "{text}<pre class=\"caret\">{}\n{}^</pre>",
                    esc(&expr),
                    " ".repeat(at.min(expr.chars().count()))
                );
            }
            let _ = write!(
                errors,
                r#"<div class="field-error" role="alert" id="{id}-error" data-field="{}">{text}</div>"#,
                f.key
            );
        }
        let invalid = if errors.is_empty() {
            String::new()
        } else {
            format!(r#" aria-invalid="true" aria-describedby="{id}-error""#)
        };
        let disabled = if editable { "" } else { " disabled" };
        match f.kind {
            FieldKind::Enabled => {
                let _ = write!(
                    out,
                    r#"<label for="{id}"><input id="{id}" name="f.{}" type="checkbox" value="on"{}{invalid}{disabled}> {}</label>{errors}"#,
                    f.key,
                    if value == &json!(false) {
                        ""
                    } else {
                        " checked"
                    },
                    esc(f.label)
                );
            }
            FieldKind::Pairs | FieldKind::Points => {
                let text: Vec<String> = value
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| match (f.kind, v["default"].as_str()) {
                        (FieldKind::Points, Some(default)) => format!("{k}={default}"),
                        (FieldKind::Points, None) => k.clone(),
                        _ => format!("{k}={}", scalar_text(v)),
                    })
                    .collect();
                let _ = write!(
                    out,
                    r#"<label for="{id}">{}</label><textarea id="{id}" name="f.{}" rows="{}"{invalid}{disabled}>{}</textarea>{errors}"#,
                    esc(f.label),
                    f.key,
                    text.len().max(2) + 1,
                    esc(&text.join("\n"))
                );
            }
            _ => {
                let text = match f.kind {
                    FieldKind::Names => items(value)
                        .iter()
                        .map(|v| scalar_text(v))
                        .collect::<Vec<_>>()
                        .join(", "),
                    _ => scalar_text(value),
                };
                let datalist = f
                    .suggest
                    .map_or(String::new(), |from| format!(r#" list="names-{from}""#));
                let _ = write!(
                    out,
                    r#"<label for="{id}">{}</label><input id="{id}" name="f.{}" type="text" value="{}"{datalist}{}{invalid}{disabled}>{errors}"#,
                    esc(f.label),
                    f.key,
                    esc(&text),
                    if f.kind == FieldKind::Expr {
                        r#" spellcheck="false" class="expr""#
                    } else {
                        ""
                    }
                );
            }
        }
    }
    // Errors the form could not place (a key it has no field for) are listed at the end.
    for ((line, column, message), placed) in e.errors.iter().zip(placed) {
        if !placed {
            let _ = write!(
                out,
                r#"<div class="field-error" role="alert">line {line}, column {column}: {}</div>"#,
                esc(message)
            );
        }
    }
    if editable {
        out.push_str(r#"<p><button type="submit" name="action" value="save">Save</button><button type="submit" name="action" value="delete" class="danger">Delete</button></p>"#);
    }
    out.push_str("</form>");
    out
}

/// The body a form describes: the current body with each field's key set from the form
/// (an empty field removes its key), keys the form has no field for kept.
fn body_from_form(fields: &[Field], current: &J, form: &HashMap<String, String>) -> J {
    if let [whole] = fields
        && whole.key.is_empty()
    {
        return json!(form.get("f.").map_or("", |s| s.trim()));
    }
    let mut body = if current.is_object() {
        current.clone()
    } else {
        json!({})
    };
    for f in fields {
        let raw = form
            .get(&format!("f.{}", f.key))
            .map(|s| s.trim())
            .unwrap_or("");
        let value = match f.kind {
            FieldKind::Enabled if form.contains_key(&format!("f.{}", f.key)) => None,
            FieldKind::Enabled => Some(json!(false)),
            _ if raw.is_empty() => None,
            FieldKind::Text | FieldKind::Expr => Some(json!(raw)),
            FieldKind::Number => Some(typed(raw)),
            FieldKind::Names => Some(J::Array(
                raw.split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(|n| json!(n))
                    .collect(),
            )),
            FieldKind::Pairs => Some(J::Object(
                raw.lines()
                    .filter_map(|l| l.split_once('='))
                    .map(|(k, v)| (k.trim().to_string(), typed(v.trim())))
                    .collect(),
            )),
            FieldKind::Points => Some(J::Object(
                raw.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(|l| match l.split_once('=') {
                        Some((name, default)) => (
                            name.trim().to_string(),
                            json!({ "default": default.trim() }),
                        ),
                        None => (l.to_string(), json!({})),
                    })
                    .collect(),
            )),
        };
        let (outer, inner) = match f.key.split_once('.') {
            Some((o, i)) => (o, Some(i)),
            None => (f.key, None),
        };
        let object = body.as_object_mut().expect("made an object above");
        match (inner, value) {
            (None, Some(v)) => {
                object.insert(outer.to_string(), v);
            }
            (None, None) => {
                object.remove(outer);
            }
            (Some(inner), value) => {
                let nested = object.entry(outer.to_string()).or_insert_with(|| json!({}));
                if !nested.is_object() {
                    *nested = json!({});
                }
                let nested_map = nested.as_object_mut().expect("an object");
                match value {
                    Some(v) => {
                        nested_map.insert(inner.to_string(), v);
                    }
                    None => {
                        nested_map.remove(inner);
                    }
                }
                if nested_map.is_empty() {
                    object.remove(outer);
                }
            }
        }
    }
    body
}

/// Datalists of the channel's segment, zone, offer and category names.
fn suggestions(doc: &ChannelView) -> String {
    let mut out = String::new();
    for (id, kind) in [
        ("segments", "segments"),
        ("zones", "zones"),
        ("offers", "offers"),
    ] {
        let _ = write!(out, r#"<datalist id="names-{id}"><option value="*">"#);
        for c in doc.components.iter().filter(|c| c.kind == kind) {
            let _ = write!(out, r#"<option value="{}">"#, esc(&c.name));
        }
        out.push_str("</datalist>");
    }
    out.push_str(r#"<datalist id="names-categories">"#);
    for c in doc.components.iter().filter(|c| c.kind == "settings") {
        for category in c.body["categories"].as_array().into_iter().flatten() {
            let _ = write!(out, r#"<option value="{}">"#, cell(category));
        }
    }
    out.push_str("</datalist>");
    out
}

/// A design error as `kind/name:line:column: message`.
pub(super) fn error_text(e: &DesignError) -> String {
    format!("{}:{}:{}: {}", e.component, e.line, e.column, e.message)
}

/// This component's errors (line, column, message) and the others' as text.
fn split_errors(
    kind: &str,
    name: &str,
    errors: &[DesignError],
) -> (Vec<(u32, u32, String)>, Vec<String>) {
    let path = format!("{kind}/{name}");
    let (mine, others): (Vec<&DesignError>, Vec<&DesignError>) =
        errors.iter().partition(|e| e.component == path);
    let mine = mine
        .iter()
        .map(|e| (e.line, e.column, e.message.clone()))
        .collect();
    (mine, others.into_iter().map(error_text).collect())
}

#[derive(Deserialize, Default)]
pub(super) struct EditorQuery {
    /// `json` shows the raw body even where there is a form.
    view: Option<String>,
}

/// The channel document and one of its components, or the page saying why not.
async fn component_of(
    cp: &ControlPlane,
    caller: &Caller,
    channel_name: &str,
    kind: &str,
    name: &str,
) -> Result<(ChannelView, Option<ComponentView>), Response> {
    let doc = cp
        .channel(channel_name)
        .await
        .map_err(|p| error_page(caller, &p))?;
    let found = doc
        .components
        .iter()
        .find(|c| c.kind == kind && c.name == name)
        .cloned();
    Ok((doc, found))
}

pub(super) async fn editor_page(
    State(cp): Shared,
    Signed(caller): Signed,
    Path((channel_name, kind, name)): Path<(String, String, String)>,
    Query(q): Query<EditorQuery>,
    flash: Flash,
) -> Response {
    let (doc, found) = match component_of(&cp, &caller, &channel_name, &kind, &name).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Some(found) = found else {
        return error_page(
            &caller,
            &Problem::new(
                Code::NotFound,
                format!("{channel_name} has no {kind}/{name}"),
            ),
        );
    };
    let checked = match cp.validate(&channel_name).await {
        Ok(checked) => checked,
        Err(p) => return error_page(&caller, &p),
    };
    let (errors, others) = split_errors(&kind, &name, &checked.errors);
    let text = components::body_text(&found.body);
    editor(
        &caller,
        &Editor {
            channel: &channel_name,
            kind: &kind,
            name: &name,
            text: &text,
            revision: Some(found.revision),
            errors,
            others,
            message: banner(&flash),
            raw: q.view.as_deref() == Some("json"),
            suggestions: suggestions(&doc),
        },
    )
}

pub(super) async fn editor_submit(
    State(cp): Shared,
    Signed(caller): Signed,
    Path((channel_name, kind, name)): Path<(String, String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let field = |key: &str| form.get(key).map(String::as_str).unwrap_or_default();
    let revision = field("revision").trim().parse::<i64>().ok();
    // The revision the form was opened at: an edit of anything since is a conflict.
    let expect = revision.map_or(Expect::Any, Expect::Revision);
    let here = format!(
        "/ui/channels/{}/edit/{}/{}",
        enc(&channel_name),
        enc(&kind),
        enc(&name)
    );
    let component_kind = match kind_of(&kind) {
        Ok(k) => k,
        Err(p) => return error_page(&caller, &p),
    };
    if field("action") == "delete" {
        let deleted = cp
            .delete_component(&caller, &channel_name, component_kind, &name, expect)
            .await;
        return match deleted {
            Ok(_) => with_flash(
                &format!("/ui/channels/{}", enc(&channel_name)),
                "ok",
                &format!("deleted {kind}/{name}"),
            ),
            Err(p) => with_flash(&here, "error", &problem_message(&p)),
        };
    }
    let (doc, found) = match component_of(&cp, &caller, &channel_name, &kind, &name).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let from_form = field("mode") == "form";
    let base = Editor {
        channel: &channel_name,
        kind: &kind,
        name: &name,
        text: "",
        revision,
        errors: Vec::new(),
        others: Vec::new(),
        message: String::new(),
        raw: !from_form,
        suggestions: suggestions(&doc),
    };
    let body = match fields_of(&kind).filter(|_| from_form) {
        Some(fields) => {
            let current = found.as_ref().map_or(J::Null, |c| c.body.clone());
            body_from_form(fields, &current, &form)
        }
        None => match serde_json::from_str::<J>(field("body")) {
            Ok(b) => b,
            Err(e) => {
                // Not JSON: nothing saved; the error sits on its line.
                let errors = vec![(
                    e.line() as u32,
                    e.column() as u32,
                    format!("not valid JSON: {e}"),
                )];
                let message =
                    r#"<p class="error" role="alert">Not saved: the text is not valid JSON.</p>"#;
                return editor(
                    &caller,
                    &Editor {
                        text: field("body"),
                        errors,
                        message: message.into(),
                        ..base
                    },
                );
            }
        },
    };
    let text = components::body_text(&body);
    let component = Component {
        kind: component_kind,
        name: name.clone(),
        body,
    };
    match cp
        .put_component(&caller, &channel_name, component, expect)
        .await
    {
        Ok(saved) => {
            let (errors, others) = split_errors(&kind, &name, &saved.errors);
            let message = if errors.is_empty() {
                format!(
                    r#"<p class="notice" role="status">Saved as revision {}.</p>"#,
                    saved.revision
                )
            } else {
                format!(
                    r#"<p class="error" role="alert">Saved as revision {}, with {} error(s) that block a deployment.</p>"#,
                    saved.revision,
                    errors.len()
                )
            };
            editor(
                &caller,
                &Editor {
                    text: &text,
                    revision: Some(saved.revision),
                    errors,
                    others,
                    message,
                    ..base
                },
            )
        }
        Err(p) if p.status == StatusCode::CONFLICT => {
            // Someone else saved first: show theirs, keep ours in the form, based on theirs,
            // so saving again is a conscious overwrite.
            let current = component_of(&cp, &caller, &channel_name, &kind, &name)
                .await
                .ok()
                .and_then(|(_, c)| c);
            let theirs = current
                .as_ref()
                .map_or("(deleted)".to_string(), |c| components::body_text(&c.body));
            let message = format!(
                r#"<div class="error" role="alert"><p>Not saved: {} changed this component since you opened it. Their version is below; yours is kept in the form, and saving it again replaces theirs.</p><pre>{}</pre></div>"#,
                esc(current
                    .as_ref()
                    .map_or("someone", |c| c.updated_by.as_str())),
                esc(&theirs)
            );
            editor(
                &caller,
                &Editor {
                    text: &text,
                    revision: current.map(|c| c.revision),
                    message,
                    ..base
                },
            )
        }
        Err(p) => with_flash(&here, "error", &problem_message(&p)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_sets_its_fields_and_keeps_the_rest() {
        let current = json!({
            "name": "Gold", "category": "cards", "unknown_to_the_form": 1,
            "suppression": { "after_reject": "30d" },
        });
        let form: HashMap<String, String> = [
            ("f.name", "Gold card"),
            ("f.category", ""),
            ("f.attributes", "apr=19.9\nfee=95\nimage=gold.png"),
            ("f.suppression.after_reject", ""),
            ("f.suppression.max_contacts", "3"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let body = body_from_form(OFFER_FIELDS, &current, &form);
        assert_eq!(
            body,
            json!({
                "name": "Gold card", "unknown_to_the_form": 1,
                "attributes": { "apr": 19.9, "fee": 95, "image": "gold.png" },
                "suppression": { "max_contacts": 3 },
            })
        );
        let points: HashMap<String, String> = [(
            "f.interaction_points".to_string(),
            "hero=Welcome, friend\n\nsidebar\n".to_string(),
        )]
        .into();
        assert_eq!(
            body_from_form(ZONE_FIELDS, &json!({}), &points),
            json!({ "interaction_points": { "hero": { "default": "Welcome, friend" }, "sidebar": {} } })
        );
        let unchecked = body_from_form(RULE_FIELDS, &json!({ "score": 5 }), &HashMap::new());
        assert_eq!(
            unchecked,
            json!({ "enabled": false }),
            "an unticked box disables"
        );
        let segment: HashMap<String, String> =
            [("f.".to_string(), " profile.age < 40 ".to_string())].into();
        assert_eq!(
            body_from_form(SEGMENT_FIELDS, &json!("true"), &segment),
            json!("profile.age < 40")
        );
    }

    #[test]
    fn each_line_of_a_body_names_its_field() {
        let text = components::body_text(&json!({
            "name": "Gold", "suppression": { "after_accept": "forever", "within": "7d" },
        }));
        let keys = keys_by_line(&text);
        let of =
            |needle: &str| keys[text.lines().position(|l| l.contains(needle)).unwrap()].clone();
        assert_eq!(of("\"name\"").as_deref(), Some("name"));
        assert_eq!(of("\"within\"").as_deref(), Some("suppression.within"));
    }
}
