//! The command line's shape: global options of CONTRACT §1 and one
//! subcommand each, as clap parses them. Nothing here runs anything.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::contract::timefmt;
use crate::insight::{SequenceParams, Thresholds};

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
    /// Import Claude Code transcripts (default ~/.claude/projects): weeks of
    /// history on day one; idempotent, and a tool use a hook also captured is
    /// stored once
    ImportTranscripts(ImportTranscriptsArgs),
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
    /// Serve the dashboard: read-only, live views of the database in a
    /// browser (loopback by default)
    Serve(ServeArgs),
    /// Write the dashboard's views into one self-contained HTML file
    Report(ReportArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; anything but loopback needs --token
    #[arg(long, default_value = "127.0.0.1:7878", value_name = "ADDR")]
    pub listen: std::net::SocketAddr,
    /// Require this secret (16+ characters): `Authorization: Bearer …`, or
    /// `?token=…` once in a browser (it then becomes a cookie). Prefer the
    /// environment variable: arguments are visible to other users in `ps`
    #[arg(
        long,
        env = "CALL_MONITOR_TOKEN",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub token: Option<String>,
    /// A host name the dashboard may be reached by besides localhost and IP
    /// addresses (DNS-rebinding defence: other `Host` headers are refused);
    /// repeatable
    #[arg(long = "allow-host", value_name = "NAME")]
    pub allow_hosts: Vec<String>,
    /// How often sequences are mined again while the data changes
    #[arg(long, default_value = "5m", value_parser = parse_duration, value_name = "DUR")]
    pub sequences_every: Duration,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The HTML file to write (replaced whole)
    #[arg(long, value_name = "FILE")]
    pub html: PathBuf,
}

#[derive(Debug, Clone, Copy, Args)]
pub struct SequenceParamsArgs {
    /// Least number of sessions a sequence must occur in
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub min_support: u32,
    /// Longest pause between two calls of one sequence
    #[arg(long, default_value = "10m", value_parser = parse_duration, value_name = "DUR")]
    pub max_gap: Duration,
    /// Proposals: the false discovery rate a sequence's q-value must be within
    #[arg(long, default_value_t = 0.05, value_parser = parse_fraction, value_name = "Q")]
    pub fdr: f64,
    /// Proposals: the least support over the support chance would give
    #[arg(long, default_value_t = 2.0, value_parser = parse_positive, value_name = "X")]
    pub min_lift: f64,
    /// Proposals: ...or the least excess over chance (support − expected), as a share of all sessions
    #[arg(long, default_value_t = 0.05, value_parser = parse_fraction, value_name = "SHARE")]
    pub min_excess: f64,
}

impl From<SequenceParamsArgs> for SequenceParams {
    fn from(a: SequenceParamsArgs) -> Self {
        Self {
            min_support: a.min_support,
            max_gap: a.max_gap,
            fdr: a.fdr,
            min_lift: a.min_lift,
            min_excess: a.min_excess,
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
    /// `new_function`: ... whose sightings span at least N UTC days
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub pattern_days: u32,
    /// `error_prone`: the error rate's 95% lower bound reaches this (0-1)
    #[arg(long, default_value_t = 0.25, value_parser = parse_fraction, value_name = "RATE")]
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

impl From<ThresholdArgs> for Thresholds {
    fn from(a: ThresholdArgs) -> Self {
        Self {
            pattern_sessions: a.pattern_sessions,
            pattern_days: a.pattern_days,
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
pub struct ImportTranscriptsArgs {
    /// Transcript files or directories holding them [default: ~/.claude/projects]
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Only what happened at or after this time (YYYY-MM-DD, UTC, or an
    /// RFC 3339 time), by each line's own time; a later import without it
    /// still reads the older lines
    #[arg(long, value_parser = parse_since, value_name = "DATE")]
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Read and count what would be imported; write nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// `YYYY-MM-DD` as the start of that day, UTC.
/// `YYYY-MM-DD` as the start of that day, UTC, or an RFC 3339 time.
fn parse_since(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if let Ok(day) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(day.and_hms_opt(0, 0, 0).expect("midnight").and_utc());
    }
    crate::contract::timefmt::parse(s).ok_or_else(|| {
        format!("`{s}` is not a date like 2026-11-30 nor a time like 2026-11-30T09:00:00Z")
    })
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
    /// Also import new Claude Code transcript lines from DIR (e.g.
    /// ~/.claude/projects) every --interval; off by default
    #[arg(long, value_name = "DIR")]
    pub transcripts: Option<PathBuf>,
    #[command(flatten)]
    pub sequences: SequenceParamsArgs,
    #[command(flatten)]
    pub thresholds: ThresholdArgs,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    timefmt::parse_duration(s)
}

/// A number in [0, 1].
fn parse_fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(format!("`{s}` is not a number between 0 and 1")),
    }
}

/// A finite number above 0.
fn parse_positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!("`{s}` is not a number above 0")),
    }
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Recompute the rollups behind function_stats, tool_stats and status
    /// from the event tables (after editing calls, tool_uses or events by hand)
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
