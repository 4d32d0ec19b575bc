//! The `flightdeck` binary: parses the command line and runs a command.

use std::io::BufRead;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use flightdeck::config::{Config, ServeArgs};

/// Flightdeck: Arrow Flight SQL in front of Trino.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve Flight SQL clients, running their queries on Trino.
    Serve(Box<ServeArgs>),
    /// Read a password from stdin and print its bcrypt hash, for --users-file.
    HashPassword {
        /// bcrypt cost (4-31).
        #[arg(long, default_value_t = 10)]
        cost: u32,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(&args),
        Command::HashPassword { cost } => {
            let mut line = String::new();
            if std::io::stdin().lock().read_line(&mut line).is_err() {
                eprintln!("cannot read the password from stdin");
                return ExitCode::FAILURE;
            }
            match bcrypt::hash(line.trim_end_matches(['\n', '\r']), cost) {
                Ok(h) => {
                    println!("{h}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("cannot hash: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn serve(args: &ServeArgs) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,flightdeck=info".into()),
        )
        .init();
    let config = match Config::resolve(args) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("flightdeck: invalid configuration:");
            for e in errors {
                eprintln!("  - {e}");
            }
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    runtime.block_on(async {
        let app = match flightdeck::Application::build(config).await {
            Ok(app) => app,
            Err(e) => {
                eprintln!("flightdeck: {e}");
                return ExitCode::FAILURE;
            }
        };
        let scheme = if app.is_tls() { "grpc+tls" } else { "grpc" };
        println!("flightdeck: Flight SQL listening on {scheme}://{}", app.flight_addr());
        if let Some(plain) = app.plain_addr() {
            println!("flightdeck: plain gRPC on grpc://{plain}");
        }
        if let Some(addr) = app.trino_protocol_addr() {
            let scheme = if app.is_tls() { "https" } else { "http" };
            println!("flightdeck: Trino protocol on {scheme}://{addr}");
        }
        println!("flightdeck: admin HTTP on http://{}", app.admin_addr());
        match app.run_until_stopped(flightdeck::app::wait_for_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("flightdeck: server error: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
