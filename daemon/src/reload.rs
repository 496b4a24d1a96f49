//! Building a config and its plugins from disk, and swapping them into a
//! running daemon.
//!
//! It owns the sequence "read the file once it is stable, check its syntax,
//! load the plugins of the folder it names, validate everything, refuse what
//! needs a restart, then swap", the status of the latest attempt (shown by the
//! API), and watching the config and plugin folders so a change on disk does
//! the same once it has settled. It must not decide what a change means
//! for health or schedules: [`Service::reconfigure`] does that.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::clock::SharedClock;
use crate::config::{Config, ConfigErrors, Connector, Connectors, Options};
use crate::plugin::{PluginHost, PluginSet, load_folder};
use crate::service::{Service, ServiceError};

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Every config error, one per line with its place (the first
    /// [`SHOWN_ERRORS`](crate::config::SHOWN_ERRORS), then a count).
    #[error("invalid config:\n{0}")]
    Invalid(ConfigErrors),
    #[error("{0}; the running plugins are kept")]
    Plugin(String),
    #[error(
        "changing {} needs a restart; the running config is unchanged",
        .0.join(" and ")
    )]
    RestartNeeded(Vec<&'static str>),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

/// A config file with the plugins its folder holds, validated against them.
pub struct Prepared {
    pub config: Config,
    pub plugins: PluginSet,
}

/// How a plugin file that does not load is taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Broken {
    /// Logged, listed and skipped: a broken file must not keep the daemon
    /// down. A check that needs it is kept, and its runs fail saying why.
    Skip,
    /// As `Skip`, except that a file among these (the plugins running now)
    /// refuses the whole change: a plugin replaced by a broken file keeps
    /// its running version, and the operator is told which file it is.
    RefuseReplaced(Vec<PathBuf>),
}

/// Reads `file` once it is stable, checks its TOML syntax, loads the plugins
/// of the folder it names, and validates it against them.
pub async fn prepare(
    host: &PluginHost,
    file: &Path,
    broken: &Broken,
) -> Result<Prepared, ReloadError> {
    let text = read_stable(file)
        .await
        .map_err(|source| ReloadError::Read {
            path: file.to_owned(),
            source,
        })?;
    // The plugin folder comes from the config itself; a file that does not
    // parse is refused before any plugin is compiled.
    let folders = crate::config::folders(&text, file).map_err(ReloadError::Invalid)?;
    let plugins = load_folder(host, &folders.plugins_dir)
        .await
        .map_err(|source| ReloadError::Read {
            path: folders.plugins_dir.clone(),
            source,
        })?;
    if let Broken::RefuseReplaced(running) = broken
        && let Some(replaced) = plugins.failed.iter().find(|f| running.contains(&f.file))
    {
        return Err(ReloadError::Plugin(replaced.error.clone()));
    }
    let options = Options {
        keep_checks_of_failed_plugins: true,
        ..Options::default()
    };
    // Validating a big file takes a while: keep it off the runtime's workers,
    // which go on serving the API and running checks.
    let parsed = {
        let (file, connectors) = (file.to_owned(), connectors(&plugins));
        tokio::task::spawn_blocking(move || {
            crate::config::parse_against(&text, &file, &connectors, options)
        })
        .await
        .unwrap_or_else(|err| std::panic::resume_unwind(err.into_panic()))
    };
    let config = parsed.map_err(ReloadError::Invalid)?;
    Ok(Prepared { config, plugins })
}

/// What the config is validated against: each loaded plugin's schema and
/// file hash, and the files that failed.
pub fn connectors(plugins: &PluginSet) -> Connectors {
    Connectors {
        loaded: plugins
            .loaded
            .iter()
            .map(|p| {
                let connector = Connector {
                    // The folder refused plugins whose schema is not JSON.
                    schema: serde_json::from_str(&p.descriptor().config_schema).unwrap_or_default(),
                    file: Some((p.path().to_owned(), p.sha256().to_owned())),
                };
                (p.name().to_owned(), connector)
            })
            .collect(),
        failed: plugins.failed.clone(),
    }
}

/// How long a file must stay unchanged before it is read as a whole.
pub const QUIET: Duration = Duration::from_millis(500);

/// The longest [`read_stable`] waits for a file that keeps changing.
const STABLE_WITHIN: Duration = Duration::from_secs(30);

/// Reads `file` once it has not changed for [`QUIET`]: at once when its
/// modification time is that old and it did not change while being read;
/// otherwise it waits [`QUIET`], reads it again and takes the text only if
/// its size, modification time and content are the same, else tries again.
/// A save being written is not parsed half-way, whatever started the reload
/// (start-up, the watcher, SIGHUP or the API).
pub async fn read_stable(file: &Path) -> std::io::Result<String> {
    let started = std::time::Instant::now();
    let mut before = Snapshot::take(file).await?;
    loop {
        if let Some(snapshot) = &before
            && snapshot.unchanged_for(QUIET)
        {
            break;
        }
        tokio::time::sleep(QUIET).await;
        let after = Snapshot::take(file).await?;
        if after.is_some() && after == before {
            before = after;
            break;
        }
        if started.elapsed() > STABLE_WITHIN {
            return Err(std::io::Error::other(format!(
                "the file kept changing for {}s; not read",
                STABLE_WITHIN.as_secs()
            )));
        }
        before = after;
    }
    let text = before.map(|s| s.text).unwrap_or_default();
    String::from_utf8(text)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()))
}

/// A file's content with its size and modification time.
#[derive(PartialEq)]
struct Snapshot {
    len: u64,
    modified: Option<SystemTime>,
    text: Vec<u8>,
}

impl Snapshot {
    /// Reads `file`; `None` when it changed while being read.
    async fn take(file: &Path) -> std::io::Result<Option<Snapshot>> {
        let file = file.to_owned();
        tokio::task::spawn_blocking(move || {
            let stat = |meta: std::fs::Metadata| (meta.len(), meta.modified().ok());
            let (len, modified) = stat(std::fs::metadata(&file)?);
            let text = std::fs::read(&file)?;
            let unchanged =
                stat(std::fs::metadata(&file)?) == (len, modified) && text.len() as u64 == len;
            Ok(unchanged.then_some(Snapshot {
                len,
                modified,
                text,
            }))
        })
        .await
        .map_err(std::io::Error::other)?
    }

    /// Whether the file was last modified `quiet` or longer ago (a clock that
    /// cannot tell, or a time in the future, says no).
    fn unchanged_for(&self, quiet: Duration) -> bool {
        self.modified
            .and_then(|m| SystemTime::now().duration_since(m).ok())
            .is_some_and(|age| age >= quiet)
    }
}

/// The latest reload attempt, for the API and metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct ReloadStatus {
    pub file: PathBuf,
    /// When the config in force was loaded.
    pub loaded_at: SystemTime,
    pub attempted_at: Option<SystemTime>,
    /// Why the latest attempt failed; `None` once one succeeds.
    pub last_error: Option<String>,
    pub succeeded: u64,
    pub failed: u64,
}

/// What a reload changed, by check id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadSummary {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
}

/// Reloads the daemon's config file on demand (the `reloadConfig` mutation;
/// file watching and SIGHUP call the same).
pub struct Reloader {
    host: PluginHost,
    clock: SharedClock,
    status: Mutex<ReloadStatus>,
    /// One reload at a time: two racing would swap in whichever ends last.
    busy: tokio::sync::Mutex<()>,
}

impl Reloader {
    pub fn new(host: PluginHost, file: PathBuf, clock: SharedClock) -> Self {
        let now = clock.now();
        Self {
            host,
            clock,
            status: Mutex::new(ReloadStatus {
                file,
                loaded_at: now,
                attempted_at: None,
                last_error: None,
                succeeded: 0,
                failed: 0,
            }),
            busy: tokio::sync::Mutex::new(()),
        }
    }

    pub fn status(&self) -> ReloadStatus {
        self.lock_status().clone()
    }

    fn lock_status(&self) -> std::sync::MutexGuard<'_, ReloadStatus> {
        self.status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Builds the config on disk and swaps it into `service`; on any error the
    /// running config stays as it is and the error is kept in the status.
    pub async fn reload(&self, service: &Service) -> Result<ReloadSummary, ReloadError> {
        let _one = self.busy.lock().await;
        let file = self.lock_status().file.clone();
        let result = self.swap(service, &file).await;
        return_freed_memory();
        let now = self.clock.now();
        let mut status = self.lock_status();
        status.attempted_at = Some(now);
        service.metrics().reload(result.is_ok());
        match &result {
            Ok(summary) => {
                status.loaded_at = now;
                status.last_error = None;
                status.succeeded += 1;
                tracing::info!(
                    added = summary.added.len(),
                    removed = summary.removed.len(),
                    changed = summary.changed.len(),
                    "config reloaded"
                );
            }
            Err(err) => {
                status.last_error = Some(err.to_string());
                status.failed += 1;
                tracing::error!(error = %err, "config not reloaded; the running config is unchanged");
            }
        }
        result
    }

    async fn swap(&self, service: &Service, file: &Path) -> Result<ReloadSummary, ReloadError> {
        let old = service.loaded();
        let running = old.plugins.values().map(|p| p.path().to_owned()).collect();
        let prepared = prepare(&self.host, file, &Broken::RefuseReplaced(running)).await?;
        let restart = old.config.restart_needed(&prepared.config);
        if !restart.is_empty() {
            return Err(ReloadError::RestartNeeded(restart));
        }
        let summary = summarize(&old.config, &prepared.config);
        service
            .reconfigure(prepared.config, prepared.plugins)
            .await?;
        Ok(summary)
    }
}

/// Hands the memory a reload freed back to the system. Validating a big file
/// allocates hundreds of megabytes in small pieces, on whichever thread ran
/// it; glibc keeps what is freed in that thread's arena, so without this each
/// refused reload of a big file left the daemon larger (see BENCHMARKS.md).
fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of the allocator's arenas
    // to the kernel; it takes no pointers and is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn summarize(old: &Config, new: &Config) -> ReloadSummary {
    let old_checks: HashMap<&str, &crate::config::Check> =
        old.checks.iter().map(|c| (c.id.as_str(), c)).collect();
    let old_ids: BTreeSet<&str> = old_checks.keys().copied().collect();
    let new_ids: BTreeSet<&str> = new.checks.iter().map(|c| c.id.as_str()).collect();
    ReloadSummary {
        added: new_ids
            .difference(&old_ids)
            .map(|s| s.to_string())
            .collect(),
        removed: old_ids
            .difference(&new_ids)
            .map(|s| s.to_string())
            .collect(),
        changed: new
            .checks
            .iter()
            .filter(|c| old_checks.get(c.id.as_str()).is_some_and(|o| *o != *c))
            .map(|c| c.id.clone())
            .collect(),
    }
}

/// The longest a file written to and not closed yet holds a reload back:
/// past it, the change is read anyway (a hard link makes a file without
/// opening it; a program may keep its file open).
const OPEN_AT_MOST: Duration = Duration::from_secs(30);

/// Whether the platform's watcher reports a file closed after writing
/// (inotify does): then a change is read only once every file written to is
/// closed, so a save that pauses mid-write waits for its end.
const REPORTS_CLOSE: bool = cfg!(any(target_os = "linux", target_os = "android"));

/// Changes seen since the last reload, and when to reload for them.
#[derive(Debug, Default)]
struct Changes {
    /// When the latest change was seen; `None` when there is none.
    last: Option<Instant>,
    /// Files written to and not closed yet, since when.
    open: HashMap<PathBuf, Instant>,
}

impl Changes {
    fn see(&mut self, kind: &notify::EventKind, path: &Path, now: Instant) {
        use notify::EventKind;
        use notify::event::{AccessKind, AccessMode, ModifyKind};
        match kind {
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => {
                self.open.remove(path);
            }
            EventKind::Access(_) => return,
            EventKind::Create(_) | EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any)
                if REPORTS_CLOSE =>
            {
                self.open.entry(path.to_owned()).or_insert(now);
            }
            // Renamed over (an atomic save) or removed: nobody writes it.
            EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_)) => {
                self.open.remove(path);
            }
            _ => {}
        }
        self.last = Some(now);
    }

    /// When to reload: [`QUIET`] after the latest change, once no file is
    /// still being written (or one has been for [`OPEN_AT_MOST`]).
    fn due(&self) -> Option<Instant> {
        let quiet = self.last? + QUIET;
        Some(match self.open.values().min() {
            None => quiet,
            Some(&since) => quiet.max(since + OPEN_AT_MOST),
        })
    }
}

/// Keeps the watch alive; dropping it stops watching.
pub struct Watch {
    _watcher: notify::RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reloads `service` whenever the config file or a `*.wasm` in `plugins_dir`
/// changes and has settled (see [`Changes`]). It watches the folders, not
/// the file: an editor's atomic save replaces the file, which would end a
/// watch on the file itself.
pub fn watch(
    reloader: Arc<Reloader>,
    service: Arc<Service>,
    plugins_dir: &Path,
) -> Result<Watch, notify::Error> {
    use notify::{RecursiveMode, Watcher};

    let file = reloader.lock_status().file.clone();
    let file = std::fs::canonicalize(&file).unwrap_or(file);
    let config_dir = file.parent().map(Path::to_owned).unwrap_or_default();
    let plugins_dir = std::fs::canonicalize(plugins_dir).unwrap_or_else(|_| plugins_dir.to_owned());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(notify::EventKind, PathBuf)>();
    let relevant = {
        let (file, plugins_dir) = (file.clone(), plugins_dir.clone());
        move |path: &Path| {
            path == file
                || (path.starts_with(&plugins_dir) && path.extension().is_some_and(|e| e == "wasm"))
        }
    };
    let mut watcher =
        notify::recommended_watcher(move |result: notify::Result<notify::Event>| match result {
            Ok(event) => {
                for path in event.paths.iter().filter(|p| relevant(p)) {
                    let _ = tx.send((event.kind, path.clone()));
                }
            }
            Err(e) => tracing::warn!(error = %e, "watching the config and plugin folders"),
        })?;
    watcher.watch(&config_dir, RecursiveMode::NonRecursive)?;
    if plugins_dir != config_dir {
        watcher.watch(&plugins_dir, RecursiveMode::NonRecursive)?;
    }
    let task = tokio::spawn(async move {
        let mut changes = Changes::default();
        loop {
            let due = changes.due();
            tokio::select! {
                seen = rx.recv() => match seen {
                    Some((kind, path)) => changes.see(&kind, &path, Instant::now()),
                    None => return,
                },
                () = sleep_until(due), if due.is_some() => {
                    changes = Changes::default();
                    tracing::info!("the config or a plugin changed: reloading");
                    let _ = reloader.reload(&service).await;
                }
            }
        }
    });
    tracing::info!(config = %config_dir.display(), plugins = %plugins_dir.display(), "watching for changes");
    Ok(Watch {
        _watcher: watcher,
        task,
    })
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at.into()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode, CreateKind, DataChange, ModifyKind, RenameMode};

    const WRITE: EventKind = EventKind::Modify(ModifyKind::Data(DataChange::Any));
    const CLOSED: EventKind = EventKind::Access(AccessKind::Close(AccessMode::Write));

    #[test]
    fn a_change_is_due_after_quiet_and_only_once_the_file_is_closed() {
        let t0 = Instant::now();
        let file = Path::new("/etc/tributary.toml");
        let mut c = Changes::default();
        assert_eq!(c.due(), None);
        c.see(&EventKind::Access(AccessKind::Read), file, t0);
        assert_eq!(c.due(), None, "reading is no change");
        c.see(&WRITE, file, t0);
        if REPORTS_CLOSE {
            // Half written, the writer pausing: not before it closes (or
            // has kept it open for long).
            assert_eq!(c.due(), Some(t0 + OPEN_AT_MOST));
            let t1 = t0 + Duration::from_secs(2);
            c.see(&WRITE, file, t1);
            c.see(&CLOSED, file, t1);
            assert_eq!(c.due(), Some(t1 + QUIET));
        } else {
            assert_eq!(c.due(), Some(t0 + QUIET));
        }
    }

    #[test]
    fn an_atomic_save_is_due_after_quiet() {
        let t0 = Instant::now();
        let file = Path::new("/etc/tributary.toml");
        let mut c = Changes::default();
        c.see(&EventKind::Create(CreateKind::File), file, t0);
        c.see(
            &EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            file,
            t0,
        );
        assert_eq!(c.due(), Some(t0 + QUIET));
    }
}
