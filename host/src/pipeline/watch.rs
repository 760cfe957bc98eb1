//! What triggers a reload besides `POST /reload`: a change to the config file or to any
//! plugin `.wasm` it names, and `SIGHUP`. File events are debounced (a reload waits until
//! the files have been quiet for `DEBOUNCE`), so a file being written is not loaded half
//! done; and a file that is still broken when loaded is refused and the old chain stays.

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
        let reload_thread = std::thread::Builder::new()
            .name("weir-reload".into())
            .spawn(move || {
                let mut watch = Watch {
                    watcher,
                    dirs: BTreeSet::new(),
                    files: BTreeSet::new(),
                };
                watch.update(&supervisor.watched_paths());
                let mut pending: Option<Instant> = None;
                loop {
                    let timeout = pending.map_or(Duration::from_secs(3600), |t| {
                        DEBOUNCE.saturating_sub(t.elapsed())
                    });
                    match rx.recv_timeout(timeout) {
                        Ok(Trigger::File(path)) if watch.concerns(&path) => {
                            pending = Some(Instant::now())
                        }
                        Ok(Trigger::File(_)) => {}
                        Ok(Trigger::Signal) => {
                            let _ = supervisor.reload("SIGHUP");
                            watch.update(&supervisor.watched_paths());
                        }
                        Ok(Trigger::Stop) | Err(RecvTimeoutError::Disconnected) => break,
                        Err(RecvTimeoutError::Timeout) => {
                            if pending.take().is_some() {
                                let _ = supervisor.reload("file change");
                                watch.update(&supervisor.watched_paths());
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
