//! `menotime-ops`: parse the command line, run the command, print its report; any
//! failure is one line on stderr and a documented exit status (docs/reference.md §7).

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser;

use menotime_ops::args::Cli;
use menotime_ops::error::{one_line, Failure};
use menotime_ops::output::{self, Style};

fn main() -> ExitCode {
    // Never a backtrace: should anything panic after all, one line says so.
    std::panic::set_hook(Box::new(|info| {
        eprintln!(
            "menotime-ops: internal error ({}); nothing more was done. Please report it with the command you ran",
            one_line(&info.to_string())
        );
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_failure(&e),
    };
    let json = cli.command.target().json;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let f = Failure::aws(format!("cannot start the async runtime: {e}"));
            eprintln!("menotime-ops: {f}");
            return f.exit_code();
        }
    };
    match runtime.block_on(menotime_ops::commands::run(cli, Style::detect())) {
        Ok(report) => {
            output::print(&report, json);
            ExitCode::SUCCESS
        }
        Err(f) => {
            eprintln!("menotime-ops: {f}");
            f.exit_code()
        }
    }
}

/// Help and version go to stdout (status 0); a wrong command line is one line on
/// stderr (status 2), with where to find help.
fn clap_failure(e: &clap::Error) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let args: Vec<String> = std::env::args().skip(1).collect();
            eprintln!(
                "menotime-ops: a command is missing; `menotime-ops {}--help` lists them",
                args.iter().map(|a| format!("{a} ")).collect::<String>()
            );
            ExitCode::from(2)
        }
        _ => {
            let text = e.render().to_string();
            let said: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|l| {
                    !l.is_empty()
                        && !l.starts_with("Usage:")
                        && !l.starts_with("For more information")
                })
                .collect();
            let line = said.join(" ");
            let line = line.strip_prefix("error: ").unwrap_or(&line);
            eprintln!(
                "menotime-ops: {}; see menotime-ops --help",
                line.trim_end_matches('.')
            );
            ExitCode::from(2)
        }
    }
}
