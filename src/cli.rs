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
    Init(InitArgs),
    /// Report what has been recorded
    Status(StatusArgs),
    /// Read one Claude Code hook payload on stdin and append it to the spool
    /// (always exits 0)
    Hook,
    /// Ingest spool files (or directories of them) once; idempotent
    Replay(ReplayArgs),
    /// Tail the spool continuously into the database until SIGTERM/SIGINT
    Daemon(DaemonArgs),
    /// Record the registry's function versions (source `index`); idempotent
    Snapshot,
    /// Mine repeated call sequences; `--propose` writes `new_pipeline`
    /// proposals into the registry
    Sequences(SequencesArgs),
    /// Cluster recorded heredocs into `patterns` and list the most widespread
    Patterns(PatternsArgs),
    /// Write proposals from telemetry (patterns, error-prone, untested and
    /// unused functions) into the registry
    Propose(ProposeArgs),
    /// Add `call_monitor hook` to a Claude Code settings file (idempotent,
    /// keeps a backup and your own hooks)
    InstallHooks(InstallHooksArgs),
}

#[derive(Debug, Clone, Copy, Args)]
pub struct SequenceParamsArgs {
    /// Least number of sessions a sequence must occur in
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub min_support: u32,
    /// Longest pause between two calls of one sequence
    #[arg(long, default_value = "10m", value_parser = parse_duration, value_name = "DUR")]
    pub max_gap: Duration,
}

impl From<SequenceParamsArgs> for crate::sequences::Params {
    fn from(a: SequenceParamsArgs) -> Self {
        Self {
            min_support: a.min_support,
            max_gap: a.max_gap,
        }
    }
}

#[derive(Debug, Args)]
pub struct SequencesArgs {
    /// Mine the sequences (always done; accepted for the contract's spelling)
    #[arg(long)]
    pub detect: bool,
    /// Write `new_pipeline` proposals into the registry (needs --registry)
    #[arg(long)]
    pub propose: bool,
    /// Print the sequences as a table (the default without --propose)
    #[arg(long)]
    pub report: bool,
    /// Print the sequences as JSON (CONTRACT §6)
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub params: SequenceParamsArgs,
}

#[derive(Debug, Args)]
pub struct PatternsArgs {
    /// How many patterns to list
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub top: usize,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, Args)]
pub struct ThresholdArgs {
    /// `new_function`: a heredoc pattern seen in at least N sessions
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub pattern_sessions: u32,
    /// `error_prone`: an error rate of at least this (0-1)
    #[arg(long, default_value_t = 0.25, value_name = "RATE")]
    pub error_rate: f64,
    /// `error_prone`: only functions with at least N calls
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub error_min_calls: u32,
    /// `untested`: functions called at least N times and never tested
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub untested_min_calls: u32,
    /// `unused`: functions used before but not for this long
    #[arg(long, default_value = "90d", value_parser = parse_duration, value_name = "DUR")]
    pub unused_after: Duration,
}

impl From<ThresholdArgs> for crate::insight::Thresholds {
    fn from(a: ThresholdArgs) -> Self {
        Self {
            pattern_sessions: a.pattern_sessions,
            error_rate: a.error_rate,
            error_min_calls: a.error_min_calls,
            untested_min_calls: a.untested_min_calls,
            unused_after: a.unused_after,
        }
    }
}

#[derive(Debug, Args)]
pub struct ProposeArgs {
    /// Print the proposals instead of writing them
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub thresholds: ThresholdArgs,
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
    /// How often to run snapshot, sequences --detect --propose and the
    /// telemetry proposals
    #[arg(long, default_value = "5m", value_parser = parse_duration, value_name = "DUR")]
    pub interval: Duration,
    #[command(flatten)]
    pub sequences: SequenceParamsArgs,
    #[command(flatten)]
    pub thresholds: ThresholdArgs,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::timefmt::parse_duration(s)
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Recompute the function_stats rollups from the event tables (after
    /// editing calls or events by hand)
    #[arg(long)]
    pub rebuild_rollups: bool,
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
    #[error(transparent)]
    Snapshot(#[from] crate::snapshot::SnapshotError),
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    #[error("cannot read operations.db: {0}")]
    Query(#[from] rusqlite::Error),
    #[error("{0}")]
    Usage(String),
    /// A command run without an option it needs: a usage error (exit 2).
    #[error("{0}")]
    MissingOption(String),
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
    if !matches!(cli.command, Command::Hook | Command::Daemon(_)) {
        end_quietly_on_closed_stdout();
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line, always: messages may embed paths or SQLite text.
            let line = err.to_string().replace(['\n', '\r'], " ");
            eprintln!("call_monitor: error: {line}");
            let usage = matches!(err, CliError::MissingOption(_));
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

/// Rust ignores SIGPIPE, so printing a report into a closed pipe
/// (`call_monitor status --json | head -1`) would panic; a one-shot command
/// ends quietly instead, like any Unix filter. Not for `hook`, which must
/// exit 0 whatever happens, nor for `daemon`, whose stderr may go away
/// without it having to stop.
fn end_quietly_on_closed_stdout() {
    use nix::sys::signal::{signal, SigHandler, Signal};
    // SAFETY: called before any thread is started; the default disposition
    // runs no handler code.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
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
                db: db_path.clone(),
                interval: args.interval,
                insight: crate::insight::Pass {
                    registry: cli.registry.clone(),
                    sequences: args.sequences.into(),
                    thresholds: args.thresholds.into(),
                    clustering: crate::patterns::Clustering::default(),
                },
            };
            daemon::run(ingestor, config)?;
        }
        Command::InstallHooks(args) => install_hooks(&args, cli.spool.as_deref())?,
        Command::Snapshot => {
            let registry = required_registry(cli.registry.as_deref(), "snapshot")?;
            let mut db = Database::open(&db_path, Missing::Create)?;
            println!("{}", crate::snapshot::run(registry, db.conn_mut())?);
        }
        Command::Sequences(args) => {
            let registry = if args.propose {
                Some(required_registry(
                    cli.registry.as_deref(),
                    "sequences --propose",
                )?)
            } else {
                None
            };
            let db = Database::open(&db_path, Missing::Refuse)?;
            let detection = crate::sequences::detect(db.conn(), args.params.into())?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&detection)?);
            } else if args.report || !args.propose {
                print!("{}", crate::sequences::render_text(&detection));
            }
            if let Some(registry) = registry {
                let proposals = crate::insight::pipeline_proposals(&detection);
                let submitted = crate::proposals::Outbox::open(registry)?.submit(&proposals)?;
                // stdout stays pure JSON with --json.
                if args.json {
                    eprintln!("new_pipeline {submitted}");
                } else {
                    println!("new_pipeline {submitted}");
                }
            }
        }
        Command::Patterns(args) => {
            let mut db = Database::open(&db_path, Missing::Refuse)?;
            let refreshed =
                crate::patterns::refresh(db.conn_mut(), crate::patterns::Clustering::default())?;
            let top = crate::patterns::top(db.conn(), args.top)?;
            if args.json {
                let report = serde_json::json!({
                    "heredocs": refreshed.heredocs, "skeletons": refreshed.skeletons,
                    "patterns": refreshed.patterns, "top": top,
                });
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", crate::patterns::render_text(&refreshed, &top));
            }
        }
        Command::Propose(args) => {
            let registry = if args.dry_run {
                None
            } else {
                Some(required_registry(cli.registry.as_deref(), "propose")?)
            };
            let mut db = Database::open(&db_path, Missing::Refuse)?;
            crate::patterns::refresh(db.conn_mut(), crate::patterns::Clustering::default())?;
            let proposals =
                crate::insight::telemetry_proposals(db.conn(), &args.thresholds.into())?;
            match registry {
                None => {
                    for p in &proposals {
                        println!("{}\t{}\t{}", p.kind, p.dedupe_key, p.title);
                    }
                    println!("{} proposal(s) (dry run: nothing written)", proposals.len());
                }
                Some(registry) => {
                    let submitted = crate::proposals::Outbox::open(registry)?.submit(&proposals)?;
                    println!("{submitted}");
                }
            }
        }
        Command::Init(args) => {
            let db = Database::open(&db_path, Missing::Create)?;
            let m = db.migration();
            println!(
                "operations.db ready at {} (schema {}, {} migration(s) applied now)",
                db.path().display(),
                m.version,
                m.applied.len()
            );
            if args.rebuild_rollups {
                crate::rollups::rebuild(db.conn())?;
                println!("rollups rebuilt from the event tables");
            }
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

/// The `--registry` a command cannot do without.
fn required_registry<'a>(
    registry: Option<&'a std::path::Path>,
    command: &str,
) -> Result<&'a std::path::Path, CliError> {
    registry.ok_or_else(|| {
        CliError::MissingOption(format!(
            "`{command}` needs the registry: pass --registry PATH or set CALL_MONITOR_REGISTRY"
        ))
    })
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
