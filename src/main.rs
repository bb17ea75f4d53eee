//! The `terpadu` binary: all logic lives in the library; see `terpadu --help`.

fn main() -> std::process::ExitCode {
    terpadu::cli::main()
}
