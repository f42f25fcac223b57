//! An interactive flowchart drawn as a tree, on the server (SVG): steps run top to bottom, a
//! decision's branches and a sample's splits side by side under it, each edge labelled with
//! its condition or share.

use std::fmt::Write;

use serde_json::Value as J;

use crate::html::esc;

const BOX: f64 = 28.0;
const GAP: f64 = 16.0;
const LABEL: f64 = 18.0;
const COLUMN_GAP: f64 = 18.0;
const CHAR: f64 = 6.8;
const MAX_CHARS: usize = 34;

fn short(text: &str) -> String {
    if text.chars().count() <= MAX_CHARS {
        text.to_string()
    } else {
        let cut: String = text.chars().take(MAX_CHARS - 1).collect();
        format!("{cut}…")
    }
}

fn text_width(text: &str) -> f64 {
    short(text).chars().count() as f64 * CHAR + 18.0
}

/// A step's branches: (edge label, steps under it).
fn branches(step: &J) -> Option<(String, Vec<(String, &J)>)> {
    if let Some(d) = step.get("decision") {
        let mut out: Vec<(String, &J)> = d["branches"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|b| (b["when"].as_str().unwrap_or("?").to_string(), &b["steps"]))
            .collect();
        if !d["else"].is_null() {
            out.push(("else".to_string(), &d["else"]));
        }
        let mode = d["mode"].as_str().unwrap_or("first");
        return Some((format!("decision ({mode} match)"), out));
    }
    if let Some(s) = step.get("sample") {
        let out = s["splits"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, share)| (format!("{name}: {share}%"), &s["steps"][name.as_str()]))
            .collect();
        return Some((
            format!("sample ({})", s["seed"].as_str().unwrap_or("no seed")),
            out,
        ));
    }
    None
}

/// What a step without branches shows.
fn label(step: &J) -> String {
    if let Some(segment) = step.get("populate") {
        return format!("→ {}", segment.as_str().unwrap_or("?"));
    }
    if let Some(select) = step.get("select") {
        return format!("select {}", select["when"].as_str().unwrap_or("?"));
    }
    step.as_object()
        .and_then(|o| o.keys().next().cloned())
        .unwrap_or_else(|| "?".into())
}

fn steps_of(list: &J) -> Vec<&J> {
    list.as_array().into_iter().flatten().collect()
}

fn measure_steps(list: &J) -> (f64, f64) {
    let steps = steps_of(list);
    if steps.is_empty() {
        return (text_width("(nothing)"), BOX);
    }
    let sizes: Vec<(f64, f64)> = steps.iter().map(|s| measure_step(s)).collect();
    let w = sizes.iter().map(|s| s.0).fold(0.0, f64::max);
    let h = sizes.iter().map(|s| s.1).sum::<f64>() + GAP * (sizes.len() - 1) as f64;
    (w, h)
}

fn measure_step(step: &J) -> (f64, f64) {
    match branches(step) {
        None => (text_width(&label(step)), BOX),
        Some((header, arms)) => {
            let columns: Vec<(f64, f64)> = arms
                .iter()
                .map(|(edge, steps)| {
                    let (w, h) = measure_steps(steps);
                    (w.max(text_width(edge)), h)
                })
                .collect();
            let w = columns.iter().map(|c| c.0).sum::<f64>()
                + COLUMN_GAP * columns.len().saturating_sub(1) as f64;
            let h = columns.iter().map(|c| c.1).fold(0.0, f64::max);
            (w.max(text_width(&header)), BOX + GAP + LABEL + h)
        }
    }
}

fn node(out: &mut String, x: f64, y: f64, text: &str, class: &str) {
    let w = text_width(text);
    let _ = write!(
        out,
        r##"<g class="{class}"><rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{BOX}" rx="5" fill="{}" stroke="#1b5fc1"/><text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle" fill="#1d2430">{}<title>{}</title></text></g>"##,
        if class == "segment" {
            "#e7f0fd"
        } else {
            "#fff"
        },
        x + w / 2.0,
        y + 18.0,
        esc(&short(text)),
        esc(text)
    );
}

/// Draws steps centred in a column `width` wide starting at `x`; returns the bottom.
fn draw_steps(out: &mut String, list: &J, x: f64, y: f64, width: f64) -> f64 {
    let steps = steps_of(list);
    if steps.is_empty() {
        let w = text_width("(nothing)");
        node(out, x + (width - w) / 2.0, y, "(nothing)", "empty");
        return y + BOX;
    }
    let mut y = y;
    for (i, step) in steps.iter().enumerate() {
        if i > 0 {
            let mid = x + width / 2.0;
            let _ = write!(
                out,
                r##"<line x1="{mid:.1}" y1="{:.1}" x2="{mid:.1}" y2="{y:.1}" stroke="#5b6472"/>"##,
                y - GAP
            );
        }
        y = draw_step(out, step, x, y, width) + GAP;
    }
    y - GAP
}

fn draw_step(out: &mut String, step: &J, x: f64, y: f64, width: f64) -> f64 {
    let mid = x + width / 2.0;
    match branches(step) {
        None => {
            let text = label(step);
            let class = if step.get("populate").is_some() {
                "segment"
            } else {
                "step"
            };
            node(out, mid - text_width(&text) / 2.0, y, &text, class);
            y + BOX
        }
        Some((header, arms)) => {
            node(
                out,
                mid - text_width(&header) / 2.0,
                y,
                &header,
                "branching",
            );
            let columns: Vec<f64> = arms
                .iter()
                .map(|(edge, steps)| measure_steps(steps).0.max(text_width(edge)))
                .collect();
            let total =
                columns.iter().sum::<f64>() + COLUMN_GAP * columns.len().saturating_sub(1) as f64;
            let mut left = mid - total / 2.0;
            let top = y + BOX + GAP;
            let mut bottom = top;
            for ((edge, steps), w) in arms.iter().zip(columns) {
                let centre = left + w / 2.0;
                let _ = write!(
                    out,
                    r##"<line x1="{mid:.1}" y1="{:.1}" x2="{centre:.1}" y2="{top:.1}" stroke="#5b6472"/><text x="{centre:.1}" y="{:.1}" font-size="11" text-anchor="middle" fill="#5b6472">{}<title>{}</title></text>"##,
                    y + BOX,
                    top + 12.0,
                    esc(&short(edge)),
                    esc(edge)
                );
                bottom = bottom.max(draw_steps(out, steps, left, top + LABEL, w));
                left += w + COLUMN_GAP;
            }
            bottom
        }
    }
}

/// The flowchart (its body as in the channel file) as an SVG image.
pub fn svg(name: &str, body: &J) -> String {
    let (w, h) = measure_steps(&body["steps"]);
    let (width, height) = (w + 20.0, h + 20.0);
    let mut out = format!(
        r#"<svg class="flowchart" role="img" aria-label="flowchart {0}" viewBox="0 0 {width:.0} {height:.0}" width="{width:.0}" height="{height:.0}" xmlns="http://www.w3.org/2000/svg"><title>flowchart {0}</title>"#,
        esc(name)
    );
    draw_steps(&mut out, &body["steps"], 10.0, 10.0, w);
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_step_and_branch_is_drawn() {
        let body = json!({ "steps": [ { "decision": {
            "branches": [
                { "when": "profile.age < 26", "steps": [ { "populate": "young" } ] },
                { "when": "true", "steps": [ { "sample": {
                    "seed": "s", "splits": { "a": 50, "b": 50 },
                    "steps": { "a": [ { "populate": "spring_a" } ], "b": [ { "populate": "spring_b" } ] } } } ] }
            ],
            "else": [ { "select": { "when": "profile.vip" } }, { "populate": "mainstream" } ] } } ] });
        let svg = svg("main", &body);
        for text in [
            "decision (first match)",
            "profile.age &lt; 26",
            "sample (s)",
            "a: 50%",
            "→ spring_b",
            "select profile.vip",
            "→ mainstream",
            ">else<",
        ] {
            assert!(svg.contains(text), "{text} in {svg}");
        }
        assert_eq!(svg.matches("class=\"segment\"").count(), 4);
    }
}
