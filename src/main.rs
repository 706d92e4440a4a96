//! The `weft` command: `serve` runs the server; `keys` manages API keys.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use weft::domain::call::{format_time, now};
use weft::domain::keys::ApiKey;
use weft::http::{self, AppState};
use weft::store::sqlite::SqliteStore;
use weft::store::{self, Store};

/// weft: a self-hostable server for the W&B Weave trace server API.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Directory of the embedded store (created on first start).
    #[arg(long, global = true, env = "WEFT_DATA_DIR", default_value = "weft-data")]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the server.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "WEFT_BIND", default_value = "127.0.0.1:6345")]
        bind: SocketAddr,
        /// Largest size of the database file, in MiB; writes that would grow it further are
        /// refused with 507 (as on a full disk) while reads go on.
        #[arg(long, env = "WEFT_MAX_DB_MIB")]
        max_db_mib: Option<u64>,
        /// Requests served at once; more are refused with 429.
        #[arg(long, env = "WEFT_MAX_REQUESTS", default_value_t = http::MAX_REQUESTS,
              value_parser = clap::value_parser!(usize))]
        max_requests: usize,
        /// Seconds the server waits on a client: for a request's head (and for the next
        /// request on an idle connection), for its body (then 408), and for it to take the
        /// next part of a streamed response (then the response is cut off).
        #[arg(long, env = "WEFT_CLIENT_TIMEOUT", default_value_t = http::CLIENT_TIMEOUT_SECS,
              value_parser = clap::value_parser!(u64).range(1..=86_400))]
        client_timeout: u64,
    },
    /// Writes a consistent copy of the store to FILE while the server may be running.
    /// To restore: put FILE as `weft.db` in an empty directory and serve with `--data-dir` there.
    Backup {
        /// The file to create (must not exist).
        file: PathBuf,
    },
    /// Manages API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Creates a key and prints its secret (shown only once).
    Create {
        /// Entity the key may act on (repeatable).
        #[arg(long = "entity", required_unless_present = "admin")]
        entities: Vec<String>,
        /// The key may act on every entity.
        #[arg(long)]
        admin: bool,
    },
    /// Lists keys (ids and scopes, never secrets).
    List,
    /// Revokes a key by id; it stops working at once.
    Revoke {
        /// The key's id, as `keys list` shows it.
        id: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WEFT_LOG").unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("weft: {e}");
            ExitCode::FAILURE
        }
    }
}

type AnyError = Box<dyn std::error::Error>;

fn run(cli: Cli) -> Result<(), AnyError> {
    let quota = match &cli.command {
        Command::Serve { max_db_mib, .. } => *max_db_mib,
        _ => None,
    };
    let store = SqliteStore::open_with_quota(&cli.data_dir, quota)?;
    match cli.command {
        Command::Serve { bind, max_requests, client_timeout, .. } => {
            let deadlines = http::Deadlines::all(std::time::Duration::from_secs(client_timeout));
            serve(Arc::new(store), bind, max_requests.max(1), deadlines, &cli.data_dir)
        }
        Command::Backup { file } => {
            store.backup(&file)?;
            eprintln!("backed up {} to {}", cli.data_dir.display(), file.display());
            Ok(())
        }
        Command::Keys(KeysCommand::Create { entities, admin }) => {
            let (key, secret) = ApiKey::generate(entities, admin, now())?;
            store::insert_key(&store, key.clone())?;
            eprintln!("created key {} ({})", key.id, scope(&key));
            println!("{secret}");
            Ok(())
        }
        Command::Keys(KeysCommand::List) => {
            for k in store.keys()? {
                let state =
                    k.revoked_at.map_or("active".to_string(), |t| format!("revoked {}", format_time(t)));
                println!("{}\t{}\t{}\t{}", k.id, scope(&k), format_time(k.created_at), state);
            }
            Ok(())
        }
        Command::Keys(KeysCommand::Revoke { id }) => {
            if store::revoke_key(&store, &id, now())? {
                eprintln!("revoked key {id}");
                Ok(())
            } else {
                Err(format!("no active key with id {id}").into())
            }
        }
    }
}

fn scope(k: &ApiKey) -> String {
    if k.admin { "admin".into() } else { format!("entities: {}", k.entities.join(",")) }
}

fn serve(
    store: Arc<SqliteStore>,
    bind: SocketAddr,
    max_requests: usize,
    deadlines: http::Deadlines,
    data_dir: &std::path::Path,
) -> Result<(), AnyError> {
    if store.keys()?.is_empty() {
        let (key, secret) = ApiKey::generate(Vec::new(), true, now())?;
        store::insert_key(store.as_ref(), key.clone())?;
        eprintln!("No API keys yet: created admin key {}. Its secret is shown only this once:", key.id);
        println!("{secret}");
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let serving = store.clone();
    runtime.block_on(async move {
        let store = serving;
        let listener = tokio::net::TcpListener::bind(bind).await?;
        tracing::info!(addr = %listener.local_addr()?, data_dir = %data_dir.display(), "weft listening");
        let optimizer = store.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(600));
            every.tick().await;
            loop {
                every.tick().await;
                let s = optimizer.clone();
                let _ = tokio::task::spawn_blocking(move || s.optimize()).await;
            }
        });
        let app = http::router(AppState::new(store.clone(), max_requests).with_deadlines(deadlines));
        http::serve(listener, app, deadlines, shutdown_signal()).await?;
        tracing::info!("shut down");
        Ok::<_, AnyError>(())
    })?;
    store.optimize()?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
