//! The host side of the `weir:filter/mmdb` import: MaxMind databases memory-mapped once per
//! process and shared by every plugin instance and worker. Loading a 60 MB GeoLite2-City
//! inside each guest instead cost ~58 MB of RSS per worker (see plugins/geoip/README.md).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use weir_wire::mmdb::{locate, open_mapped, MappedReader};
use weir_wire::Location;

/// Databases opened so far, by canonical host path.
#[derive(Default)]
pub struct MmdbCache {
    readers: Mutex<HashMap<PathBuf, Arc<MappedReader>>>,
}

impl MmdbCache {
    /// The database at `host_path`, mapping it on first use.
    pub fn open(&self, host_path: &Path) -> Result<Arc<MappedReader>, String> {
        let canonical = host_path
            .canonicalize()
            .map_err(|e| format!("cannot open {}: {e}", host_path.display()))?;
        let mut readers = self
            .readers
            .lock()
            .map_err(|_| "database cache poisoned".to_owned())?;
        if let Some(r) = readers.get(&canonical) {
            return Ok(r.clone());
        }
        // SAFETY: databases are replaced by renaming a new file over the old one (as
        // geoipupdate does), never modified in place; documented in the geoip README.
        let reader = unsafe { open_mapped(&canonical) }
            .map_err(|e| format!("{} is not a valid MaxMind DB: {e}", host_path.display()))?;
        let reader = Arc::new(reader);
        readers.insert(canonical, reader.clone());
        Ok(reader)
    }
}

/// Maps a guest path to the host path under one of the plugin's granted directories,
/// with WASI's rules: paths outside every grant, relative paths and `..` components are
/// refused, and so is a symlink inside a grant that leads out of it (the file it finally
/// names must lie inside the granted directory).
pub fn resolve_granted(guest: &str, dirs: &BTreeMap<String, PathBuf>) -> Result<PathBuf, String> {
    let path = Path::new(guest);
    if !path.is_absolute() || path.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(format!("{guest}: must be an absolute path without `..`"));
    }
    for (mount, host) in dirs {
        if let Ok(rest) = path.strip_prefix(mount) {
            let cannot = |e: std::io::Error| format!("cannot open {guest}: {e}");
            let root = host.canonicalize().map_err(cannot)?;
            let target = host.join(rest).canonicalize().map_err(cannot)?;
            if !target.starts_with(&root) {
                return Err(format!(
                    "{guest}: leads outside its granted directory (through a symbolic link)"
                ));
            }
            return Ok(target);
        }
    }
    Err(format!("{guest}: not inside a granted directory (grant one: [plugins.grants] dirs = {{ \"/geoip\" = \"host/dir\" }})"))
}

/// Distinct databases one instance may hold open.
pub const MAX_OPEN_DATABASES: usize = 16;

/// The databases one instance has opened, by handle.
#[derive(Default)]
pub struct OpenDatabases {
    readers: Vec<Arc<MappedReader>>,
}

impl OpenDatabases {
    /// Adds a reader and returns its handle; a database already open keeps its handle,
    /// so a plugin opening the same file in a loop holds one, and no more than
    /// [`MAX_OPEN_DATABASES`] distinct ones.
    pub fn add(&mut self, reader: Arc<MappedReader>) -> Result<u32, String> {
        if let Some(i) = self.readers.iter().position(|r| Arc::ptr_eq(r, &reader)) {
            return Ok(i as u32);
        }
        if self.readers.len() >= MAX_OPEN_DATABASES {
            return Err(format!(
                "too many databases open (at most {MAX_OPEN_DATABASES} per instance)"
            ));
        }
        self.readers.push(reader);
        Ok((self.readers.len() - 1) as u32)
    }

    /// Looks `ip` up in database `handle`.
    pub fn lookup(
        &self,
        handle: u32,
        ip: &str,
        language: &str,
    ) -> Result<Option<Location>, String> {
        let reader = self
            .readers
            .get(handle as usize)
            .ok_or_else(|| format!("unknown database handle {handle}"))?;
        let ip: IpAddr = ip
            .trim()
            .parse()
            .map_err(|_| format!("{ip:?} is not an IP address"))?;
        locate(reader, ip, language)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_database_keeps_its_handle_and_distinct_ones_are_capped() {
        let db = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../plugins/geoip/testdata/test-city.mmdb");
        let cache = MmdbCache::default();
        let reader = cache.open(&db).unwrap();
        let mut open = OpenDatabases::default();
        for _ in 0..1000 {
            assert_eq!(open.add(reader.clone()), Ok(0));
        }
        assert_eq!(open.readers.len(), 1);
        // Distinct readers (as distinct files would be) stop at the cap.
        // SAFETY (both maps below): the test database is never modified.
        for i in 1..MAX_OPEN_DATABASES {
            let other = Arc::new(unsafe { open_mapped(&db) }.unwrap());
            assert_eq!(open.add(other), Ok(i as u32));
        }
        let one_more = Arc::new(unsafe { open_mapped(&db) }.unwrap());
        assert!(open
            .add(one_more)
            .unwrap_err()
            .contains("too many databases open"));
    }

    #[test]
    fn only_paths_inside_grants_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let grant = dir.path().join("geo");
        std::fs::create_dir(&grant).unwrap();
        std::fs::write(grant.join("city.mmdb"), b"x").unwrap();
        std::fs::write(dir.path().join("secret"), b"s").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), grant.join("out.mmdb")).unwrap();
        std::os::unix::fs::symlink(grant.join("city.mmdb"), grant.join("in.mmdb")).unwrap();
        let dirs: BTreeMap<String, PathBuf> = [("/geoip".to_owned(), grant.clone())].into();
        let root = grant.canonicalize().unwrap();
        assert_eq!(
            resolve_granted("/geoip/city.mmdb", &dirs).unwrap(),
            root.join("city.mmdb")
        );
        assert_eq!(
            resolve_granted("/geoip/in.mmdb", &dirs).unwrap(),
            root.join("city.mmdb"),
            "a link that stays inside the grant is followed"
        );
        assert!(resolve_granted("/geoip/out.mmdb", &dirs)
            .unwrap_err()
            .contains("leads outside its granted directory"));
        assert!(resolve_granted("/etc/passwd", &dirs)
            .unwrap_err()
            .contains("not inside a granted directory"));
        assert!(resolve_granted("/geoip/../etc/passwd", &dirs).is_err());
        assert!(resolve_granted("geoip/city.mmdb", &dirs).is_err());
        assert!(
            resolve_granted("/geoipx/city.mmdb", &dirs).is_err(),
            "prefix match is by component"
        );
    }
}
