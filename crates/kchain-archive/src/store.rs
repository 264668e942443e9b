//! The object store an archive lives in, behind a small blocking API.
//!
//! `file:///dir`, `s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix` (and the
//! other URL forms of the `object_store` crate), with credentials and endpoints from the
//! environment as those clouds' own tools read them (`AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT`,
//! `AWS_ALLOW_HTTP`, `GOOGLE_SERVICE_ACCOUNT`, `AZURE_STORAGE_ACCOUNT_NAME`, ...).
//! Every put is atomic (object stores replace whole objects; `file://` writes a staging file
//! and renames it), which is what makes an archiver safe to kill.

use std::future::Future;
use std::sync::Arc;

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use tokio::runtime::Runtime;
use tokio::task::{JoinHandle, JoinSet};

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

    /// Whether the store is a local directory (`file://`), where a read costs no round trip.
    pub fn is_local(&self) -> bool {
        self.url.starts_with("file:")
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
        self.fetch_all(rels).wait()
    }

    /// Starts fetching the objects at `rels` (up to [`PARALLEL_PUTS`] at once) and returns
    /// at once: the caller works on what it fetched before while these arrive.
    pub(crate) fn fetch_all(&self, rels: &[String]) -> Fetch<'_> {
        let jobs: Vec<_> = rels
            .iter()
            .map(|rel| {
                let (store, path) = (self.store.clone(), self.path(rel));
                async move { fetch(&*store, &path).await }
            })
            .collect();
        Fetch {
            rt: &self.rt,
            handle: self.rt.spawn(bounded(jobs)),
        }
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

    /// Writes every object of `objects`, [`PARALLEL_PUTS`] in flight at all times; returns
    /// when all are written, or with the first error.
    pub fn put_all(&self, objects: Vec<(String, Vec<u8>)>) -> Result<(), ArchiveError> {
        let jobs: Vec<_> = objects
            .into_iter()
            .map(|(rel, data)| {
                let (store, path) = (self.store.clone(), self.path(&rel));
                async move {
                    store
                        .put(&path, PutPayload::from(data))
                        .await
                        .map(|_| ())
                        .map_err(|e| io(&path, e))
                }
            })
            .collect();
        self.rt.block_on(bounded(jobs)).map(|_| ())
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

/// Downloads under way (see [`Store::fetch_all`]).
pub(crate) struct Fetch<'a> {
    rt: &'a Runtime,
    handle: JoinHandle<Result<Vec<Option<Vec<u8>>>, ArchiveError>>,
}

impl Fetch<'_> {
    /// The objects, in the order asked, once all have arrived.
    pub(crate) fn wait(self) -> Result<Vec<Option<Vec<u8>>>, ArchiveError> {
        self.rt
            .block_on(self.handle)
            .map_err(|e| ArchiveError::Runtime(e.to_string()))?
    }
}

/// Runs `jobs` with [`PARALLEL_PUTS`] of them in flight at all times (a new one starts as
/// soon as one ends, not once a whole group has), and returns their results in order, or
/// the first error.
async fn bounded<T, F>(jobs: Vec<F>) -> Result<Vec<T>, ArchiveError>
where
    T: Send + 'static,
    F: Future<Output = Result<T, ArchiveError>> + Send + 'static,
{
    let mut out: Vec<Option<T>> = (0..jobs.len()).map(|_| None).collect();
    let mut running = JoinSet::new();
    for (i, job) in jobs.into_iter().enumerate() {
        if running.len() >= PARALLEL_PUTS {
            collect(&mut running, &mut out).await?;
        }
        running.spawn(async move { (i, job.await) });
    }
    while !running.is_empty() {
        collect(&mut running, &mut out).await?;
    }
    Ok(out.into_iter().map(|o| o.expect("every job ran")).collect())
}

/// Waits for one job of `running` and files its result.
async fn collect<T: Send + 'static>(
    running: &mut JoinSet<(usize, Result<T, ArchiveError>)>,
    out: &mut [Option<T>],
) -> Result<(), ArchiveError> {
    let Some(done) = running.join_next().await else {
        return Ok(());
    };
    let (i, result) = done.map_err(|e| ArchiveError::Runtime(e.to_string()))?;
    out[i] = Some(result?);
    Ok(())
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
