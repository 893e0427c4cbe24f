//! The `call_monitor` binary: everything lives in the library; this only
//! hands the process over to the CLI and turns its outcome into an exit code.

fn main() -> std::process::ExitCode {
    call_monitor::cli::main()
}
