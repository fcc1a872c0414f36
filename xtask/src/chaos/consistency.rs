//! What the chaos run checks once the load has stopped: hangout-core's memories, file-core's
//! files and the bucket's objects agree. Read straight from both databases and the bucket
//! (moto, bypassing the cut link), which only this check may do: the services themselves
//! ask each other over gRPC.
//!
//! Inconsistencies (target 0): an UPLOADED memory whose file is not UPLOADED, an UPLOADED
//! file whose memory is gone, an object whose file has no record. Left over (must reach 0
//! within the sweepers' window too, as they are work in progress): PENDING memories and
//! files, files being deleted, deletions hangout-core still owes file-core.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    time::{Duration, Instant},
};

use test_support::MotoServer;

use super::databases::Databases;

/// What one look found.
#[derive(Debug, Default)]
pub struct Found {
    pub memories_without_file: Vec<String>,
    pub files_without_memory: Vec<String>,
    pub objects_without_record: Vec<String>,
    pub left_over: BTreeMap<&'static str, usize>,
    pub memories: usize,
    pub files: usize,
    pub objects: usize,
    /// How long after the load stopped everything had settled (or the last look).
    pub after: Duration,
}

impl Found {
    pub fn inconsistencies(&self) -> usize {
        self.memories_without_file.len()
            + self.files_without_memory.len()
            + self.objects_without_record.len()
    }

    fn settled(&self) -> bool {
        self.inconsistencies() == 0 && self.left_over.values().all(|count| *count == 0)
    }
}

impl fmt::Display for Found {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            formatter,
            "consistency after {} s: {} memories, {} files, {} objects",
            self.after.as_secs(),
            self.memories,
            self.files,
            self.objects
        )?;
        writeln!(
            formatter,
            "inconsistencies: {} (memories without their file {:?}, files without their memory {:?}, objects without their record {:?})",
            self.inconsistencies(),
            self.memories_without_file,
            self.files_without_memory,
            self.objects_without_record
        )?;
        write!(formatter, "left over: {:?}", self.left_over)
    }
}

/// Looks every 2 s until everything agrees and nothing is left over, or `limit` passes;
/// returns the last look.
///
/// # Errors
/// When a database or the bucket cannot be read.
pub async fn settle(
    database: &Databases,
    moto: &MotoServer,
    bucket: &str,
    limit: Duration,
) -> anyhow::Result<Found> {
    let started = Instant::now();
    let http = reqwest::Client::new();
    loop {
        let mut found = look(database, &http, moto, bucket).await?;
        found.after = started.elapsed();
        if found.settled() || started.elapsed() > limit {
            return Ok(found);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

async fn look(
    database: &Databases,
    http: &reqwest::Client,
    moto: &MotoServer,
    bucket: &str,
) -> anyhow::Result<Found> {
    let memories = rows(database.query(
        "chaos_hangout",
        "select id, coalesce(file_id, ''), status from memories",
    )?);
    let files = rows(database.query("chaos_file", "select id, memory_id, status from files")?);
    let owed = database.query("chaos_hangout", "select count(*) from file_deletions")?;
    let objects = list_bucket(http, moto, bucket).await?;

    let memory_ids: BTreeSet<&str> = memories.iter().map(|row| row[0].as_str()).collect();
    let file_status: BTreeMap<&str, &str> = files
        .iter()
        .map(|row| (row[0].as_str(), row[2].as_str()))
        .collect();
    let mut found = Found {
        memories: memories.len(),
        files: files.len(),
        objects: objects.len(),
        ..Found::default()
    };
    for row in &memories {
        if row[2] == "UPLOADED" && file_status.get(row[1].as_str()) != Some(&"UPLOADED") {
            found.memories_without_file.push(row[0].clone());
        }
    }
    for row in &files {
        if row[2] == "UPLOADED" && !memory_ids.contains(row[1].as_str()) {
            found.files_without_memory.push(row[0].clone());
        }
    }
    for key in &objects {
        let owner = file_of(key);
        if !owner.is_some_and(|file| file_status.contains_key(file)) {
            found.objects_without_record.push(key.clone());
        }
    }
    let count =
        |rows: &[Vec<String>], status: &str| rows.iter().filter(|row| row[2] == status).count();
    found
        .left_over
        .insert("pending memories", count(&memories, "PENDING"));
    found
        .left_over
        .insert("pending files", count(&files, "PENDING"));
    found
        .left_over
        .insert("files being deleted", count(&files, "DELETING"));
    found
        .left_over
        .insert("owed deletions", owed.trim().parse().unwrap_or(usize::MAX));
    Ok(found)
}

fn rows(text: String) -> Vec<Vec<String>> {
    text.lines()
        .filter(|line| !line.is_empty())
        .map(|line| line.split('\t').map(str::to_owned).collect::<Vec<_>>())
        .filter(|row| row.len() == 3)
        .collect()
}

/// The file id in an object key: `hangouts/{h}/memories/{m}/{file}.{ext}` (an original) or
/// `media/hangouts/{h}/memories/{m}/{file}/{size}.{ext}` (a rendition).
fn file_of(key: &str) -> Option<&str> {
    let mut segments = key.split('/').skip_while(|segment| *segment != "memories");
    segments.next()?;
    segments.next()?;
    let file = segments.next()?;
    Some(file.split('.').next().unwrap_or(file))
}

/// Every key of the bucket, from moto directly (it does not check signatures).
async fn list_bucket(
    http: &reqwest::Client,
    moto: &MotoServer,
    bucket: &str,
) -> anyhow::Result<Vec<String>> {
    let mut keys = Vec::new();
    let mut continuation: Option<String> = None;
    loop {
        let mut url = format!("{}/{bucket}?list-type=2&max-keys=1000", moto.endpoint());
        if let Some(token) = &continuation {
            url.push_str("&continuation-token=");
            url.push_str(&percent(token));
        }
        let body = http
            .get(&url)
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        keys.extend(elements(&body, "Key"));
        continuation = elements(&body, "NextContinuationToken").into_iter().next();
        if continuation.is_none() {
            return Ok(keys);
        }
    }
}

/// The text of every `<name>…</name>` of an XML answer (S3 escapes nothing our keys hold).
fn elements(xml: &str, name: &str) -> Vec<String> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    xml.split(&open)
        .skip(1)
        .filter_map(|part| part.split(&close).next())
        .map(str::to_owned)
        .collect()
}

fn percent(text: &str) -> String {
    text.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
                char::from(byte).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_keys_name_their_file() {
        assert_eq!(file_of("hangouts/h1/memories/m1/f1.jpg"), Some("f1"));
        assert_eq!(
            file_of("media/hangouts/h1/memories/m1/f1/preview.jpg"),
            Some("f1")
        );
        assert_eq!(file_of("elsewhere/x.jpg"), None);
        assert_eq!(
            elements("<a><Key>k1</Key><Key>k2</Key></a>", "Key"),
            ["k1", "k2"]
        );
    }
}
