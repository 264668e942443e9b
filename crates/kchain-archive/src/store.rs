//! The object store an archive lives in, behind a small blocking API.
//!
//! `file:///dir`, `s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix` (and the
//! other URL forms of the `object_store` crate), with credentials and endpoints from the
//! environment as those clouds' own tools read them (`AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT`,
//! `AWS_ALLOW_HTTP`, `GOOGLE_SERVICE_ACCOUNT`, `AZURE_STORAGE_ACCOUNT_NAME`, ...).
//! Every put is atomic (object stores replace whole objects; `file://` writes a staging file
//! and renames it), which is what makes an archiver safe to kill.

use std::sync::Arc;

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use tokio::runtime::Runtime;

use crate::error::ArchiveError;

/// Uploads in flight at once: enough to hide a cloud store's latency, few enough for a laptop.
const PARALLEL_PUTS: usize = 32;

/// An archive's object store and the prefix under which its chains live.
pub struct Store {
    rt: Runtime,
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    url: String,
}

impl Store {
    /// Opens the store `url` names. A `file://` directory is created if missing.
    pub fn open(url: &str) -> Result<Store, ArchiveError> {
        let parsed = url::Url::parse(url).map_err(|e| ArchiveError::BadUrl {
            url: url.into(),
            detail: e.to_string(),
        })?;
        if parsed.scheme() == "file" {
            let dir = parsed.to_file_path().map_err(|_| ArchiveError::BadUrl {
                url: url.into(),
                detail: "not an absolute local path".into(),
            })?;
            std::fs::create_dir_all(&dir).map_err(|e| ArchiveError::BadUrl {
                url: url.into(),
                detail: format!("cannot create {}: {e}", dir.display()),
            })?;
        }
        let env = std::env::vars().map(|(k, v)| (k.to_ascii_lowercase(), v));
        let (store, prefix) =
            object_store::parse_url_opts(&parsed, env).map_err(|e| ArchiveError::BadUrl {
                url: url.into(),
                detail: e.to_string(),
            })?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| ArchiveError::Runtime(e.to_string()))?;
        Ok(Store {
            rt,
            store: Arc::from(store),
            prefix,
            url: url.into(),
        })
    }

    /// The URL this store was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn path(&self, rel: &str) -> Path {
        let mut p = self.prefix.clone();
        for part in rel.split('/') {
            p = p.clone().join(part);
        }
        p
    }

    /// The object at `rel` (relative to the archive's prefix), or None when there is none.
    pub fn get(&self, rel: &str) -> Result<Option<Vec<u8>>, ArchiveError> {
        let path = self.path(rel);
        let store = self.store.clone();
        self.rt.block_on(async move { fetch(&*store, &path).await })
    }

    /// The objects at `rels`, in order (None where there is none), fetched up to
    /// [`PARALLEL_PUTS`] at once.
    pub fn get_all(&self, rels: &[String]) -> Result<Vec<Option<Vec<u8>>>, ArchiveError> {
        let mut out = Vec::with_capacity(rels.len());
        for chunk in rels.chunks(PARALLEL_PUTS) {
            let handles: Vec<_> = chunk
                .iter()
                .map(|rel| {
                    let (store, path) = (self.store.clone(), self.path(rel));
                    self.rt.spawn(async move { fetch(&*store, &path).await })
                })
                .collect();
            for h in handles {
                out.push(
                    self.rt
                        .block_on(h)
                        .map_err(|e| ArchiveError::Runtime(e.to_string()))??,
                );
            }
        }
        Ok(out)
    }

    /// The names of the "directories" directly under `rel` (common prefixes of its objects).
    pub fn list_dirs(&self, rel: &str) -> Result<Vec<String>, ArchiveError> {
        let path = self.path(rel);
        let store = self.store.clone();
        let listed = self
            .rt
            .block_on(async move { store.list_with_delimiter(Some(&path)).await })
            .map_err(|e| io(&self.path(rel), e))?;
        Ok(listed
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_owned))
            .collect())
    }

    /// Writes `data` at `rel`, replacing any object there.
    pub fn put(&self, rel: &str, data: Vec<u8>) -> Result<(), ArchiveError> {
        self.put_all(vec![(rel.to_owned(), data)])
    }

    /// Writes every object of `objects`, up to [`PARALLEL_PUTS`] at once; returns when all are
    /// written, or with the first error.
    pub fn put_all(&self, objects: Vec<(String, Vec<u8>)>) -> Result<(), ArchiveError> {
        let mut objects = objects.into_iter().peekable();
        while objects.peek().is_some() {
            let batch: Vec<_> = objects.by_ref().take(PARALLEL_PUTS).collect();
            let handles: Vec<_> = batch
                .into_iter()
                .map(|(rel, data)| {
                    let (store, path) = (self.store.clone(), self.path(&rel));
                    self.rt.spawn(async move {
                        store
                            .put(&path, PutPayload::from(data))
                            .await
                            .map(|_| ())
                            .map_err(|e| io(&path, e))
                    })
                })
                .collect();
            for h in handles {
                self.rt
                    .block_on(h)
                    .map_err(|e| ArchiveError::Runtime(e.to_string()))??;
            }
        }
        Ok(())
    }

    /// Deletes the object at `rel` (no error when there is none).
    pub fn delete(&self, rel: &str) -> Result<(), ArchiveError> {
        let path = self.path(rel);
        let store = self.store.clone();
        self.rt.block_on(async move {
            match store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(io(&path, e)),
            }
        })
    }
}

async fn fetch(store: &dyn ObjectStore, path: &Path) -> Result<Option<Vec<u8>>, ArchiveError> {
    match store.get(path).await {
        Ok(r) => Ok(Some(r.bytes().await.map_err(|e| io(path, e))?.to_vec())),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(io(path, e)),
    }
}

fn io(path: &Path, e: object_store::Error) -> ArchiveError {
    ArchiveError::Store {
        path: path.to_string(),
        detail: e.to_string(),
    }
}
