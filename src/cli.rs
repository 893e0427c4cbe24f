//! The command line: global options of CONTRACT §1, one subcommand per
//! operation, logging set-up, and the mapping of outcomes to exit codes
//! (0 success, 1 runtime error with a one-line message, 2 usage error).
//!
//! Logs go to stderr through `tracing`; the filter comes from
//! `CALL_MONITOR_LOG` (same syntax as `RUST_LOG`) and defaults to `warn`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::daemon::{self, DaemonConfig};
use crate::db::{Database, Missing};
use crate::ingest::recognise::{Recogniser, Sources};
use crate::ingest::Ingestor;
use crate::{paths, replay, spool, status};

#[derive(Debug, Parser)]
#[command(
    name = "call_monitor",
    version,
    about = "Telemetry for AI coding agents working against a function registry"
)]
pub struct Cli {
    /// operations.db path [default: operations.db next to the executable]
    #[arg(long, global = true, env = "CALL_MONITOR_DB", value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Spool directory [default: spool/ next to the executable]
    #[arg(long, global = true, env = "CALL_MONITOR_SPOOL", value_name = "DIR")]
    pub spool: Option<PathBuf>,
    /// fn_registry registry.db
    #[arg(
        long,
        global = true,
        env = "CALL_MONITOR_REGISTRY",
        value_name = "PATH"
    )]
    pub registry: Option<PathBuf>,
    /// Rules file extending or overriding the built-in rules
    #[arg(long, global = true, env = "CALL_MONITOR_RULES", value_name = "PATH")]
    pub rules: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or open the database and apply migrations (idempotent)
    Init,
    /// Report what has been recorded
    Status(StatusArgs),
    /// Read one Claude Code hook payload on stdin and append it to the spool
    /// (always exits 0)
    Hook,
    /// Ingest spool files (or directories of them) once; idempotent
    Replay(ReplayArgs),
    /// Tail the spool continuously into the database until SIGTERM/SIGINT
    Daemon(DaemonArgs),
    /// Add `call_monitor hook` to a Claude Code settings file (idempotent,
    /// keeps a backup and your own hooks)
    InstallHooks(InstallHooksArgs),
}

#[derive(Debug, Args)]
pub struct InstallHooksArgs {
    /// Settings file to change [default: ~/.claude/settings.json]
    #[arg(long, value_name = "PATH")]
    pub settings: Option<PathBuf>,
    /// Print the hooks snippet instead of changing a file
    #[arg(long)]
    pub print: bool,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Spool files or directories holding them
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Longest wait between spool scans when no file event arrives
    #[arg(long, default_value = "1s", value_parser = parse_duration, value_name = "DUR")]
    pub rescan: Duration,
    /// How long a consumed spool file must be unmodified before deletion
    #[arg(long, default_value = "60s", value_parser = parse_duration, value_name = "DUR")]
    pub quiet_period: Duration,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::timefmt::parse_duration(s)
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// How many functions and violation rules to list
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub top: usize,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
}

/// A runtime failure: its Display is the one line printed before exit 1.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Open(#[from] crate::db::OpenError),
    #[error(transparent)]
    Status(#[from] status::StatusError),
    #[error("cannot encode the report as JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Replay(#[from] crate::replay::ReplayError),
    #[error(transparent)]
    Daemon(#[from] crate::daemon::DaemonError),
    #[error("cannot use the spool: {0}")]
    Spool(#[from] crate::spool::SpoolError),
    #[error(transparent)]
    Classification(#[from] crate::ingest::recognise::LoadError),
    #[error(transparent)]
    InstallHooks(#[from] crate::install_hooks::InstallError),
    #[error("{0}")]
    Usage(String),
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // clap prints help/version (exit 0) or the usage error (exit 2).
        Err(err) => err.exit(),
    };
    // The agent waits for the hook: it skips logging set-up (and, in
    // `run`, the database); it cannot fail.
    if !matches!(cli.command, Command::Hook) {
        init_logging(&cli.command);
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line, always: messages may embed paths or SQLite text.
            let line = err.to_string().replace(['\n', '\r'], " ");
            eprintln!("call_monitor: error: {line}");
            ExitCode::from(1)
        }
    }
}

/// The daemon logs its lifecycle at `info`; one-shot commands only warn.
fn init_logging(command: &Command) {
    let default = if matches!(command, Command::Daemon(_)) {
        "info"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CALL_MONITOR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Runs one parsed command.
pub fn run(cli: Cli) -> Result<(), CliError> {
    let db_path = paths::db_path(cli.db.as_deref());
    let spool_dir = paths::spool_dir(cli.spool.as_deref());
    let sources = Sources {
        rules: cli.rules.clone(),
        registry: cli.registry.clone(),
        spool: spool_dir.clone(),
    };
    let ingestor = |db: Database| -> Result<Ingestor, CliError> {
        let recogniser = Recogniser::load(&sources, db.conn())?;
        Ok(Ingestor::new(
            db.into_conn(),
            recogniser,
            spool_dir.join(spool::QUARANTINE_DIR),
        ))
    };
    match cli.command {
        Command::Hook => crate::hook::run(&spool_dir),
        Command::Replay(args) => {
            let files = replay::collect_files(&args.paths)?;
            let mut ingestor = ingestor(Database::open(&db_path, Missing::Create)?)?;
            let stats = replay::run(&mut ingestor, &files)?;
            println!("{stats}");
        }
        Command::Daemon(args) => {
            spool::ensure_dir(&spool_dir)?;
            let ingestor = ingestor(Database::open(&db_path, Missing::Create)?)?;
            let config = DaemonConfig {
                spool: spool_dir.clone(),
                rescan: args.rescan,
                quiet: args.quiet_period,
                sources: sources.clone(),
            };
            daemon::run(ingestor, config)?;
        }
        Command::InstallHooks(args) => install_hooks(&args, cli.spool.as_deref())?,
        Command::Init => {
            let db = Database::open(&db_path, Missing::Create)?;
            let m = db.migration();
            println!(
                "operations.db ready at {} (schema {}, {} migration(s) applied now)",
                db.path().display(),
                m.version,
                m.applied.len()
            );
        }
        Command::Status(args) => {
            let mut db = Database::open(&db_path, Missing::Refuse)?;
            let shown = db.path().display().to_string();
            let version = db.migration().version;
            let report = status::collect(db.conn_mut(), shown, version, args.top)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.render_text());
            }
        }
    }
    Ok(())
}

/// The hook command for this binary: its absolute path, and `--spool` when
/// one was given (else the hook uses its default next to the binary). The
/// command is written unquoted, so neither path may hold spaces or quotes.
fn hook_command(spool: Option<&std::path::Path>) -> Result<String, CliError> {
    let exe = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .map_err(|e| CliError::Usage(format!("cannot locate this binary: {e}")))?;
    let mut paths = vec![exe];
    if let Some(spool) = spool {
        let spool = std::path::absolute(spool)
            .map_err(|e| CliError::Usage(format!("cannot resolve {}: {e}", spool.display())))?;
        paths.push(spool);
    }
    if let Some(awkward) = paths.iter().find(|p| {
        p.to_string_lossy()
            .contains(|c: char| c.is_whitespace() || c == '\'' || c == '"')
    }) {
        return Err(CliError::Usage(format!(
            "install-hooks writes paths unquoted and {} holds spaces or quotes; use --print and edit the snippet",
            awkward.display()
        )));
    }
    let mut command = format!("{} hook", paths[0].display());
    if let Some(spool) = paths.get(1) {
        command.push_str(&format!(" --spool {}", spool.display()));
    }
    Ok(command)
}

fn install_hooks(args: &InstallHooksArgs, spool: Option<&std::path::Path>) -> Result<(), CliError> {
    let command = hook_command(spool)?;
    if args.print {
        let snippet = crate::install_hooks::snippet(&command);
        println!("{}", serde_json::to_string_pretty(&snippet)?);
        return Ok(());
    }
    let settings = match &args.settings {
        Some(path) => path.clone(),
        None => std::env::var_os("HOME")
            .map(|home| PathBuf::from(home).join(".claude/settings.json"))
            .ok_or_else(|| CliError::Usage("HOME is not set; pass --settings PATH".into()))?,
    };
    match crate::install_hooks::install(&settings, &command)? {
        crate::install_hooks::Installed::AlreadyPresent => {
            println!("hooks already installed in {}", settings.display())
        }
        crate::install_hooks::Installed::Changed {
            added,
            updated,
            backup,
        } => {
            let backup = backup
                .map(|b| format!("; previous file saved as {}", b.display()))
                .unwrap_or_default();
            println!(
                "hooks installed in {}: {added} added, {updated} updated ({command}){backup}",
                settings.display()
            );
        }
    }
    Ok(())
}
