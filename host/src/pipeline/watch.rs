//! What triggers a reload besides `POST /reload`: a change to the config file or to any
//! plugin `.wasm` it names, and `SIGHUP`. File events are debounced (a reload waits until
//! the files have been quiet for `DEBOUNCE`), so a file being written is not loaded half
//! done; and a file that is still broken when loaded is refused and the old chain stays.
//! A trigger that arrives while another reload runs is tried again after `DEBOUNCE`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use signal_hook::consts::SIGHUP;
use signal_hook::iterator::{Handle, Signals};

use super::Supervisor;

/// Quiet time after the last file event before reloading.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

enum Trigger {
    File(PathBuf),
    Signal,
    Stop,
}

/// The running triggers; stopping them is dropping this.
pub struct Triggers {
    tx: Sender<Trigger>,
    signals: Handle,
    threads: Vec<JoinHandle<()>>,
}

impl Triggers {
    /// Starts watching files and listening for `SIGHUP`.
    pub fn start(supervisor: Arc<Supervisor>) -> anyhow::Result<Self> {
        let (tx, rx) = channel::<Trigger>();
        let file_tx = tx.clone();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            // Reads (a reload itself reads these files) are not changes.
            if let Some(event) = event
                .ok()
                .filter(|e| !matches!(e.kind, notify::EventKind::Access(_)))
            {
                for path in event.paths {
                    let _ = file_tx.send(Trigger::File(path));
                }
            }
        })?;
        let mut signals = Signals::new([SIGHUP])?;
        let handle = signals.handle();
        let signal_tx = tx.clone();
        let signal_thread = std::thread::Builder::new()
            .name("weir-sighup".into())
            .spawn(move || {
                for _ in signals.forever() {
                    if signal_tx.send(Trigger::Signal).is_err() {
                        break;
                    }
                }
            })?;
        // Watching starts here, before the pipeline reports ready: a change made as soon
        // as `/ready` answers 200 is seen (set up on the reload thread, it could be missed).
        let mut watch = Watch {
            watcher,
            dirs: BTreeSet::new(),
            files: BTreeSet::new(),
        };
        watch.update(&supervisor.watched_paths());
        let reload_thread = std::thread::Builder::new()
            .name("weir-reload".into())
            .spawn(move || {
                // The trigger waiting for the files to be quiet (or for a running reload).
                let mut pending: Option<(Instant, &str)> = None;
                loop {
                    let timeout = pending.map_or(Duration::from_secs(3600), |(t, _)| {
                        DEBOUNCE.saturating_sub(t.elapsed())
                    });
                    match rx.recv_timeout(timeout) {
                        Ok(Trigger::File(path)) if watch.concerns(&path) => {
                            pending = Some((Instant::now(), "file change"))
                        }
                        Ok(Trigger::File(_)) => {}
                        Ok(Trigger::Signal) => {
                            // A file change still waiting stays pending, as before.
                            pending = reload(&supervisor, &mut watch, "SIGHUP").or(pending);
                        }
                        Ok(Trigger::Stop) | Err(RecvTimeoutError::Disconnected) => break,
                        Err(RecvTimeoutError::Timeout) => {
                            if let Some((_, trigger)) = pending.take() {
                                pending = reload(&supervisor, &mut watch, trigger);
                            }
                        }
                    }
                }
            })?;
        Ok(Triggers {
            tx,
            signals: handle,
            threads: vec![signal_thread, reload_thread],
        })
    }
}

impl Drop for Triggers {
    fn drop(&mut self) {
        self.signals.close();
        let _ = self.tx.send(Trigger::Stop);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Reloads, then watches what the new generation names. When another reload (say, from
/// `POST /reload`) is running, returns the trigger to try again after `DEBOUNCE`: that
/// reload may have read the files before this change.
fn reload<'a>(
    supervisor: &Arc<Supervisor>,
    watch: &mut Watch,
    trigger: &'a str,
) -> Option<(Instant, &'a str)> {
    let Some(permit) = supervisor.try_begin_reload() else {
        tracing::debug!(
            trigger,
            "a reload is already in progress; trying again shortly"
        );
        return Some((Instant::now(), trigger));
    };
    let _ = permit.reload(trigger);
    watch.update(&supervisor.watched_paths());
    None
}

/// The watched files. Their directories are watched, not the files, because editors and
/// deploy tools replace files by renaming, which a watch on the old file would miss.
struct Watch {
    watcher: RecommendedWatcher,
    dirs: BTreeSet<PathBuf>,
    files: BTreeSet<PathBuf>,
}

impl Watch {
    fn update(&mut self, paths: &[PathBuf]) {
        self.files = paths.iter().map(|p| absolute(p)).collect();
        let dirs: BTreeSet<PathBuf> = self
            .files
            .iter()
            .filter_map(|f| f.parent().map(Path::to_path_buf))
            .collect();
        for dir in dirs.difference(&self.dirs) {
            if let Err(e) = self.watcher.watch(dir, RecursiveMode::NonRecursive) {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot watch for changes");
            }
        }
        for dir in self.dirs.difference(&dirs) {
            let _ = self.watcher.unwatch(dir);
        }
        self.dirs = dirs;
    }

    fn concerns(&self, path: &Path) -> bool {
        self.files.contains(&absolute(path))
    }
}

fn absolute(path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    };
    // Canonicalise the directory (symlinks, `..`) but not the file, which may be mid-rename.
    match (
        joined.parent().and_then(|d| d.canonicalize().ok()),
        joined.file_name(),
    ) {
        (Some(dir), Some(name)) => dir.join(name),
        _ => joined,
    }
}
