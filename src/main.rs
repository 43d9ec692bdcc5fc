//! The binary: everything lives in the library; this only hands over the arguments and the exit code.

fn main() -> std::process::ExitCode {
    mvl_monitor::cli::main_with_args(std::env::args_os())
}
