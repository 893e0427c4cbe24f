//! The command line: global options of CONTRACT §1, one subcommand per
//! operation, logging set-up, and the mapping of outcomes to exit codes
//! (0 success, 1 runtime error with a one-line message, 2 usage error).
//!
//! Thin by design: each command turns its options into the arguments of
//! one library function, calls it, and prints what it returns.
//!
//! Logs go to stderr through `tracing`; the filter comes from
//! `CALL_MONITOR_LOG` (same syntax as `RUST_LOG`) and defaults to `warn`.

mod args;
pub mod paths;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;

use crate::capture::install::{self, InstallError, Installed};
use crate::insight::{self, InsightError};
use crate::run::{self, Control, DaemonConfig, RunError, Sources};
use crate::see::{self, ReportError, ServeConfig, ServeError};
use crate::store::{self, InitError, StatusError};
pub use args::{Cli, Command};
use args::{
    DaemonArgs, InstallHooksArgs, PatternsArgs, ProposeArgs, SequencesArgs, ServeArgs, StatusArgs,
};

/// A failure: its Display is the one line printed before the exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Init(#[from] InitError),
    #[error(transparent)]
    Status(#[from] StatusError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Insight(#[from] InsightError),
    #[error(transparent)]
    InstallHooks(#[from] InstallError),
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error("cannot install the signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("cannot encode the report as JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A command run without an option it needs: a usage error (exit 2).
    #[error("{0}")]
    MissingOption(String),
}

impl CliError {
    fn exit_code(&self) -> u8 {
        match self {
            CliError::MissingOption(_) | CliError::Serve(ServeError::Listen(_)) => 2,
            _ => 1,
        }
    }
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
    if !matches!(
        cli.command,
        Command::Hook | Command::Daemon(_) | Command::Serve(_)
    ) {
        end_quietly_on_closed_stdout();
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line, always: messages may embed paths or SQLite text.
            let line = err.to_string().replace(['\n', '\r'], " ");
            eprintln!("call_monitor: error: {line}");
            ExitCode::from(err.exit_code())
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
    let default = if matches!(command, Command::Daemon(_) | Command::Serve(_)) {
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
    let db = paths::db_path(cli.db.as_deref());
    let spool = paths::spool_dir(cli.spool.as_deref());
    let sources = Sources {
        rules: cli.rules.clone(),
        registry: cli.registry.clone(),
        spool: spool.clone(),
    };
    let registry = cli.registry.as_deref();
    match cli.command {
        Command::Hook => crate::capture::run(&spool),
        Command::Init(args) => {
            let done = store::init(&db, args.rebuild_rollups)?;
            println!(
                "operations.db ready at {} (schema {}, {} migration(s) applied now)",
                done.path, done.schema_version, done.applied
            );
            if done.rollups_rebuilt {
                println!("rollups rebuilt from the event tables");
            }
        }
        Command::Status(args) => status(&db, &args)?,
        Command::Replay(args) => println!("{}", run::replay(&db, &sources, &args.paths)?),
        Command::ImportTranscripts(args) => {
            let paths = if args.paths.is_empty() {
                vec![paths::claude_projects()?]
            } else {
                args.paths.clone()
            };
            let imported =
                run::import_transcripts(&db, &sources, &paths, args.since, args.dry_run)?;
            println!("{imported}");
        }
        Command::Daemon(args) => daemon(db, sources, args)?,
        Command::Snapshot => {
            let registry = required_registry(registry, "snapshot")?;
            println!("{}", insight::snapshot(&db, registry)?);
        }
        Command::Sequences(args) => sequences(&db, registry, &args)?,
        Command::Patterns(args) => patterns(&db, &args)?,
        Command::Propose(args) => propose(&db, registry, &args)?,
        Command::InstallHooks(args) => install_hooks(&args, cli.spool.as_deref())?,
        Command::Serve(args) => serve(db, registry, spool, args)?,
        Command::Report(args) => {
            println!(
                "{}",
                see::write_report(&db, registry, Some(&spool), &args.html)?
            )
        }
    }
    Ok(())
}

fn status(db: &Path, args: &StatusArgs) -> Result<(), CliError> {
    let report = store::status(db, args.top)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render_text());
    }
    Ok(())
}

/// Signals are forwarded to the daemon's control before it starts, so
/// SIGTERM is a clean stop from "daemon started" on.
fn daemon(db: PathBuf, sources: Sources, args: DaemonArgs) -> Result<(), CliError> {
    let control = Control::new();
    let signals = run::forward_signals(&control).map_err(CliError::Signals)?;
    let config = DaemonConfig {
        spool: sources.spool.clone(),
        rescan: args.rescan,
        quiet: args.quiet_period,
        insight: insight::Pass {
            registry: sources.registry.clone(),
            sequences: args.sequences.into(),
            thresholds: args.thresholds.into(),
            clustering: insight::Clustering::default(),
        },
        sources,
        db,
        interval: args.interval,
        transcripts: args.transcripts,
    };
    let result = run::daemon(config, &control);
    // Ends the signal thread when the daemon stopped by itself (an error).
    control.shutdown("the daemon ended");
    signals.join();
    result?;
    Ok(())
}

/// The dashboard until SIGTERM/SIGINT; its address is printed once bound.
fn serve(
    db: PathBuf,
    registry: Option<&Path>,
    spool: PathBuf,
    args: ServeArgs,
) -> Result<(), CliError> {
    let control = Control::new();
    let signals = run::forward_signals(&control).map_err(CliError::Signals)?;
    let config = ServeConfig {
        db,
        registry: registry.map(Path::to_path_buf),
        spool: Some(spool),
        listen: args.listen,
        token: args.token,
        allowed_hosts: args.allow_hosts,
        sequences_every: args.sequences_every,
    };
    let with_token = config.token.is_some();
    let result = run::serve::run(config, &control, |addr| {
        let hint = if with_token {
            " (add ?token=YOUR_TOKEN once)"
        } else {
            ""
        };
        println!("dashboard at http://{addr}/{hint}");
    });
    control.shutdown("the dashboard ended");
    signals.join();
    result?;
    Ok(())
}

fn sequences(db: &Path, registry: Option<&Path>, args: &SequencesArgs) -> Result<(), CliError> {
    let propose_to = if args.propose {
        Some(required_registry(registry, "sequences --propose")?)
    } else {
        None
    };
    let outcome = insight::sequences(db, args.params.into(), propose_to)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome.detection)?);
    } else if args.report || !args.propose {
        print!("{}", insight::sequences::render_text(&outcome.detection));
    }
    if let Some(submitted) = outcome.submitted {
        // stdout stays pure JSON with --json.
        if args.json {
            eprintln!("new_pipeline {submitted}");
        } else {
            println!("new_pipeline {submitted}");
        }
    }
    Ok(())
}

fn patterns(db: &Path, args: &PatternsArgs) -> Result<(), CliError> {
    let report = insight::patterns(db, args.top)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!(
            "{}",
            insight::patterns::render_text(&report.refreshed, &report.top)
        );
    }
    Ok(())
}

fn propose(db: &Path, registry: Option<&Path>, args: &ProposeArgs) -> Result<(), CliError> {
    let registry = if args.dry_run {
        None
    } else {
        Some(required_registry(registry, "propose")?)
    };
    let proposed = insight::propose(db, &args.thresholds.into(), registry)?;
    match proposed.submitted {
        None => {
            for p in &proposed.proposals {
                println!("{}\t{}\t{}", p.kind, p.dedupe_key, p.title);
            }
            println!(
                "{} proposal(s) (dry run: nothing written)",
                proposed.proposals.len()
            );
        }
        Some(submitted) => println!("{submitted}"),
    }
    Ok(())
}

/// The `--registry` a command cannot do without.
fn required_registry<'a>(registry: Option<&'a Path>, command: &str) -> Result<&'a Path, CliError> {
    registry.ok_or_else(|| {
        CliError::MissingOption(format!(
            "`{command}` needs the registry: pass --registry PATH or set CALL_MONITOR_REGISTRY"
        ))
    })
}

fn install_hooks(args: &InstallHooksArgs, spool: Option<&Path>) -> Result<(), CliError> {
    let command = install::hook_command(spool)?;
    if args.print {
        let snippet = install::snippet(&command);
        println!("{}", serde_json::to_string_pretty(&snippet)?);
        return Ok(());
    }
    let settings = match &args.settings {
        Some(path) => path.clone(),
        None => install::user_settings()?,
    };
    match install::install(&settings, &command)? {
        Installed::AlreadyPresent => println!("hooks already installed in {}", settings.display()),
        Installed::Changed {
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
    warn_if_registered_elsewhere(&settings);
    Ok(())
}

/// Warns when another settings file Claude Code reads here (the project's,
/// or the user's) also runs `call_monitor hook`: every event would be
/// spooled twice.
fn warn_if_registered_elsewhere(installed: &Path) {
    let mut others = vec![
        PathBuf::from(".claude/settings.json"),
        PathBuf::from(".claude/settings.local.json"),
    ];
    others.extend(install::user_settings().ok());
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    for other in others {
        if !same(&other, installed) && install::runs_our_hook(&other) {
            eprintln!(
                "warning: {} also runs `call_monitor hook`; Claude Code runs every matching hook, so each \
                 event would be spooled twice. Keep one of the two registrations.",
                other.display()
            );
        }
    }
}
