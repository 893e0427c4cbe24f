//! Link the `call_monitor` executable as non-PIE.
//!
//! Claude Code waits for `call_monitor hook` on every tool event, so process
//! start-up is the hook's main cost. A position-independent executable has
//! its relocations applied at every start, touching ~80 extra pages of this
//! binary; linked non-PIE, the linker resolves them once. Measured in
//! BENCHMARKS.md (hook wall time).

fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
