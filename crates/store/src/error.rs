use cloudfilm_crypto::CryptoError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("the storage is full")]
    Full,
    #[error("storage I/O failed: {0}")]
    Io(std::io::Error),
    #[error("stored data failed its integrity check")]
    Integrity,
    #[error("database: {0}")]
    Database(String),
    #[error("the store is shutting down")]
    Closed,
    /// The database or the object store cannot be reached now; worth a retry.
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Crypto(CryptoError),
}

impl StoreError {
    /// Whether a write failed for want of working storage, which answers "out of resources"
    /// (HTTP 507, 0xA700; S2): the disk is full, or it returned an I/O error.
    pub fn is_out_of_resources(&self) -> bool {
        self.write_refusal().is_some()
    }

    /// What the client is told when a write failed for want of working storage.
    pub fn write_refusal(&self) -> Option<&'static str> {
        match self {
            StoreError::Full => Some("the archive is out of storage space"),
            StoreError::Io(_) => Some("the archive's storage failed to write the instance (I/O error)"),
            _ => None,
        }
    }
}

/// ENOSPC and EDQUOT mean "full"; every other I/O failure stays an I/O failure.
pub fn classify_io(e: std::io::Error) -> StoreError {
    match e.raw_os_error() {
        Some(28) | Some(122) => StoreError::Full,
        _ if e.kind() == std::io::ErrorKind::StorageFull => StoreError::Full,
        _ => StoreError::Io(e),
    }
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::InvalidData {
            return StoreError::Integrity;
        }
        classify_io(e)
    }
}

impl From<CryptoError> for StoreError {
    fn from(e: CryptoError) -> Self {
        match e {
            CryptoError::Integrity => StoreError::Integrity,
            CryptoError::Io(io) => io.into(),
            other => StoreError::Crypto(other),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db) if db.message().contains("database or disk is full") => StoreError::Full,
            sqlx::Error::Io(io) if matches!(io.raw_os_error(), Some(28) | Some(122)) => StoreError::Full,
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
            _ => StoreError::Database(e.to_string()),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
