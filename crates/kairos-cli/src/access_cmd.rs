//! `kairos user ...`, `kairos token ...`, `kairos whoami`, `kairos logout`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use kairos_api::control::{
    DisabledRequest, IssuedKind, IssuedToken, Me, NewToken, NewUser, Role, TokenView, UserView,
};
use kairos_control::ControlPlane;
use serde::de::IgnoredAny;

use crate::control_cmd::{Control, ControlArgs, names, secret, token_file};
use crate::list_cmd::{Output, to_second};

#[derive(clap::Subcommand)]
pub enum UserCommand {
    /// Create or replace a user (password from KAIROS_NEW_PASSWORD or a prompt); a new
    /// password ends the user's tokens
    Add {
        /// The user's name, as they log in
        name: String,
        /// designer, administrator, data_administrator, reviewer, manager (repeatable)
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        #[command(flatten)]
        control: ControlArgs,
    },
    /// Every user, their roles and whether they are disabled
    List {
        #[command(flatten)]
        output: Output,
        #[command(flatten)]
        control: ControlArgs,
    },
    /// Disable a user: they cannot log in, and their tokens end now
    Disable {
        /// The user's name
        name: String,
        #[command(flatten)]
        control: ControlArgs,
    },
    /// Enable a disabled user again (they log in anew)
    Enable {
        /// The user's name
        name: String,
        #[command(flatten)]
        control: ControlArgs,
    },
    /// Delete a user and their tokens; the audit log keeps what they did
    Delete {
        /// The user's name
        name: String,
        #[command(flatten)]
        control: ControlArgs,
    },
    /// Set a user's password (from KAIROS_NEW_PASSWORD or a prompt) and enable them, working
    /// on the database directly: for an administrator who lost theirs. Stop the control plane
    /// first; the user's tokens end.
    ResetPassword {
        /// The user's name
        name: String,
        /// The folder of `kairos up`
        #[arg(long, default_value = "kairos-data")]
        data: PathBuf,
        /// The control plane's database, instead of the one in --data
        #[arg(long, value_name = "URL")]
        database: Option<String>,
    },
}

pub fn user(command: &UserCommand) -> Result<ExitCode> {
    match command {
        UserCommand::Add {
            name,
            roles,
            control,
        } => {
            let roles = roles
                .iter()
                .map(|r| {
                    Role::from_name(r).with_context(|| {
                        format!("'{r}' is not a role; roles are {}", names(&Role::ALL))
                    })
                })
                .collect::<Result<Vec<Role>>>()?;
            let password = secret("KAIROS_NEW_PASSWORD", &format!("password for {name}"))?;
            let new = NewUser {
                name: name.clone(),
                password,
                roles,
            };
            let saved: UserView =
                Control::connect(control)?.call("POST", "/api/users", Some(&new))?;
            println!("user {name} has roles {}", names(&saved.roles));
        }
        UserCommand::List { output, control } => {
            let users: Vec<UserView> = Control::connect(control)?.get("/api/users")?;
            output.print(&users, |u| {
                format!(
                    "{:<16} {}{}",
                    u.name,
                    names(&u.roles),
                    if u.disabled { "  (disabled)" } else { "" }
                )
            })?;
        }
        UserCommand::Disable { name, control } | UserCommand::Enable { name, control } => {
            let disabled = matches!(command, UserCommand::Disable { .. });
            let _: UserView = Control::connect(control)?.call(
                "PUT",
                &format!("/api/users/{name}/disabled"),
                Some(&DisabledRequest { disabled }),
            )?;
            if disabled {
                println!("user {name} is disabled; their tokens no longer work");
            } else {
                println!("user {name} is enabled; they log in again");
            }
        }
        UserCommand::ResetPassword {
            name,
            data,
            database,
        } => {
            let database = match database {
                Some(url) => url.clone(),
                None => {
                    let file = data.join("kairos.db");
                    if !file.exists() {
                        bail!(
                            "there is no {}: give --data DIR or --database URL",
                            file.display()
                        );
                    }
                    format!("sqlite://{}", file.display())
                }
            };
            let password = secret("KAIROS_NEW_PASSWORD", &format!("new password for {name}"))?;
            tokio::runtime::Runtime::new()?.block_on(async {
                let control = ControlPlane::open(&database, kairos_api::wall_clock)
                    .await
                    .with_context(|| format!("cannot open {database}"))?;
                control
                    .reset_password(name, password)
                    .await
                    .map_err(|p| anyhow::anyhow!("{}", p.detail))
            })?;
            println!("user {name} has a new password; their earlier logins no longer work");
        }
        UserCommand::Delete { name, control } => {
            let _: IgnoredAny = Control::connect(control)?.call(
                "DELETE",
                &format!("/api/users/{name}"),
                None::<&()>,
            )?;
            println!("user {name} is deleted");
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Subcommand)]
pub enum TokenCommand {
    /// Issue a token and print it once: for a touchpoint calling channels, or for a
    /// group's runtimes
    Issue {
        /// A touchpoint token for these channels
        #[arg(long, num_args = 1.., conflicts_with = "runtime", required_unless_present = "runtime")]
        touchpoint: Vec<String>,
        /// A runtime token for this server group
        #[arg(long)]
        runtime: Option<String>,
        /// It stops working after this long: 90d, 12h, 30m, 45s
        #[arg(long, value_parser = parse_expiry)]
        expires: Option<u64>,
        /// What the token is for, shown by `kairos token list`
        #[arg(long, default_value = "")]
        label: String,
        #[command(flatten)]
        control: ControlArgs,
    },
    /// Every token, without its secret
    List {
        #[command(flatten)]
        output: Output,
        #[command(flatten)]
        control: ControlArgs,
    },
    /// Revoke a token by the ID `kairos token list` shows; it fails at once everywhere
    Revoke {
        /// The token's ID, as `kairos token list` shows it
        id: String,
        #[command(flatten)]
        control: ControlArgs,
    },
}

/// `90d`, `12h`, `30m` or `45s` as seconds.
fn parse_expiry(text: &str) -> Result<u64, String> {
    let split = text.len().saturating_sub(1);
    let (number, unit) = text.split_at(split);
    let seconds = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        _ => {
            return Err(format!(
                "'{text}' is not a duration like 90d, 12h, 30m or 45s"
            ));
        }
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration like 90d, 12h, 30m or 45s"))?;
    n.checked_mul(seconds)
        .filter(|s| *s > 0)
        .ok_or_else(|| format!("'{text}': give a duration above zero"))
}

pub fn token(command: &TokenCommand) -> Result<ExitCode> {
    match command {
        TokenCommand::Issue {
            touchpoint,
            runtime,
            expires,
            label,
            control,
        } => {
            let (kind, subject) = match (touchpoint.is_empty(), runtime) {
                (false, _) => (IssuedKind::Touchpoint, touchpoint.join(",")),
                (true, Some(group)) => (IssuedKind::Runtime, group.clone()),
                (true, None) => bail!("give --touchpoint CHANNEL... or --runtime GROUP"),
            };
            let new = NewToken {
                kind,
                subject,
                label: label.clone(),
                expires_in_seconds: *expires,
            };
            let issued: IssuedToken =
                Control::connect(control)?.call("POST", "/api/tokens", Some(&new))?;
            println!("{}", issued.token);
            eprintln!(
                "a {} token for {} (id {}{}): shown once, keep it safe",
                issued.kind.name(),
                issued.subject,
                issued.id,
                issued
                    .expires_at
                    .map_or_else(String::new, |at| format!(", expires {}", to_second(&at)))
            );
        }
        TokenCommand::List { output, control } => {
            let tokens: Vec<TokenView> = Control::connect(control)?.get("/api/tokens")?;
            output.print(&tokens, |t| {
                format!(
                    "{:<12} {:<10} {:<20} {:<16} by {} {}{}",
                    t.id,
                    t.kind.name(),
                    t.subject,
                    if t.label.is_empty() { "-" } else { &t.label },
                    t.created_by,
                    to_second(&t.created_at),
                    t.expires_at
                        .as_deref()
                        .map_or_else(String::new, |at| format!(", expires {}", to_second(at)))
                )
            })?;
        }
        TokenCommand::Revoke { id, control } => {
            let _: IgnoredAny = Control::connect(control)?.call(
                "DELETE",
                &format!("/api/tokens/{id}"),
                None::<&()>,
            )?;
            println!("token {id} is revoked");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `kairos whoami`: the saved login's user and roles, as the control plane sees them.
pub fn whoami(control: &ControlArgs) -> Result<ExitCode> {
    let me: Me = Control::connect(control)?.get("/api/me")?;
    println!(
        "{} on {} ({}){}",
        me.user,
        control.control,
        if me.roles.is_empty() {
            "no role".to_string()
        } else {
            names(&me.roles)
        },
        control
            .context
            .as_deref()
            .map_or_else(String::new, |c| format!(", context {c}"))
    );
    Ok(ExitCode::SUCCESS)
}

/// `kairos logout`: the token ends on the control plane and is forgotten here.
pub fn logout(control: &ControlArgs) -> Result<ExitCode> {
    let ended: Result<IgnoredAny> =
        Control::connect(control).and_then(|mut c| c.call("POST", "/api/logout", None::<&()>));
    let file = token_file(control.context.as_deref());
    let forgot = match std::fs::remove_file(&file) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(e).with_context(|| format!("cannot remove {}", file.display())),
    };
    match (ended, forgot) {
        (Ok(_), _) => println!("logged out of {}", control.control),
        (Err(_), true) => println!("forgot the saved login (the control plane did not answer)"),
        (Err(e), false) => return Err(e),
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::parse_expiry;

    #[test]
    fn expiries_read_as_seconds() {
        assert_eq!(parse_expiry("90d"), Ok(90 * 86_400));
        assert_eq!(parse_expiry("12h"), Ok(43_200));
        assert_eq!(parse_expiry("45s"), Ok(45));
        assert!(parse_expiry("0d").is_err());
        assert!(parse_expiry("90").is_err());
        assert!(parse_expiry("d").is_err());
        assert!(parse_expiry("").is_err());
    }
}
