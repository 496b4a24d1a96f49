//! The on-disk cache of compiled components.
//!
//! Compiling a component with Cranelift takes hundreds of milliseconds per
//! plugin; loading its precompiled form takes a fraction of one. Entries are
//! keyed by the wasmtime version, the engine's compilation settings and the
//! sha256 of the wasm, so an upgrade of either never loads stale code. The cache
//! owns only its directory; deciding what to load is the engine's business.

use std::hash::{Hash, Hasher};
use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// A directory of precompiled components.
#[derive(Debug, Clone)]
pub struct ComponentCache {
    dir: PathBuf,
    engine_key: String,
}

/// How a component was obtained, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded from the cache without compiling.
    Hit,
    /// Compiled now and written to the cache.
    Compiled,
}

impl ComponentCache {
    pub fn new(dir: impl Into<PathBuf>, engine: &Engine) -> io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        // The compatibility hash covers wasmtime's version, the target and every
        // compilation setting. `DefaultHasher::new()` uses fixed keys, so the key
        // is stable between runs of the same binary.
        let mut hasher = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key = format!("engine-{:016x}", hasher.finish());
        Ok(Self { dir, engine_key })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Returns the component for `wasm` (read from `file`), compiling it only
    /// when the cache has no usable entry. Compiling takes seconds for a large
    /// plugin, so it is logged before it starts: an operator watching a first
    /// start sees what the daemon is busy with.
    pub fn load(
        &self,
        engine: &Engine,
        wasm: &[u8],
        file: &Path,
    ) -> wasmtime::Result<(Component, CacheOutcome, String)> {
        let sha = hex::encode(Sha256::digest(wasm));
        let path = self.dir.join(format!("{}-{sha}.cwasm", self.engine_key));
        if path.exists() {
            // SAFETY: the file was written by `Component::serialize` of an engine
            // with the same version and settings (both are in the file name), in a
            // directory only the daemon writes to; wasmtime re-checks the header.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok((component, CacheOutcome::Hit, sha)),
                Err(err) => {
                    tracing::warn!(path = %path.display(), error = %err, "ignoring unusable cached component");
                }
            }
        }
        tracing::info!(
            file = %file.display(),
            bytes = wasm.len(),
            "compiling plugin (first load of this file; cached afterwards)"
        );
        let component = Component::new(engine, wasm)?;
        if let Err(err) = self.store(&path, &component) {
            tracing::warn!(path = %path.display(), error = %err, "could not cache compiled component");
        }
        Ok((component, CacheOutcome::Compiled, sha))
    }

    fn store(&self, path: &Path, component: &Component) -> wasmtime::Result<()> {
        let bytes = component.serialize()?;
        // Write then rename, so a crash never leaves a truncated entry behind.
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    }
}
