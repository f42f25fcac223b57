//! `kairos`: one binary for every Kairos process and command.

mod access_cmd;
mod allocator;
mod control_cmd;
mod data_cmd;
mod demo;
mod exit;
mod impact_cmd;
mod list_cmd;
mod loadtest_cmd;
mod logging;
mod runtime_cmd;
mod segments_cmd;
mod tables;
mod test_cmd;
mod tls_args;
mod up_cmd;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kairos_api::control::Decision;

#[global_allocator]
static ALLOCATOR: allocator::MiMalloc = allocator::MiMalloc;

#[derive(Parser)]
#[command(
    name = "kairos",
    version,
    about = "Kairos: real-time interaction management"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run Kairos on this machine with the embedded store and the demo channel
    Up(up_cmd::Args),
    /// Run the control plane alone (design and deployment API)
    Control(up_cmd::ControlArgs),
    /// Log in to the control plane; the token is saved for the other commands
    Login(control_cmd::LoginArgs),
    /// Import channel files into the design environment as a new revision
    Apply(control_cmd::ApplyArgs),
    /// Print a channel (the design, or a version) as a channel file
    Export(control_cmd::ExportArgs),
    /// Deploy a channel to a server group (production groups check their gates)
    Deploy(control_cmd::DeployArgs),
    /// The channels of the design environment
    Channels(list_cmd::ListArgs),
    /// The imported profile and dimension tables, with their columns
    Tables(list_cmd::TablesArgs),
    /// A channel's versions: who, when, note, hash, where active, test results, reviews
    Deployments(list_cmd::ChannelArgs),
    /// Server groups: what each runs, and each runtime instance's status
    Groups(list_cmd::ListArgs),
    /// Create or change a server group: production, gates, its own data source (administrators)
    Group(control_cmd::GroupArgs),
    /// The audit log: every change, deployment, review and rollback, newest first
    Audit(control_cmd::AuditArgs),
    /// What changed between two versions of a channel (or a version and the design)
    Diff(control_cmd::DiffArgs),
    /// Approve a version (reviewers)
    Approve(control_cmd::ReviewArgs),
    /// Reject a version (reviewers)
    Reject(control_cmd::ReviewArgs),
    /// Re-activate the previous (or a named) version on a server group
    Rollback(control_cmd::RollbackArgs),
    /// Users of the control plane (administrators)
    #[command(subcommand)]
    User(access_cmd::UserCommand),
    /// Touchpoint, runtime and login tokens: issue, list, revoke (administrators)
    #[command(subcommand)]
    Token(access_cmd::TokenCommand),
    /// The saved login: who it is and their roles
    Whoami(control_cmd::ControlArgs),
    /// End the saved login's token and forget it
    Logout(control_cmd::ControlArgs),
    /// Check channel files offline and print every error as file:line:column: message
    Validate(validate::Args),
    /// Serve the runtime API: offline mode serves channel files directly
    Runtime(Box<runtime_cmd::Args>),
    /// Profile and dimension tables
    #[command(subcommand)]
    Data(data_cmd::DataCommand),
    /// Drive realistic sessions against a group's runtime; thresholds make it pass or fail
    Loadtest(loadtest_cmd::Args),
    /// A flowchart test run: segment sizes and flowchart path counts over a profile table
    Segments(segments_cmd::Args),
    /// How a candidate channel version changes the offers and segments of a profile table's visitors
    Impact(impact_cmd::Args),
    /// Run scenario files (given this visitor and these calls, these offers come back)
    Test(test_cmd::Args),
    /// Demo data for the example channel
    #[command(subcommand)]
    Demo(DemoCommand),
    /// Print a completion script for a shell: kairos completion bash > /etc/bash_completion.d/kairos
    Completion {
        /// The shell: bash, zsh or fish
        #[arg(value_parser = ["bash", "zsh", "fish"])]
        shell: String,
    },
}

#[derive(Subcommand)]
enum DemoCommand {
    /// Write the seeded demo profile tables (customers.csv, accounts.csv) into a folder
    Profiles {
        /// Folder to write into
        #[arg(long, default_value = "examples/bank")]
        out: PathBuf,
        /// Seed of the generator: the same seed writes the same files
        #[arg(long, default_value_t = demo::DEFAULT_SEED)]
        seed: u64,
        /// How many customers
        #[arg(long, default_value_t = demo::DEFAULT_CUSTOMERS)]
        customers: usize,
    },
    /// Write the synthetic benchmark channel (synthetic.yaml) and its customers.csv
    Synthetic {
        /// Folder to write into
        #[arg(long)]
        out: PathBuf,
        /// How many customers
        #[arg(long, default_value_t = 10_000)]
        customers: u64,
    },
}

fn main() -> ExitCode {
    // What Kairos writes (databases, caches, saved logins) its user alone may read: folders
    // 0700, files 0600, whatever umask the shell had.
    #[cfg(unix)]
    // SAFETY: umask only sets the process's file-creation mask; nothing else runs yet.
    unsafe {
        libc::umask(0o077);
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Up(args) => up_cmd::run(args),
        Command::Control(args) => up_cmd::run_control(args),
        Command::Login(args) => control_cmd::login(&args),
        Command::Apply(args) => control_cmd::apply(&args),
        Command::Export(args) => control_cmd::export(&args),
        Command::Deploy(args) => control_cmd::deploy(&args),
        Command::Channels(args) => list_cmd::channels(&args),
        Command::Tables(args) => list_cmd::tables(&args),
        Command::Deployments(args) => list_cmd::deployments(&args),
        Command::Diff(args) => control_cmd::diff(&args),
        Command::Groups(args) => list_cmd::groups(&args),
        Command::Group(args) => control_cmd::group(&args),
        Command::Audit(args) => control_cmd::audit(&args),
        Command::Approve(args) => control_cmd::review(&args, Decision::Approve),
        Command::Reject(args) => control_cmd::review(&args, Decision::Reject),
        Command::Rollback(args) => control_cmd::rollback(&args),
        Command::User(command) => access_cmd::user(&command),
        Command::Token(command) => access_cmd::token(&command),
        Command::Whoami(args) => access_cmd::whoami(&args),
        Command::Logout(args) => access_cmd::logout(&args),
        Command::Validate(args) => validate::run(&args),
        Command::Test(args) => test_cmd::run(&args),
        Command::Impact(args) => impact_cmd::run(&args),
        Command::Segments(args) => segments_cmd::run(&args),
        Command::Loadtest(args) => loadtest_cmd::run(&args),
        Command::Runtime(args) => runtime_cmd::run(*args),
        Command::Data(command) => data_cmd::run(command),
        Command::Demo(DemoCommand::Profiles {
            out,
            seed,
            customers,
        }) => demo::write_profiles(&out, seed, customers),
        Command::Demo(DemoCommand::Synthetic { out, customers }) => {
            demo::write_synthetic(&out, customers)
        }
        Command::Completion { shell } => {
            let shell = match shell.as_str() {
                "zsh" => clap_complete::Shell::Zsh,
                "fish" => clap_complete::Shell::Fish,
                _ => clap_complete::Shell::Bash,
            };
            // Written whole, then printed: a closed pipe is an error, not a panic.
            let mut script = Vec::new();
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "kairos",
                &mut script,
            );
            std::io::Write::write_all(&mut std::io::stdout(), &script)
                .map(|()| ExitCode::SUCCESS)
                .map_err(anyhow::Error::from)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            exit::code_of(&e)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every command and every flag or argument of every command says what it is for.
    #[test]
    fn every_command_and_flag_has_help() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") || arg.is_hide_set() {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in command.get_subcommands() {
                let path = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() && sub.get_name() != "help" {
                    missing.push(path.clone());
                }
                walk(sub, &path, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "kairos", &mut missing);
        assert!(missing.is_empty(), "without help:\n{}", missing.join("\n"));
    }
}
