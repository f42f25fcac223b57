//! Reports with charts: offer performance, runtime latency and throughput, segment sizes.

use super::*;

/// One bar of a chart: its label, its value, and an interval around it when there is one.
struct Bar {
    label: String,
    value: f64,
    interval: Option<(f64, f64)>,
}

/// A horizontal bar chart drawn on the server: no script, nothing to download.
fn bar_chart(title: &str, bars: &[Bar], format: fn(f64) -> String) -> String {
    if bars.is_empty() {
        return format!(
            r#"<p class="muted">{}: nothing to show yet.</p>"#,
            esc(title)
        );
    }
    let (label_width, plot_width, row) = (190.0, 420.0, 22.0);
    let max = bars
        .iter()
        .map(|b| b.interval.map_or(b.value, |(_, high)| high.max(b.value)))
        .fold(0.0f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let height = row * bars.len() as f64 + 8.0;
    let width = label_width + plot_width + 90.0;
    let mut svg = format!(
        r#"<figure class="card scroll"><figcaption>{}</figcaption><svg class="chart" role="img" aria-label="{}" viewBox="0 0 {width} {height}" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg"><title>{}</title>"#,
        esc(title),
        esc(title),
        esc(title)
    );
    for (i, b) in bars.iter().enumerate() {
        let y = 4.0 + row * i as f64;
        let w = plot_width * b.value / max;
        let label: String = b.label.chars().take(26).collect();
        let _ = write!(
            svg,
            r##"<text x="{}" y="{}" text-anchor="end" font-size="12" fill="#1d2430">{}</text><rect class="bar" x="{label_width}" y="{}" width="{w:.1}" height="{}" fill="#1b5fc1"><title>{}: {}</title></rect>"##,
            label_width - 6.0,
            y + 14.0,
            esc(&label),
            y + 3.0,
            row - 8.0,
            esc(&b.label),
            esc(&format(b.value))
        );
        if let Some((low, high)) = b.interval {
            let (x1, x2) = (
                label_width + plot_width * low / max,
                label_width + plot_width * high / max,
            );
            let mid = y + row / 2.0;
            let _ = write!(
                svg,
                r##"<line x1="{x1:.1}" y1="{mid}" x2="{x2:.1}" y2="{mid}" stroke="#b42318" stroke-width="1.5"/><line x1="{x1:.1}" y1="{}" x2="{x1:.1}" y2="{}" stroke="#b42318"/><line x1="{x2:.1}" y1="{}" x2="{x2:.1}" y2="{}" stroke="#b42318"/>"##,
                mid - 4.0,
                mid + 4.0,
                mid - 4.0,
                mid + 4.0
            );
        }
        let _ = write!(
            svg,
            r##"<text x="{}" y="{}" font-size="12" fill="#1d2430">{}</text>"##,
            label_width + plot_width + 6.0,
            y + 14.0,
            esc(&format(b.value))
        );
    }
    svg.push_str("</svg></figure>");
    svg
}

fn percent(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

fn count(v: f64) -> String {
    format!("{v:.0}")
}

fn millis(v: f64) -> String {
    format!("{v:.2} ms")
}

#[derive(Deserialize)]
pub(super) struct ReportsQuery {
    group: Option<String>,
    by: Option<PerformanceBy>,
    days: Option<i64>,
}

pub(super) async fn reports_page(
    State(cp): Shared,
    Signed(caller): Signed,
    Query(q): Query<ReportsQuery>,
) -> Response {
    let groups = match cp.groups().await {
        Ok(g) => g,
        Err(p) => return error_page(&caller, &p),
    };
    let group = q.group.unwrap_or_else(|| "staging".into());
    let by = q.by.unwrap_or_default();
    let days = q.days.unwrap_or(30);
    let mut group_options = String::new();
    for g in &groups {
        let name = g.name.as_str();
        let _ = write!(
            group_options,
            r#"<option value="{0}"{1}>{0}</option>"#,
            esc(name),
            if name == group { " selected" } else { "" }
        );
    }
    let mut by_options = String::new();
    for b in ["offer", "segment", "zone", "day"] {
        let _ = write!(
            by_options,
            r#"<option value="{b}"{}>{b}</option>"#,
            if b == by.name() { " selected" } else { "" }
        );
    }
    let mut body = format!(
        r#"<form method="get" action="/ui/reports" class="card"><label class="inline" for="report-group">Server group <select id="report-group" name="group">{group_options}</select></label><label class="inline" for="report-by">By <select id="report-by" name="by">{by_options}</select></label><label class="inline" for="report-days">Last days <input id="report-days" name="days" type="text" size="4" value="{days}"></label><button type="submit">Show</button></form>"#
    );

    // Offer performance, with the Beta posterior learning draws from.
    let _ = write!(
        body,
        "<h2>Offer performance on {} by {}</h2>",
        esc(&group),
        by.name()
    );
    let performance = cp
        .performance(PerformanceQuery {
            group: group.clone(),
            by,
            days,
        })
        .await;
    match performance {
        Err(p) => {
            let _ = write!(body, r#"<p class="muted">{}</p>"#, esc(&p.detail));
        }
        Ok(report) => {
            let rows = &report.rows;
            let bars: Vec<Bar> = rows
                .iter()
                .take(25)
                .map(|r| Bar {
                    label: r.key.clone(),
                    value: r.rate,
                    interval: Some((r.low, r.high)),
                })
                .collect();
            body.push_str(&bar_chart(
                "Acceptance rate with its 95% interval (the posterior learning uses)",
                &bars,
                percent,
            ));
            let contacts: Vec<Bar> = rows
                .iter()
                .take(25)
                .map(|r| Bar {
                    label: r.key.clone(),
                    value: r.contacts as f64,
                    interval: None,
                })
                .collect();
            body.push_str(&bar_chart("Contacts", &contacts, count));
            body.push_str(
                r#"<div class="scroll"><table class="performance"><thead><tr><th scope="col">"#,
            );
            body.push_str(by.name());
            body.push_str(r#"</th><th scope="col">Contacts</th><th scope="col">Accepts</th><th scope="col">Rejects</th><th scope="col">Acceptance</th><th scope="col">95% interval</th></tr></thead><tbody>"#);
            for r in rows {
                let _ = write!(
                    body,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} – {}</td></tr>",
                    esc(&r.key),
                    r.contacts,
                    r.accepts,
                    r.rejects,
                    percent(r.rate),
                    percent(r.low),
                    percent(r.high)
                );
            }
            body.push_str("</tbody></table></div>");
        }
    }

    // Runtime latency and throughput, as each instance last reported it.
    let _ = write!(
        body,
        "<h2>Runtime latency and throughput on {}</h2>",
        esc(&group)
    );
    let shown = groups.iter().find(|g| g.name == group);
    let instances: &[InstanceView] = shown.map_or(&[], |g| &g.instances);
    let p99: Vec<Bar> = instances
        .iter()
        .filter_map(|i| {
            Some(Bar {
                label: i.instance.clone(),
                value: i.stats.get_offers_p99_ms?,
                interval: None,
            })
        })
        .collect();
    body.push_str(&bar_chart(
        "Get offers p99 latency since start, per instance",
        &p99,
        millis,
    ));
    body.push_str(r#"<div class="scroll"><table><thead><tr><th scope="col">Instance</th><th scope="col">Requests/s</th><th scope="col">Requests</th><th scope="col">Get offers p50</th><th scope="col">p99</th><th scope="col">Live sessions</th></tr></thead><tbody>"#);
    for i in instances {
        let s = &i.stats;
        let ms = |v: Option<f64>| v.map_or(String::new(), millis);
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&i.instance),
            s.requests_per_second,
            s.requests_total,
            ms(s.get_offers_p50_ms),
            ms(s.get_offers_p99_ms),
            s.sessions_live.map_or(String::new(), |n| n.to_string())
        );
    }
    if let Some(g) = shown.filter(|g| g.instances.len() > 1) {
        let t = &g.totals;
        let _ = write!(
            body,
            "<tr><th scope=\"row\">The group ({} live)</th><td>{:.1}</td><td>{}</td><td></td><td></td><td>{}</td></tr>",
            t.live_instances,
            t.requests_per_second,
            t.requests_total,
            t.sessions_live.map_or(String::new(), |n| n.to_string())
        );
    }
    body.push_str("</tbody></table></div>");

    // Segment sizes: a flowchart test run of each version the group runs.
    for a in shown.map_or(&[][..], |g| &g.active) {
        let _ = write!(
            body,
            "<h2>Segment sizes: {} version {}</h2>",
            esc(&a.channel),
            a.version
        );
        match cp
            .segments(&a.channel, a.version, SegmentsQuery::default())
            .await
        {
            Ok(counts) => {
                let bars: Vec<Bar> = counts
                    .segments
                    .iter()
                    .map(|s| Bar {
                        label: s.name.clone(),
                        value: s.visitors as f64,
                        interval: None,
                    })
                    .collect();
                let title = format!(
                    "Visitors per segment over {} rows of {}",
                    counts.visitors, counts.table
                );
                body.push_str(&bar_chart(&title, &bars, count));
            }
            Err(p) => {
                let _ = write!(body, r#"<p class="muted">{}</p>"#, esc(&p.detail));
            }
        }
    }
    page(Some(&caller), "Reports", &body)
}
