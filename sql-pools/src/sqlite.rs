//! SQLite, the embedded default: a file under the data folder, in WAL mode so readers never
//! wait for the writer.

use std::path::Path;

use sqlx::{Executor as _, any::AnyPoolOptions};

use crate::{Backend, OpenError, Pools, pool_options};

/// The file path of a `sqlite:` URL, if it names a file (not `:memory:`).
fn file_path(url: &str) -> Option<&Path> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && !path.starts_with(":memory:")).then(|| Path::new(path))
}

/// Adds `mode=rwc` so a missing database file is created.
fn with_create_mode(url: &str) -> String {
    if url.contains("mode=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

fn tuned(options: AnyPoolOptions) -> AnyPoolOptions {
    // No ping before each checkout: a connection to a local file does not go stale, and the
    // ping was a round trip to the connection's thread per query (two thread wake-ups).
    options
        .test_before_acquire(false)
        .after_connect(|connection, _| {
            Box::pin(async move {
                connection
                    .execute(
                        // 1 MiB of page cache per connection instead of 2: the pages are in the
                        // OS's cache too, and every pooled connection keeps its cache for life
                        // (hangout-core's peak RSS 79 -> 70 MB, BENCHMARKS.md).
                        "pragma journal_mode = wal; pragma synchronous = normal; \
                     pragma foreign_keys = on; pragma busy_timeout = 10000; \
                     pragma cache_size = -1024;",
                    )
                    .await?;
                Ok(())
            })
        })
}

/// At most one reader per core, twice: an SQLite read is CPU work on the connection's own
/// thread, so more readers than that only add threads, page caches and allocator arenas.
fn readers() -> u32 {
    std::thread::available_parallelism()
        .map_or(2, |cores| u32::try_from(cores.get()).unwrap_or(u32::MAX))
        .saturating_mul(2)
}

pub(super) async fn open(url: &str, max_connections: u32) -> Result<Pools, OpenError> {
    if let Some(parent) = file_path(url).and_then(Path::parent)
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(OpenError::CreateFolder)?;
    }
    let url = with_create_mode(url);
    let write = tuned(pool_options(1))
        .connect(&url)
        .await
        .map_err(OpenError::Connect)?;
    let read = tuned(pool_options(max_connections.min(readers())))
        .connect(&url)
        .await
        .map_err(OpenError::Connect)?;
    Ok(Pools {
        read,
        write,
        backend: Backend::Sqlite,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_file_of_a_url() {
        assert_eq!(file_path("sqlite:data/h.db"), Some(Path::new("data/h.db")));
        assert_eq!(
            file_path("sqlite:///tmp/h.db?mode=rwc"),
            Some(Path::new("/tmp/h.db"))
        );
        assert_eq!(file_path("sqlite::memory:"), None);
        assert_eq!(with_create_mode("sqlite:a.db"), "sqlite:a.db?mode=rwc");
        assert_eq!(
            with_create_mode("sqlite:a.db?mode=ro"),
            "sqlite:a.db?mode=ro"
        );
    }
}
