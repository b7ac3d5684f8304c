//! Where finished recordings live: the recording dir alone, or an
//! S3-compatible bucket with the recording dir as its spool
//! (`recording.store = "s3://BUCKET/PREFIX"`).
//!
//! A recording is written to the recording dir as always. Once its session
//! has ended, [`Recordings::upload`] copies its files (the cast and the raw
//! sidecar, unchanged: the digest in the audit chain covers exactly the
//! object's bytes) to `PREFIX/YYYY/MM/DD/...` in parts of [`PART`] (about
//! 10 MiB of memory per upload), and the
//! local copies may then go. While the bucket is unreachable the files wait
//! in the recording dir, and a later pass uploads them. Reading goes through
//! [`Recordings::fetch`]: the local file when there is one, otherwise the
//! object, copied back into the recording dir first (a cache the operator
//! may empty at will). [`Recordings::sha256`] streams an object through the
//! hash without a local copy.
//!
//! Credentials come from `recording.s3_access_key_id` and
//! `recording.s3_secret_access_key`, or from the environment
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`); they
//! are never printed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, RetryConfig, WriteMultipart};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::config::ObjectStoreConfig;

/// Bytes per uploaded part: S3's minimum (but for the last part), so that
/// an upload holds little memory.
pub const PART: usize = 5 * 1024 * 1024;
/// Parts in flight while the next one fills: an upload holds at most this
/// many parts plus the one filling, and a read buffer.
const PARTS_IN_FLIGHT: usize = 1;
/// Bytes read from the file at a time.
const READ: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("the object store cannot be used: {0}")]
    Config(String),
    #[error("object {key}: {source}")]
    Store {
        key: String,
        #[source]
        source: object_store::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("recording {0} is neither in the recording dir nor in the object store")]
    Missing(String),
}

/// A recording file on its way to the object store while it may still
/// grow: a multipart upload and how many of the file's bytes it holds.
pub struct LiveUpload {
    key: ObjectPath,
    writer: WriteMultipart,
    sent: u64,
}

impl std::fmt::Debug for LiveUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveUpload")
            .field("key", &self.key)
            .field("sent", &self.sent)
            .finish_non_exhaustive()
    }
}

impl LiveUpload {
    /// Bytes of the file sent so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Gives the upload up (the store forgets its parts).
    pub async fn abandon(self) {
        let _ = self.writer.abort().await;
    }
}

/// The recordings: a directory, and optionally the bucket behind it.
#[derive(Clone, Debug)]
pub struct Recordings {
    dir: PathBuf,
    objects: Option<Objects>,
}

#[derive(Clone)]
struct Objects {
    store: Arc<AmazonS3>,
    bucket: String,
    prefix: String,
    /// For messages: `s3://bucket/prefix`.
    name: String,
}

impl std::fmt::Debug for Objects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

impl Recordings {
    /// Recordings kept in `dir` only.
    pub fn local(dir: PathBuf) -> Recordings {
        Recordings { dir, objects: None }
    }

    /// Recordings spooled in `dir` and kept in the bucket of `config`.
    pub fn with_objects(
        dir: PathBuf,
        config: &ObjectStoreConfig,
    ) -> Result<Recordings, ObjectError> {
        // HTTPS through rustls with ring, as the rest of rampart; the
        // process-wide default, installed once (a second install is a no-op
        // error). ring lacks post-quantum key exchange, hence the warning;
        // aws-lc-rs would bring a C build.
        #[allow(deprecated)]
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            // Fail fast: a failed upload waits in the spool for the next
            // pass, instead of holding it for minutes of retries.
            .with_retry(RetryConfig {
                max_retries: 2,
                retry_timeout: Duration::from_secs(20),
                ..RetryConfig::default()
            });
        if let Some(endpoint) = &config.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        if let Some(id) = &config.access_key_id {
            builder = builder.with_access_key_id(id);
        }
        if let Some(secret) = &config.secret_access_key {
            builder = builder.with_secret_access_key(&secret.0);
        }
        let store = builder
            .build()
            .map_err(|e| ObjectError::Config(e.to_string()))?;
        let name = format!("s3://{}/{}", config.bucket, config.prefix);
        Ok(Recordings {
            dir,
            objects: Some(Objects {
                store: Arc::new(store),
                bucket: config.bucket.clone(),
                prefix: config.prefix.clone(),
                name,
            }),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether recordings go to an object store.
    pub fn has_objects(&self) -> bool {
        self.objects.is_some()
    }

    /// The object store's name (`s3://bucket/prefix`), if any.
    pub fn objects_name(&self) -> Option<&str> {
        self.objects.as_ref().map(|o| o.name.as_str())
    }

    /// The local path of a recording file (relative to the recording dir),
    /// copied from the object store first when it is only there.
    pub async fn fetch(&self, relative: &str) -> Result<PathBuf, ObjectError> {
        let path = self.dir.join(relative);
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Ok(path);
        }
        let Some(objects) = &self.objects else {
            return Err(ObjectError::Missing(relative.to_string()));
        };
        let key = objects.key(relative);
        let got = match objects.store.get(&key).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(ObjectError::Missing(relative.to_string()));
            }
            Err(source) => return Err(objects.error(&key, source)),
        };
        let io = |source| ObjectError::Io {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            private_dirs(parent).await.map_err(io)?;
        }
        // Written beside, then renamed: a reader never sees half a file.
        let partial = path.with_extension("part");
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)
            .await
            .map_err(io)?;
        let mut stream = got.into_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| objects.error(&key, e))?;
            file.write_all(&chunk).await.map_err(io)?;
        }
        file.sync_all().await.map_err(io)?;
        tokio::fs::rename(&partial, &path).await.map_err(io)?;
        Ok(path)
    }

    /// SHA-256 of a recording file as kept: the object when the store has
    /// it (streamed through the hash, one chunk in memory), else the local
    /// file (not uploaded yet, or no store).
    pub async fn sha256(&self, relative: &str) -> Result<String, ObjectError> {
        let mut h = Sha256::new();
        if let Some(objects) = &self.objects {
            let key = objects.key(relative);
            match objects.store.get(&key).await {
                Ok(got) => {
                    let mut stream = got.into_stream();
                    while let Some(chunk) = stream.next().await {
                        h.update(&chunk.map_err(|e| objects.error(&key, e))?);
                    }
                    return Ok(hex::encode(h.finalize()));
                }
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(objects.error(&key, e)),
            }
        }
        let path = self.dir.join(relative);
        let io = |source| ObjectError::Io {
            path: path.clone(),
            source,
        };
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ObjectError::Missing(relative.to_string()));
            }
            Err(e) => return Err(io(e)),
        };
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = file.read(&mut buf).await.map_err(io)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        Ok(hex::encode(h.finalize()))
    }

    /// Copies one local recording file to the object store, in parts; its
    /// size. The local file stays (the caller removes it once it need not
    /// be read locally any more).
    pub async fn upload(&self, relative: &str) -> Result<u64, ObjectError> {
        let live = self.begin_live(relative).await?;
        self.finish_live(live, relative).await
    }

    /// Starts the upload of a recording file that may still grow (its
    /// session runs): nothing is sent yet.
    pub async fn begin_live(&self, relative: &str) -> Result<LiveUpload, ObjectError> {
        let Some(objects) = &self.objects else {
            return Err(ObjectError::Config("no object store is configured".into()));
        };
        let key = objects.key(relative);
        let upload = objects
            .store
            .put_multipart(&key)
            .await
            .map_err(|e| objects.error(&key, e))?;
        Ok(LiveUpload {
            key,
            writer: WriteMultipart::new_with_chunk_size(upload, PART),
            sent: 0,
        })
    }

    /// Sends the whole parts a growing file holds past what was sent, and
    /// waits for them to land (nothing stays buffered between calls); the
    /// bytes sent so far. The file is append-only: what was sent does not
    /// change.
    pub async fn advance_live(
        &self,
        live: &mut LiveUpload,
        relative: &str,
    ) -> Result<u64, ObjectError> {
        let path = self.dir.join(relative);
        let size = tokio::fs::metadata(&path)
            .await
            .map_err(|source| ObjectError::Io {
                path: path.clone(),
                source,
            })?
            .len();
        let whole = size.saturating_sub(live.sent) / PART as u64 * PART as u64;
        if whole > 0 {
            self.send(live, relative, Some(live.sent + whole)).await?;
        }
        Ok(live.sent)
    }

    /// Sends the rest of the file and completes the object; its size,
    /// checked against what was read. On an error the upload is abandoned
    /// (the next try starts over).
    pub async fn finish_live(
        &self,
        mut live: LiveUpload,
        relative: &str,
    ) -> Result<u64, ObjectError> {
        let Some(objects) = &self.objects else {
            return Err(ObjectError::Config("no object store is configured".into()));
        };
        if let Err(e) = self.send(&mut live, relative, None).await {
            let _ = live.writer.abort().await;
            return Err(e);
        }
        let LiveUpload { key, writer, sent } = live;
        writer.finish().await.map_err(|e| objects.error(&key, e))?;
        // What landed is what was read.
        let meta = objects
            .store
            .head(&key)
            .await
            .map_err(|e| objects.error(&key, e))?;
        if meta.size != sent {
            return Err(ObjectError::Config(format!(
                "object {key} holds {} bytes after uploading {sent}",
                meta.size
            )));
        }
        Ok(sent)
    }

    /// Reads the file from what was sent up to `upto` (its end with
    /// `None`) into the upload, one part in flight at most.
    async fn send(
        &self,
        live: &mut LiveUpload,
        relative: &str,
        upto: Option<u64>,
    ) -> Result<(), ObjectError> {
        let Some(objects) = &self.objects else {
            return Err(ObjectError::Config("no object store is configured".into()));
        };
        let path = self.dir.join(relative);
        let io = |source| ObjectError::Io {
            path: path.clone(),
            source,
        };
        let mut file = tokio::fs::File::open(&path).await.map_err(io)?;
        file.seek(std::io::SeekFrom::Start(live.sent))
            .await
            .map_err(io)?;
        let mut buf = vec![0u8; READ];
        loop {
            let room = upto.map_or(READ as u64, |upto| upto.saturating_sub(live.sent));
            let want = usize::try_from(room.min(READ as u64)).unwrap_or(READ);
            if want == 0 {
                break;
            }
            let n = read_full(&mut file, &mut buf[..want]).await.map_err(io)?;
            if n == 0 {
                break;
            }
            live.writer
                .wait_for_capacity(PARTS_IN_FLIGHT)
                .await
                .map_err(|e| objects.error(&live.key, e))?;
            live.writer.write(&buf[..n]);
            live.sent += n as u64;
        }
        if upto.is_some() {
            live.writer
                .wait_for_capacity(0)
                .await
                .map_err(|e| objects.error(&live.key, e))?;
        }
        Ok(())
    }

    /// Bytes `range` of a recording file's object: `None` when there is no
    /// object store or no such object. One request; the caller bounds the
    /// range (a search reads one block, at most a few MiB).
    pub async fn object_range(
        &self,
        relative: &str,
        range: std::ops::Range<u64>,
    ) -> Result<Option<Vec<u8>>, ObjectError> {
        let Some(objects) = &self.objects else {
            return Ok(None);
        };
        let key = objects.key(relative);
        if range.is_empty() {
            return Ok(Some(Vec::new()));
        }
        match objects.store.get_range(&key, range).await {
            Ok(bytes) => Ok(Some(bytes.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(objects.error(&key, e)),
        }
    }

    /// Whether the object of a recording file exists, and its size.
    pub async fn object_size(&self, relative: &str) -> Result<Option<u64>, ObjectError> {
        let Some(objects) = &self.objects else {
            return Ok(None);
        };
        let key = objects.key(relative);
        match objects.store.head(&key).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(objects.error(&key, e)),
        }
    }
}

impl Objects {
    fn key(&self, relative: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(relative)
        } else {
            ObjectPath::from(format!("{}/{relative}", self.prefix))
        }
    }

    fn error(&self, key: &ObjectPath, source: object_store::Error) -> ObjectError {
        ObjectError::Store {
            key: format!("s3://{}/{key}", self.bucket),
            source,
        }
    }
}

/// Reads until `buf` is full or the file ends; the bytes read.
async fn read_full(file: &mut tokio::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = file.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

async fn private_dirs(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
    })
    .await
    .map_err(std::io::Error::other)?
}
