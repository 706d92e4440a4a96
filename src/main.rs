//! The `weft` command: `serve` runs the server; `keys` manages API keys; `backup` copies the
//! SQLite store; `migrate` brings a ClickHouse schema up to date (or prints it).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use weft::domain::call::{format_time, now};
use weft::domain::keys::ApiKey;
use weft::domain::store::{self, Store};
use weft::http::{self, AppState};
use weft::store::clickhouse::{self, ClickHouseStore};
use weft::store::sqlite::SqliteStore;

/// The server allocates and frees many small buffers per request on every thread: mimalloc's
/// per-thread pages serve them in a fraction of the C library allocator's instructions (see
/// `docs/benchmarks.md`, "The allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (`mimalloc.h`), which the bindings do not name.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
/// Milliseconds freed memory stays with the process before it goes back to the system. With
/// mimalloc's default, a second, the peak memory of a large `eval_results/query` grew by a
/// fifth over the C library's; 100 ms keeps every query's within 2 MB of it, and 10 ms slowed
/// `calls/complete` by a sixth (memory given back between two batches, then faulted in again).
const PURGE_DELAY_MS: std::ffi::c_long = 100;

/// weft: a self-hostable server for the W&B Weave trace server API.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Directory of the embedded store (created on first start).
    #[arg(long, global = true, env = "WEFT_DATA_DIR", default_value = "weft-data")]
    data_dir: PathBuf,
    /// Storage backend: the embedded SQLite file, or a ClickHouse server.
    #[arg(long, global = true, env = "WEFT_STORE", value_enum, default_value_t = Backend::Sqlite)]
    store: Backend,
    /// URL of ClickHouse's HTTP interface (with `--store clickhouse`), e.g. http://127.0.0.1:8123.
    #[arg(long, global = true, env = "WEFT_CLICKHOUSE_URL")]
    clickhouse_url: Option<String>,
    /// ClickHouse database of weft's tables (created if missing).
    #[arg(long, global = true, env = "WEFT_CLICKHOUSE_DATABASE", default_value = "weft")]
    clickhouse_database: String,
    /// ClickHouse user.
    #[arg(long, global = true, env = "WEFT_CLICKHOUSE_USER", default_value = "default")]
    clickhouse_user: String,
    /// ClickHouse password.
    #[arg(
        long,
        global = true,
        env = "WEFT_CLICKHOUSE_PASSWORD",
        default_value = "",
        hide_env_values = true,
        hide_default_value = true
    )]
    clickhouse_password: String,
    /// ClickHouse cluster (a `remote_servers` name) holding weft's tables: `<table>_local`
    /// tables on its shards behind `Distributed` tables sharded by project. Without
    /// `--clickhouse-shard`, a cluster with Keeper (`ON CLUSTER`, replicated tables).
    #[arg(long, global = true, env = "WEFT_CLICKHOUSE_CLUSTER", visible_alias = "cluster")]
    clickhouse_cluster: Option<String>,
    /// With `--clickhouse-cluster`, a cluster without Keeper: the HTTP URL of one of its shards
    /// (repeat it, or separate URLs with commas, one per shard). The schema's local tables are
    /// made on each shard, its `Distributed` tables on each shard and on --clickhouse-url.
    #[arg(long = "clickhouse-shard", global = true, env = "WEFT_CLICKHOUSE_SHARDS", value_delimiter = ',')]
    clickhouse_shards: Vec<String>,
    #[command(subcommand)]
    command: Command,
}

/// Where the data lives.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    /// One SQLite file in `--data-dir`.
    Sqlite,
    /// A ClickHouse server (`--clickhouse-*` options).
    Clickhouse,
}

/// Options of `weft serve`.
#[derive(clap::Args, Clone)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "WEFT_BIND", default_value = "127.0.0.1:6345")]
    bind: SocketAddr,
    /// Largest size of the database file, in MiB; writes that would grow it further are
    /// refused with 507 (as on a full disk) while reads go on.
    #[arg(long, env = "WEFT_MAX_DB_MIB")]
    max_db_mib: Option<u64>,
    /// MiB of the database file that reads may memory-map (SQLite store; default none):
    /// faster lookups and deep pages, but every page read counts in the server's RSS.
    #[arg(long, env = "WEFT_READ_MMAP_MIB")]
    read_mmap_mib: Option<u64>,
    /// Requests served at once; more are refused with 429.
    #[arg(long, env = "WEFT_MAX_REQUESTS", default_value_t = http::MAX_REQUESTS,
          value_parser = clap::value_parser!(usize))]
    max_requests: usize,
    /// Requests one client address may have in progress at once; more are refused with
    /// 429. Default: a quarter of `--max-requests`.
    #[arg(long, env = "WEFT_MAX_REQUESTS_PER_ADDRESS", value_parser = clap::value_parser!(usize))]
    max_requests_per_address: Option<usize>,
    /// Seconds the server waits on a client: for a request's head (and for the next
    /// request on an idle connection), for its body (then 408), and for it to take the
    /// next part of a streamed response (then the response is cut off).
    #[arg(long, env = "WEFT_CLIENT_TIMEOUT", default_value_t = http::CLIENT_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    client_timeout: u64,
    /// Streamed lists one API key may have open at once; more are refused with 429.
    #[arg(long, env = "WEFT_MAX_STREAMS_PER_KEY", default_value_t = http::stream::MAX_STREAMS_PER_KEY,
          value_parser = clap::value_parser!(usize))]
    max_streams_per_key: usize,
    /// Address of a reverse proxy in front of weft (repeatable): for requests from it, the
    /// client's address (which failed authentications are counted by) is taken from
    /// `X-Forwarded-For`. That header is ignored from any other peer.
    #[arg(long = "trusted-proxy", env = "WEFT_TRUSTED_PROXIES", value_delimiter = ',')]
    trusted_proxies: Vec<std::net::IpAddr>,
    /// The default entity of admin keys: where `weave.init("project")` (no entity) puts its
    /// project when the key is an admin key. A key scoped to entities defaults to its first.
    #[arg(long, env = "WEFT_DEFAULT_ENTITY", default_value = http::DEFAULT_ENTITY,
          value_parser = entity_name)]
    default_entity: String,
}

/// An entity name as a project id takes it: 1 to 256 characters, no `/`.
fn entity_name(s: &str) -> Result<String, String> {
    if s.is_empty() || s.chars().count() > 256 || s.contains('/') {
        return Err("an entity name is 1 to 256 characters, without '/'".into());
    }
    Ok(s.to_string())
}

#[derive(Subcommand)]
enum Command {
    /// Runs the server.
    Serve(ServeArgs),
    /// Writes a consistent copy of the store to FILE while the server may be running.
    /// To restore: put FILE as `weft.db` in an empty directory and serve with `--data-dir` there.
    Backup {
        /// The file to create (must not exist).
        file: PathBuf,
    },
    /// Manages API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Applies pending ClickHouse schema migrations (also done at every start), or prints the
    /// schema's DDL.
    Migrate {
        /// Print the DDL instead of applying it (no connection is made), laid out as
        /// `--clickhouse-cluster` and `--clickhouse-shard` say.
        #[arg(long)]
        print: bool,
    },
}

#[derive(Subcommand, Clone)]
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
    /// Revokes a key by id; it stops working within 0.25 s (ClickHouse: 2 s).
    Revoke {
        /// The key's id, as `keys list` shows it.
        id: String,
    },
}

fn main() -> ExitCode {
    // SAFETY: sets an option mimalloc reads whenever it returns memory.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    // Before anything uses SQLite, and while this is the only thread.
    weft::store::sqlite::install_mimalloc();
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

/// An open store, with the backend-specific operations some commands need.
enum Opened {
    Sqlite(Arc<SqliteStore>),
    ClickHouse(Arc<ClickHouseStore>),
}

impl Opened {
    fn store(&self) -> Arc<dyn Store> {
        match self {
            Opened::Sqlite(s) => s.clone(),
            Opened::ClickHouse(s) => s.clone(),
        }
    }
}

impl Cli {
    fn clickhouse_config(&self) -> Result<clickhouse::Config, AnyError> {
        let url = self.clickhouse_url.clone().ok_or(
            "--store clickhouse needs --clickhouse-url (or WEFT_CLICKHOUSE_URL), e.g. http://127.0.0.1:8123",
        )?;
        clickhouse::check_identifier(&self.clickhouse_database, "--clickhouse-database")?;
        Ok(clickhouse::Config {
            url,
            database: self.clickhouse_database.clone(),
            user: self.clickhouse_user.clone(),
            password: self.clickhouse_password.clone(),
        })
    }

    fn clickhouse_topology(&self) -> Result<clickhouse::Topology, AnyError> {
        // An empty value (as an environment variable may give) names nothing.
        let cluster = self.clickhouse_cluster.as_deref().filter(|c| !c.is_empty());
        let shards: Vec<String> = self.clickhouse_shards.iter().filter(|s| !s.is_empty()).cloned().collect();
        Ok(clickhouse::Topology::new(cluster, &shards)?)
    }

    fn open(&self, quota: Option<u64>, read_mmap: Option<u64>) -> Result<Opened, AnyError> {
        match self.store {
            Backend::Sqlite => {
                let store = SqliteStore::open_with_quota(&self.data_dir, quota)?;
                Ok(Opened::Sqlite(Arc::new(store.with_read_mmap(read_mmap.unwrap_or(0)))))
            }
            Backend::Clickhouse => {
                if quota.is_some() {
                    return Err("--max-db-mib applies to the SQLite store only; \
                                cap a ClickHouse store with ClickHouse's own quotas"
                        .into());
                }
                if read_mmap.is_some() {
                    return Err("--read-mmap-mib applies to the SQLite store only".into());
                }
                let store =
                    ClickHouseStore::open_on(self.clickhouse_config()?, &self.clickhouse_topology()?)?;
                Ok(Opened::ClickHouse(Arc::new(store)))
            }
        }
    }
}

fn run(cli: Cli) -> Result<(), AnyError> {
    match &cli.command {
        Command::Serve(args) => serve_command(&cli, args.clone()),
        Command::Backup { file } => backup_command(&cli, file),
        Command::Keys(keys) => keys_command(&cli, keys.clone()),
        Command::Migrate { print } => migrate_command(&cli, *print),
    }
}

/// `weft serve`: opens the store and serves until a shutdown signal.
fn serve_command(cli: &Cli, args: ServeArgs) -> Result<(), AnyError> {
    let opened = cli.open(args.max_db_mib, args.read_mmap_mib)?;
    let store = opened.store();
    let deadlines = http::Deadlines::all(std::time::Duration::from_secs(args.client_timeout));
    let ServeArgs { max_requests_per_address, max_streams_per_key, trusted_proxies, default_entity, .. } =
        args;
    let configure = move |state: AppState| {
        let state = state
            .with_deadlines(deadlines)
            .with_default_entity(default_entity)
            .with_streams_per_key(max_streams_per_key)
            .with_trusted_proxies(trusted_proxies);
        match max_requests_per_address {
            Some(cap) => state.with_requests_per_address(cap),
            None => state,
        }
    };
    let sqlite = match &opened {
        Opened::Sqlite(s) => Some(s.clone()),
        Opened::ClickHouse(_) => None,
    };
    let place = match cli.store {
        Backend::Sqlite => cli.data_dir.display().to_string(),
        Backend::Clickhouse => format!(
            "{} database {}",
            cli.clickhouse_url.as_deref().unwrap_or_default(),
            cli.clickhouse_database
        ),
    };
    drop(opened);
    serve(store, sqlite, args.bind, args.max_requests.max(1), deadlines, configure, &place)
}

/// `weft backup FILE`: a consistent copy of the SQLite store, taken while it may be serving.
fn backup_command(cli: &Cli, file: &std::path::Path) -> Result<(), AnyError> {
    let not_sqlite = "backup copies the SQLite store only; back a ClickHouse store up with \
                      ClickHouse's BACKUP statement or clickhouse-backup";
    if cli.store != Backend::Sqlite {
        return Err(not_sqlite.into());
    }
    let Opened::Sqlite(sqlite) = cli.open(None, None)? else {
        return Err(not_sqlite.into());
    };
    sqlite.backup(file)?;
    eprintln!("backed up {} to {}", cli.data_dir.display(), file.display());
    Ok(())
}

/// `weft keys ...`: create, list and revoke API keys.
fn keys_command(cli: &Cli, keys: KeysCommand) -> Result<(), AnyError> {
    let store = cli.open(None, None)?.store();
    match keys {
        KeysCommand::Create { entities, admin } => {
            let (key, secret) = ApiKey::generate(entities, admin, now())?;
            store::insert_key(store.as_ref(), key.clone())?;
            eprintln!("created key {} ({})", key.id, scope(&key));
            println!("{secret}");
            Ok(())
        }
        KeysCommand::List => {
            for k in store.keys()? {
                let state =
                    k.revoked_at.map_or("active".to_string(), |t| format!("revoked {}", format_time(t)));
                println!("{}\t{}\t{}\t{}", k.id, scope(&k), format_time(k.created_at), state);
            }
            Ok(())
        }
        KeysCommand::Revoke { id } => {
            if store::revoke_key(store.as_ref(), &id, now())? {
                eprintln!("revoked key {id}");
                Ok(())
            } else {
                Err(format!("no active key with id {id}").into())
            }
        }
    }
}

/// `weft migrate`: applies the ClickHouse schema's pending migrations, or prints its DDL.
fn migrate_command(cli: &Cli, print: bool) -> Result<(), AnyError> {
    let topology = cli.clickhouse_topology()?;
    if print {
        for (place, ddl) in clickhouse::schema_ddl(&cli.clickhouse_database, &topology)? {
            match place {
                clickhouse::schema::Place::Entry => {}
                clickhouse::schema::Place::EachShard => println!("-- on each shard"),
                clickhouse::schema::Place::EveryNode => println!("-- on each shard and each entry node"),
            }
            println!("{ddl};\n");
        }
        return Ok(());
    }
    if cli.store != Backend::Clickhouse {
        return Err("migrate applies to the ClickHouse store (--store clickhouse); \
                    the SQLite store updates its schema when it opens"
            .into());
    }
    let applied = clickhouse::migrate_database(cli.clickhouse_config()?, &topology)?;
    if applied.is_empty() {
        eprintln!("the schema of database {} is up to date", cli.clickhouse_database);
    }
    for (version, name) in applied {
        eprintln!("applied migration {version}: {name}");
    }
    Ok(())
}

fn scope(k: &ApiKey) -> String {
    if k.admin { "admin".into() } else { format!("entities: {}", k.entities.join(",")) }
}

fn serve(
    store: Arc<dyn Store>,
    sqlite: Option<Arc<SqliteStore>>,
    bind: SocketAddr,
    max_requests: usize,
    deadlines: http::Deadlines,
    configure: impl FnOnce(AppState) -> AppState + Send + 'static,
    place: &str,
) -> Result<(), AnyError> {
    if store.keys()?.is_empty() {
        let (key, secret) = ApiKey::generate(Vec::new(), true, now())?;
        store::insert_key(store.as_ref(), key.clone())?;
        eprintln!("No API keys yet: created admin key {}. Its secret is shown only this once:", key.id);
        println!("{secret}");
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let optimizer = sqlite.clone();
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(bind).await?;
        tracing::info!(addr = %listener.local_addr()?, store = %place, "weft listening");
        if let Some(optimizer) = optimizer {
            tokio::spawn(async move {
                let mut every = tokio::time::interval(std::time::Duration::from_secs(600));
                every.tick().await;
                loop {
                    every.tick().await;
                    let s = optimizer.clone();
                    let _ = tokio::task::spawn_blocking(move || s.optimize()).await;
                }
            });
        }
        let app = http::router(configure(AppState::new(store, max_requests)));
        http::serve(listener, app, deadlines, shutdown_signal()).await?;
        tracing::info!("shut down");
        Ok::<_, AnyError>(())
    })?;
    if let Some(s) = sqlite {
        s.optimize()?;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_option_is_the_one_mimalloc_names() {
        // SAFETY: reads and sets one option.
        unsafe {
            // mimalloc's default purge delay is a second: an option of another meaning at
            // this index would not have it.
            if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
                assert_eq!(libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY), 1000);
            }
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS);
            assert_eq!(libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY), PURGE_DELAY_MS);
        }
    }
}
