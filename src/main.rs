//! The `emolens` command: parse, run, report the error chain, exit with its code.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = emolens::cli::Cli::parse();
    match emolens::cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
