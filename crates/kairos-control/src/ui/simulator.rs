//! The simulator: a visitor played against a group's runtime, saved as a scenario file.

use super::*;

#[derive(Deserialize, Default)]
pub(super) struct SimulatorForm {
    #[serde(default)]
    group: String,
    #[serde(default)]
    audience: String,
    #[serde(default)]
    params: String,
    #[serde(default)]
    ip: String,
    #[serde(default)]
    count: String,
    #[serde(default)]
    event: String,
    #[serde(default)]
    event_params: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    download: String,
}

/// `a=1, b=x` as typed values: whole numbers, decimals, true/false, else text.
fn pairs(text: &str) -> Result<Vec<(String, kairos_rules::Value)>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p
                .split_once('=')
                .ok_or_else(|| format!("'{p}' is not name=value"))?;
            let v = v.trim();
            let value = if let Ok(i) = v.parse::<i64>() {
                kairos_rules::Value::Int(i)
            } else if let Ok(d) = v.parse::<f64>() {
                kairos_rules::Value::Double(d)
            } else if v == "true" || v == "false" {
                kairos_rules::Value::Bool(v == "true")
            } else {
                kairos_rules::Value::string(v)
            };
            Ok((k.trim().to_string(), value))
        })
        .collect()
}

/// A YAML flow mapping of values: `{ customer_id: 1001, page: "home" }`.
fn flow(values: &[(String, kairos_rules::Value)]) -> String {
    if values.is_empty() {
        return "{}".into();
    }
    let inner: Vec<String> = values
        .iter()
        .map(|(k, v)| format!("{k}: {}", kairos_api::value_json(v)))
        .collect();
    format!("{{ {} }}", inner.join(", "))
}

fn simulator_form(channel: &str, groups: &[GroupView], f: &SimulatorForm) -> String {
    let mut options = String::new();
    for g in groups {
        let name = g.name.as_str();
        let _ = write!(
            options,
            r#"<option value="{0}"{1}>{0}</option>"#,
            esc(name),
            if name == f.group || (f.group.is_empty() && name == "staging") {
                " selected"
            } else {
                ""
            }
        );
    }
    let field = |id: &str, label: &str, value: &str, placeholder: &str| {
        format!(
            r#"<label for="{id}">{label}</label><input id="{id}" name="{id}" type="text" value="{}" placeholder="{}">"#,
            esc(value),
            esc(placeholder)
        )
    };
    format!(
        r#"<form method="post" action="/ui/channels/{}/simulator" class="card"><label for="group">Server group</label><select id="group" name="group">{options}</select>{}{}{}{}{}{}<label for="token">Touchpoint token (when the runtime requires one)</label><input id="token" name="token" type="password" value="{}"><p><button type="submit">Run</button><button type="submit" name="download" value="1" class="secondary">Save as scenario file</button></p></form>"#,
        enc(channel),
        field(
            "audience",
            "Audience ID (field=value, comma separated)",
            &f.audience,
            "customer_id=1001"
        ),
        field(
            "params",
            "Real-time parameters (name=value, comma separated)",
            &f.params,
            "page=home"
        ),
        field("ip", "Interaction point", &f.ip, "hero"),
        field(
            "count",
            "Offers wanted",
            if f.count.is_empty() { "3" } else { &f.count },
            "3"
        ),
        field(
            "event",
            "Then post this event (optional)",
            &f.event,
            "offer_clicked"
        ),
        field(
            "event_params",
            "Event parameters (name=value, comma separated)",
            &f.event_params,
            ""
        ),
        esc(&f.token)
    )
}

pub(super) async fn simulator_page(
    State(cp): Shared,
    Signed(caller): Signed,
    Path(name): Path<String>,
) -> Response {
    let groups = match cp.groups().await {
        Ok(g) => g,
        Err(p) => return error_page(&caller, &p),
    };
    let body = format!(
        r#"<p>Play a visitor against a server group's runtime: start a session, ask for offers, post an event, and see what came back and why.</p>{}"#,
        simulator_form(&name, &groups, &SimulatorForm::default())
    );
    page(Some(&caller), &format!("Simulator: {name}"), &body)
}

/// One simulated call: what it was, and what came back.
struct Played {
    call: String,
    outcome: Result<kairos_engine::scenario::Outcome, String>,
    segments: Option<Vec<String>>,
}

pub(super) async fn simulator_submit(
    State(cp): Shared,
    Signed(caller): Signed,
    Path(name): Path<String>,
    Form(f): Form<SimulatorForm>,
) -> Response {
    use kairos_engine::scenario::{Call, Target};

    let groups = match cp.groups().await {
        Ok(g) => g,
        Err(p) => return error_page(&caller, &p),
    };
    let url = groups
        .iter()
        .find(|g| g.name == f.group)
        .and_then(|g| g.freshest_url());
    let form = simulator_form(&name, &groups, &f);
    let fail = |message: String| {
        page(
            Some(&caller),
            &format!("Simulator: {name}"),
            &format!(
                r#"<p class="error" role="alert">{}</p>{form}"#,
                esc(&message)
            ),
        )
    };
    let Some(url) = url else {
        return fail(format!(
            "no runtime of group '{}' has reported to the control plane",
            f.group
        ));
    };
    let parsed = (|| {
        Ok::<_, String>((
            pairs(&f.audience)?,
            pairs(&f.params)?,
            pairs(&f.event_params)?,
            f.count.trim().parse::<u32>().unwrap_or(3).clamp(1, 50),
        ))
    })();
    let (audience, params, event_params, count) = match parsed {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    if audience.is_empty() || f.ip.trim().is_empty() {
        return fail("give an audience ID and an interaction point".into());
    }
    let ip = f.ip.trim().to_string();
    let event = f.event.trim().to_string();
    let token = Some(f.token.trim().to_string()).filter(|t| !t.is_empty());
    let channel = name.clone();
    let calls = {
        let (audience, params, event_params, ip, event) = (
            audience.clone(),
            params.clone(),
            event_params.clone(),
            ip.clone(),
            event.clone(),
        );
        move || {
            let mut calls = vec![(
                "start session".to_string(),
                Call::StartSession {
                    session_id: None,
                    audience_level: None,
                    audience_id: audience,
                    params,
                },
            )];
            let offers = Call::GetOffers {
                requests: vec![(ip.clone(), count)],
                params: Vec::new(),
                allow_duplicates: false,
            };
            calls.push((format!("get offers: {ip}, {count}"), offers.clone()));
            if !event.is_empty() {
                calls.push((
                    format!("post event: {event}"),
                    Call::PostEvent {
                        event,
                        params: event_params,
                    },
                ));
                calls.push((format!("get offers: {ip}, {count}"), offers));
            }
            calls.push(("end session".to_string(), Call::EndSession));
            calls
        }
    };
    // Blocking HTTP calls to the runtime: off the async workers.
    let played = tokio::task::spawn_blocking(move || {
        let client = kairos_api::Client::new(&url, token).map_err(|e| e.to_string())?;
        let mut remote = kairos_api::remote::Remote::new(client, &channel);
        let mut played = Vec::new();
        for (label, call) in calls() {
            let outcome = remote.call(&call);
            let failed = outcome.is_err();
            let segments = match call {
                Call::StartSession { .. } | Call::PostEvent { .. } if !failed => {
                    remote.segments().ok()
                }
                _ => None,
            };
            played.push(Played {
                call: label,
                outcome,
                segments,
            });
            if failed {
                break;
            }
        }
        Ok::<_, String>(played)
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r);
    let played = match played {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let scenario = scenario_yaml(
        &name,
        &f.group,
        &audience,
        &params,
        &played,
        &event,
        &event_params,
    );
    if f.download == "1" {
        return (
            [
                (header::CONTENT_TYPE, "application/yaml".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{}-simulated.scenarios.yaml\"", name),
                ),
            ],
            scenario,
        )
            .into_response();
    }
    let mut body = String::new();
    for p in &played {
        let _ = write!(body, r#"<section class="card"><h2>{}</h2>"#, esc(&p.call));
        match &p.outcome {
            Err(e) => {
                let _ = write!(body, r#"<p class="error" role="alert">{}</p>"#, esc(e));
            }
            Ok(outcome) => {
                if let Some(segments) = &p.segments {
                    let _ = write!(body, "<p>Segments: {}</p>", esc(&segments.join(", ")));
                }
                if !outcome.messages.is_empty() {
                    let _ = write!(
                        body,
                        "<p>Messages: {}</p>",
                        esc(&outcome.messages.join(", "))
                    );
                }
                for (ip, offers) in &outcome.offers {
                    let _ = write!(
                        body,
                        r#"<table class="offers"><caption>Offers for {}</caption><thead><tr><th scope="col">#</th><th scope="col">Offer</th><th scope="col">Treatment code</th></tr></thead><tbody>"#,
                        esc(ip)
                    );
                    for (n, (code, treatment)) in offers.iter().enumerate() {
                        let _ = write!(
                            body,
                            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
                            n + 1,
                            esc(code),
                            esc(treatment)
                        );
                    }
                    if offers.is_empty() {
                        body.push_str(r#"<tr><td colspan="3" class="muted">none: the default string is served</td></tr>"#);
                    }
                    body.push_str("</tbody></table>");
                }
                if let Some(explain) = &outcome.explain {
                    let _ = write!(
                        body,
                        r#"<details open><summary>Why (explain)</summary><pre class="explain">{}</pre></details>"#,
                        esc(explain)
                    );
                }
            }
        }
        body.push_str("</section>");
    }
    let _ = write!(
        body,
        r#"<h2>As a scenario file</h2><label for="scenario">Scenario file (kairos test FILE --group {})</label><textarea id="scenario" readonly rows="{}">{}</textarea>{form}"#,
        esc(&f.group),
        scenario.lines().count() + 1,
        esc(&scenario)
    );
    page(Some(&caller), &format!("Simulator: {name}"), &body)
}

/// The simulated visit as a scenario, its expectations what came back this time.
fn scenario_yaml(
    channel: &str,
    group: &str,
    audience: &[(String, kairos_rules::Value)],
    params: &[(String, kairos_rules::Value)],
    played: &[Played],
    event: &str,
    event_params: &[(String, kairos_rules::Value)],
) -> String {
    let mut out = format!(
        "channel: {channel}\nscenarios:\n  - name: simulated on {group}\n    start: {{ audience_id: {}, params: {} }}\n    steps:\n",
        flow(audience),
        flow(params)
    );
    for p in played.iter().skip(1) {
        let Ok(outcome) = &p.outcome else { break };
        if let Some(rest) = p.call.strip_prefix("get offers: ") {
            let (ip, count) = rest.split_once(", ").unwrap_or((rest, "3"));
            let codes: Vec<&str> = outcome
                .offers
                .iter()
                .flat_map(|(_, offers)| offers.iter().map(|(code, _)| code.as_str()))
                .collect();
            let _ = write!(
                out,
                "      - get_offers: {{ ip: {ip}, count: {count} }}\n        expect: {{ codes: [ {} ] }}\n",
                codes.join(", ")
            );
        } else if p.call.starts_with("post event") {
            let _ = writeln!(
                out,
                "      - post_event: {{ event: {event}, params: {} }}",
                flow(event_params)
            );
        } else if p.call == "end session" {
            out.push_str("      - end_session: {}\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use kairos_engine::scenario::Outcome;

    use super::*;

    #[test]
    fn a_simulated_visit_is_a_scenario_file_that_reads_back() {
        let offers = |codes: &[&str]| Outcome {
            offers: vec![(
                "hero".into(),
                codes.iter().map(|c| (c.to_string(), "t".into())).collect(),
            )],
            ..Outcome::default()
        };
        let played = [
            ("start session", Outcome::default()),
            ("get offers: hero, 2", offers(&["GOLD", "SILVER"])),
            ("post event: clicked", Outcome::default()),
            ("get offers: hero, 2", offers(&["SILVER"])),
            ("end session", Outcome::default()),
        ]
        .map(|(call, outcome)| Played {
            call: call.into(),
            outcome: Ok(outcome),
            segments: None,
        });
        let audience = pairs("customer_id=1001").unwrap();
        let params = pairs("page=home, vip=true, spend=10.5").unwrap();
        let yaml = scenario_yaml(
            "web",
            "staging",
            &audience,
            &params,
            &played,
            "clicked",
            &[],
        );
        let file = kairos_model::scenario::parse_scenarios("simulated.yaml", &yaml)
            .unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        let steps = &file.scenarios[0].steps;
        assert_eq!(steps.len(), 4, "{yaml}");
        assert!(
            yaml.contains("params: { page: \"home\", vip: true, spend: 10.5 }"),
            "{yaml}"
        );
        assert!(
            yaml.contains("expect: { codes: [ GOLD, SILVER ] }"),
            "{yaml}"
        );
        assert!(
            yaml.contains("post_event: { event: clicked, params: {} }"),
            "{yaml}"
        );
    }
}
