//! Seeds the data set straight over gRPC, with the gateway's client certificate: users with
//! activities and hangouts, and for the active users (one per virtual user) photo memories
//! through the real upload flow (file records, a presigned PUT of real PNG bytes to the
//! embedded S3, confirmation, attachment, marking uploaded).

use std::{future::Future, sync::Arc, time::Instant};

use anyhow::Context as _;
use base64::Engine as _;
use md5::Digest as _;
use proto::{file::v1 as file_pb, hangout::v1 as pb};
use tokio::{sync::Semaphore, task::JoinSet};

use crate::bench::grpc::{Backends, as_user};

/// How much to seed.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub users: usize,
    pub hangouts_per_user: usize,
    /// Users who take part in the load, one per virtual user.
    pub active_users: usize,
    /// Hangouts of each active user: enough for a page of 100.
    pub hangouts_per_active_user: usize,
    pub activities_per_user: usize,
    pub activities_per_hangout: usize,
    /// The most memories a hangout of an active user has (counts spread evenly from 0).
    pub max_memories_per_hangout: usize,
    /// Memories of the hangout the `detail` scenario reads.
    pub detail_memories: usize,
}

/// The password of every seeded user.
pub const PASSWORD: &str = "bench-password-1";

/// A user who takes part in the load.
#[derive(Clone, Debug)]
pub struct ActiveUser {
    pub email: String,
    pub user_id: String,
    /// The hangout with `detail_memories` memories.
    pub detail_hangout: String,
    /// The hangout that receives the `upload` scenario's batches.
    pub upload_hangout: String,
}

/// What was seeded.
#[derive(Clone, Debug, Default)]
pub struct Seeded {
    pub active: Vec<ActiveUser>,
    pub users: usize,
    pub activities: usize,
    pub hangouts: usize,
    pub memories: usize,
    pub seconds: f64,
}

/// The email of seeded user `index`.
pub fn email(index: usize) -> String {
    format!("bench-user-{index}@example.com")
}

/// A 1×1 PNG (one orange pixel), valid throughout: file-core checks the magic numbers at
/// confirm, and its worker decodes the whole image into renditions.
pub const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0xF8, 0xDF, 0xC0, 0xF0,
    0x1F, 0x00, 0x06, 0x80, 0x02, 0x7F, 0x10, 0x4C, 0x1B, 0xE1, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
];

/// Base64 of the MD5 digest of `bytes`, as in a Content-MD5 header.
pub fn content_md5(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(bytes))
}

/// How many memories the `index`-th hangout of an active user gets: every count from 0 to
/// `max` in turn (13 and 21 are coprime), averaging `max / 2`.
pub fn memories_of_hangout(index: usize, max: usize) -> usize {
    (index * 13 % 21) * max / 20
}

const ACTIVITY_NAMES: [&str; 10] = [
    "Hiking",
    "Board games",
    "Cinema",
    "Climbing",
    "Cooking",
    "Karaoke",
    "Picnic",
    "Museum",
    "Cycling",
    "Concert",
];

/// Runs `task(0..count)` with at most `concurrency` at once; results in index order.
pub async fn for_each<T, F, Fut>(
    count: usize,
    concurrency: usize,
    task: F,
) -> anyhow::Result<Vec<T>>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<T>> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let task = Arc::new(task);
    let mut tasks = JoinSet::new();
    for index in 0..count {
        let permits = Arc::clone(&permits);
        let task = Arc::clone(&task);
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await?;
            task(index).await.map(|value| (index, value))
        });
    }
    let mut results = Vec::with_capacity(count);
    while let Some(joined) = tasks.join_next().await {
        results.push(joined??);
    }
    results.sort_by_key(|(index, _)| *index);
    Ok(results.into_iter().map(|(_, value)| value).collect())
}

/// Seeds `plan`, `concurrency` users at a time.
///
/// # Errors
/// The first failed call.
pub async fn seed(backends: &Backends, plan: Plan, concurrency: usize) -> anyhow::Result<Seeded> {
    let started = Instant::now();
    let http = reqwest::Client::new();
    let backends = backends.clone();
    let per_user = for_each(plan.users, concurrency, move |index| {
        let backends = backends.clone();
        let http = http.clone();
        async move { seed_user(&backends, &http, plan, index).await }
    })
    .await?;
    let mut seeded = Seeded {
        users: plan.users,
        ..Seeded::default()
    };
    for (active, counts) in per_user {
        seeded.activities += counts.activities;
        seeded.hangouts += counts.hangouts;
        seeded.memories += counts.memories;
        seeded.active.extend(active);
    }
    seeded.seconds = started.elapsed().as_secs_f64();
    Ok(seeded)
}

#[derive(Default)]
struct Counts {
    activities: usize,
    hangouts: usize,
    memories: usize,
}

async fn seed_user(
    backends: &Backends,
    http: &reqwest::Client,
    plan: Plan,
    index: usize,
) -> anyhow::Result<(Option<ActiveUser>, Counts)> {
    let email = email(index);
    let user = backends
        .auth()
        .sign_up(pb::SignUpRequest {
            name: format!("Bench User {index}"),
            email: email.clone(),
            password: PASSWORD.to_owned(),
        })
        .await
        .with_context(|| format!("sign-up of {email}"))?
        .into_inner()
        .user
        .context("sign-up answered without a user")?;
    let user_id = user.id;
    let mut counts = Counts::default();
    let mut activity_ids = Vec::new();
    for name in ACTIVITY_NAMES.iter().take(plan.activities_per_user) {
        let activity = backends
            .activities()
            .create_activity(as_user(
                &user_id,
                pb::CreateActivityRequest {
                    name: (*name).to_owned(),
                },
            ))
            .await
            .context("create activity")?
            .into_inner();
        activity_ids.push(activity.id);
    }
    counts.activities = activity_ids.len();
    let active = index < plan.active_users;
    let mut active_user = None;
    if active {
        // Created first, so the newest-first pages never show them.
        let upload_hangout = create_hangout(backends, &user_id, &activity_ids, plan, 0).await?;
        let detail_hangout = create_hangout(backends, &user_id, &activity_ids, plan, 1).await?;
        counts.hangouts += 2;
        counts.memories += add_memories(
            backends,
            http,
            &user_id,
            &detail_hangout,
            plan.detail_memories,
        )
        .await?;
        active_user = Some(ActiveUser {
            email,
            user_id: user_id.clone(),
            detail_hangout,
            upload_hangout,
        });
    }
    let hangouts = if active {
        plan.hangouts_per_active_user
    } else {
        plan.hangouts_per_user
    };
    for number in 0..hangouts {
        let hangout = create_hangout(backends, &user_id, &activity_ids, plan, number + 2).await?;
        counts.hangouts += 1;
        if active {
            let count = memories_of_hangout(number, plan.max_memories_per_hangout);
            counts.memories += add_memories(backends, http, &user_id, &hangout, count).await?;
        }
    }
    Ok((active_user, counts))
}

async fn create_hangout(
    backends: &Backends,
    user_id: &str,
    activity_ids: &[String],
    plan: Plan,
    number: usize,
) -> anyhow::Result<String> {
    let chosen = (0..plan.activities_per_hangout.min(activity_ids.len()))
        .map(|offset| activity_ids[(number + offset) % activity_ids.len()].clone())
        .collect();
    let statuses = [
        pb::HangoutStatus::Planning,
        pb::HangoutStatus::Confirmed,
        pb::HangoutStatus::Executed,
        pb::HangoutStatus::Cancelled,
    ];
    let day = i64::try_from(number).unwrap_or_default();
    let hangout = backends
        .hangouts()
        .create_hangout(as_user(
            user_id,
            pb::CreateHangoutRequest {
                title: format!("Hangout number {number}"),
                description: Some(format!(
                    "Meet at **the usual place** around {} o'clock.\n\n- bring snacks\n- \
                     bring [the map](https://example.com/map)",
                    number % 12 + 1
                )),
                date: Some(prost_types::Timestamp {
                    seconds: 1_790_000_000 + day * 86_400,
                    nanos: 0,
                }),
                status: statuses[number % statuses.len()] as i32,
                activity_ids: chosen,
            },
        ))
        .await
        .context("create hangout")?
        .into_inner();
    Ok(hangout.id)
}

/// Adds `count` uploaded PNG memories to a hangout through the whole upload flow, in batches
/// of at most 10 (the services' limit).
async fn add_memories(
    backends: &Backends,
    http: &reqwest::Client,
    user_id: &str,
    hangout_id: &str,
    count: usize,
) -> anyhow::Result<usize> {
    let md5 = content_md5(PNG);
    let size = u64::try_from(PNG.len())?;
    let mut done = 0;
    while done < count {
        let batch: Vec<usize> = (done..count.min(done + 10)).collect();
        let memories = backends
            .memories()
            .create_memories(as_user(
                user_id,
                pb::CreateMemoriesRequest {
                    hangout_id: hangout_id.to_owned(),
                    files: batch
                        .iter()
                        .map(|number| pb::MemoryFile {
                            file_name: format!("photo-{number}.png"),
                            content_type: "image/png".to_owned(),
                            size,
                        })
                        .collect(),
                },
            ))
            .await
            .context("create memories")?
            .into_inner()
            .memories;
        let uploads = backends
            .files()
            .create_uploads(as_user(
                user_id,
                file_pb::CreateUploadsRequest {
                    hangout_id: hangout_id.to_owned(),
                    files: memories
                        .iter()
                        .map(|memory| file_pb::UploadFile {
                            memory_id: memory.id.clone(),
                            file_name: memory.file_name.clone(),
                            content_type: memory.content_type.clone(),
                            size,
                            md5: md5.clone(),
                        })
                        .collect(),
                },
            ))
            .await
            .context("create uploads")?
            .into_inner()
            .uploads;
        backends
            .memories()
            .attach_memory_files(as_user(
                user_id,
                pb::AttachMemoryFilesRequest {
                    links: uploads
                        .iter()
                        .map(|upload| pb::MemoryFileLink {
                            memory_id: upload.memory_id.clone(),
                            file_id: upload.file_id.clone(),
                        })
                        .collect(),
                },
            ))
            .await
            .context("attach memory files")?;
        for upload in &uploads {
            put(http, upload).await?;
        }
        let confirmed = backends
            .files()
            .confirm_uploads(as_user(
                user_id,
                file_pb::ConfirmUploadsRequest {
                    file_ids: uploads
                        .iter()
                        .map(|upload| upload.file_id.clone())
                        .collect(),
                },
            ))
            .await
            .context("confirm uploads")?
            .into_inner();
        if let Some(failure) = confirmed.failures.first() {
            anyhow::bail!("an upload was not confirmed: {}", failure.message);
        }
        backends
            .memories()
            .mark_memories_uploaded(as_user(
                user_id,
                pb::MarkMemoriesUploadedRequest {
                    ids: memories.iter().map(|memory| memory.id.clone()).collect(),
                },
            ))
            .await
            .context("mark memories uploaded")?;
        done += batch.len();
    }
    Ok(count)
}

/// PUTs the PNG to a presigned URL with exactly the signed headers.
async fn put(http: &reqwest::Client, upload: &file_pb::Upload) -> anyhow::Result<()> {
    put_bytes(http, upload, PNG.to_vec()).await
}

/// PUTs `body` to a presigned URL with exactly the signed headers.
pub(super) async fn put_bytes(
    http: &reqwest::Client,
    upload: &file_pb::Upload,
    body: Vec<u8>,
) -> anyhow::Result<()> {
    let mut request = http.put(&upload.url).body(body);
    for header in &upload.headers {
        // reqwest sets Content-Length from the body, which has the declared size.
        if !header.name.eq_ignore_ascii_case("content-length") {
            request = request.header(&header.name, &header.value);
        }
    }
    let response = request.send().await.context("PUT to the presigned URL")?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        anyhow::bail!("presigned PUT answered {status}: {body}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_counts_cover_zero_to_max_evenly() {
        let counts: Vec<usize> = (0..21)
            .map(|index| memories_of_hangout(index, 20))
            .collect();
        let mut sorted = counts.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..=20).collect::<Vec<_>>());
        assert_eq!(memories_of_hangout(1, 10), 6);
    }

    #[test]
    fn content_md5_is_base64_of_the_digest() {
        // RFC 1321 test vector: MD5("") = d41d8cd98f00b204e9800998ecf8427e.
        assert_eq!(content_md5(b""), "1B2M2Y8AsgTpgAmY7PhCfg==");
    }
}
