//! The list commands, each with `-o table|json`: `channels`, `tables`, `deployments` (a
//! channel's versions) and `groups`. JSON is the control plane's answer as it is; a table
//! is for people.

use std::process::ExitCode;

use anyhow::Result;
use kairos_api::control::{ChannelSummary, GroupView, TableView, UnknownNameView, VersionView};

use crate::control_cmd::{Control, ControlArgs};

/// `table` for people, `json` for scripts.
#[derive(clap::Args)]
pub struct Output {
    /// How to print: table, for people, or json, for scripts
    #[arg(short = 'o', long = "output", value_name = "FORMAT", default_value = "table", value_parser = ["table", "json"])]
    format: String,
}

impl Output {
    pub fn json(&self) -> bool {
        self.format == "json"
    }

    /// Prints `rows` as JSON, or as `table` prints them.
    pub fn show<T: serde::Serialize>(&self, rows: &[T], table: impl FnOnce(&[T])) -> Result<()> {
        if self.json() {
            println!("{}", serde_json::to_string_pretty(rows)?);
        } else {
            table(rows);
        }
        Ok(())
    }

    /// Prints `rows` as JSON, or each as the line `line` makes of it.
    pub fn print<T: serde::Serialize>(
        &self,
        rows: &[T],
        line: impl Fn(&T) -> String,
    ) -> Result<()> {
        self.show(rows, |rows| {
            for row in rows {
                println!("{}", line(row));
            }
        })
    }
}

#[derive(clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    output: Output,
    #[command(flatten)]
    control: ControlArgs,
}

/// An RFC 3339 time as people read it: to the second, without the fraction.
pub fn to_second(at: &str) -> String {
    match at.split_once('.') {
        Some((whole, fraction)) => {
            let zone = fraction.trim_start_matches(|c: char| c.is_ascii_digit());
            format!("{whole}{zone}")
        }
        None => at.to_string(),
    }
}

/// The channels of the design environment.
pub fn channels(args: &ListArgs) -> Result<ExitCode> {
    let channels: Vec<ChannelSummary> = Control::connect(&args.control)?.get("/api/channels")?;
    args.output.print(&channels, |c| {
        format!(
            "{}  revision {}  changed by {} at {}",
            c.name,
            c.revision,
            c.updated_by,
            to_second(&c.updated_at)
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub struct TablesArgs {
    /// The tables of this group's own data source (the default one otherwise)
    #[arg(long)]
    group: Option<String>,
    #[command(flatten)]
    list: ListArgs,
}

/// The imported profile and dimension tables, with their columns.
pub fn tables(args: &TablesArgs) -> Result<ExitCode> {
    let path = match &args.group {
        Some(group) => format!("/api/tables?group={group}"),
        None => "/api/tables".to_string(),
    };
    let tables: Vec<TableView> = Control::connect(&args.list.control)?.get(&path)?;
    args.list.output.print(&tables, |t| {
        let columns: Vec<String> = t
            .columns
            .iter()
            .map(|c| format!("{} {}", c.name, c.ty))
            .collect();
        format!("{}: {}", t.name, columns.join(", "))
    })?;
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub struct ChannelArgs {
    /// The channel
    #[arg(long)]
    channel: String,
    #[command(flatten)]
    list: ListArgs,
}

/// A channel's versions: who, when, where active, deployments, results, reviews.
pub fn deployments(args: &ChannelArgs) -> Result<ExitCode> {
    let mut control = Control::connect(&args.list.control)?;
    let versions: Vec<VersionView> =
        control.get(&format!("/api/channels/{}/versions", args.channel))?;
    args.list.output.show(&versions, |versions| {
        if versions.is_empty() {
            println!(
                "{} has no versions yet (kairos deploy snapshots one)",
                args.channel
            );
        }
        for v in versions {
            print_version(v);
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

fn print_version(v: &VersionView) {
    println!(
        "version {}  {}  by {}  hash {}{}",
        v.number,
        to_second(&v.created_at),
        v.author,
        v.hash,
        if v.active_in.is_empty() {
            String::new()
        } else {
            format!("  ACTIVE on {}", v.active_in.join(", "))
        }
    );
    if !v.note.is_empty() {
        println!("  note: {}", v.note);
    }
    for d in &v.deployments {
        println!(
            "  {} to {} by {} at {}{}",
            d.action,
            d.group,
            d.by,
            to_second(&d.at),
            d.reason
                .as_deref()
                .map_or_else(String::new, |r| format!(" ({r})"))
        );
    }
    for r in &v.results {
        println!(
            "  {} on {}: {} ({})",
            r.kind,
            r.group,
            if r.passed { "passed" } else { "FAILED" },
            r.summary["text"].as_str().unwrap_or_default()
        );
    }
    for r in &v.reviews {
        println!("  {} by {}: {}", r.decision, r.reviewer, r.comment);
    }
}

/// Server groups, their instances (one not heard from for 30 s marked down), and the names
/// touchpoints called that their channels lack.
pub fn groups(args: &ListArgs) -> Result<ExitCode> {
    let mut control = Control::connect(&args.control)?;
    let groups: Vec<GroupView> = control.get("/api/groups")?;
    args.output.show(&groups, |groups| {
        for g in groups {
            print_group(g);
        }
    })?;
    if args.output.json() {
        return Ok(ExitCode::SUCCESS);
    }
    let unknown: Vec<UnknownNameView> = control.get("/api/unknown-names")?;
    if !unknown.is_empty() {
        println!("names touchpoints called that their channel does not define:");
        for u in &unknown {
            println!(
                "  {} {} in {}: {} call(s), last at {}",
                u.kind.replace('_', " "),
                u.name,
                u.channel,
                u.calls,
                to_second(&u.last_at)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_group(g: &GroupView) {
    let active: Vec<String> = g
        .active
        .iter()
        .map(|a| format!("{} v{}", a.channel, a.version))
        .collect();
    println!(
        "{}{}: {}",
        g.name,
        if g.production { " (production)" } else { "" },
        if active.is_empty() {
            "nothing active".to_string()
        } else {
            active.join(", ")
        }
    );
    for i in &g.instances {
        let running: Vec<String> = i
            .running
            .iter()
            .map(|(c, v)| format!("{c} v{}", v.version))
            .collect();
        println!(
            "  instance {} at {}: runs {}; last seen {}s ago{}",
            i.instance,
            i.address,
            if running.is_empty() {
                "nothing".to_string()
            } else {
                running.join(", ")
            },
            i.seconds_since_seen,
            if i.is_live() { "" } else { " (DOWN?)" }
        );
    }
    if !g.instances.is_empty() {
        let t = &g.totals;
        println!(
            "  {} live instance(s): {:.1} requests/s, {} requests, {} live sessions",
            t.live_instances,
            t.requests_per_second,
            t.requests_total,
            t.sessions_live
                .map_or_else(|| "unknown".to_string(), |n| n.to_string())
        );
    }
}

#[cfg(test)]
mod tests {
    use super::to_second;

    #[test]
    fn times_are_shown_to_the_second() {
        assert_eq!(
            to_second("2026-12-08T00:00:26.072458882Z"),
            "2026-12-08T00:00:26Z"
        );
        assert_eq!(
            to_second("2026-12-08T00:00:26.5+01:00"),
            "2026-12-08T00:00:26+01:00"
        );
        assert_eq!(to_second("2026-12-08T00:00:26Z"), "2026-12-08T00:00:26Z");
    }
}
