//! The `bmat` binary: see the library for what it does.

fn main() -> std::process::ExitCode {
    bmat::run()
}
