//! The worker's side of processing: claim a job, render the original, write the renditions,
//! finish the job (see [`crate::domain::processing`] for the rules).

use crate::domain::{
    Service,
    error::DomainError,
    file::FileRecord,
    ids::FileId,
    objects::{ObjectError, ObjectStorage},
    processing::{ImageFacts, Job, JobOutcome, Renderer, rendition_key, rendition_type, retry_at},
    store::{FileStore, JobStore},
    time::Timestamp,
};

/// How one job ended, for logs and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobReport {
    /// Renditions written; the file is READY.
    Ready,
    /// The image cannot be rendered; the file is FAILED.
    Failed,
    /// The attempt failed for another reason; the job waits for the next.
    Retried,
    /// The job ran out of attempts; the file is FAILED and the job kept, DEAD.
    DeadLettered,
    /// The file was deleted meanwhile; what the job wrote was removed again.
    Discarded,
}

impl JobReport {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "ready",
            Self::Failed => "failed",
            Self::Retried => "retried",
            Self::DeadLettered => "dead_lettered",
            Self::Discarded => "discarded",
        }
    }
}

/// What an attempt made of the image.
enum Attempt {
    Rendered(ImageFacts),
    Refused(String),
}

impl<S: FileStore + JobStore, O: ObjectStorage> Service<S, O> {
    /// Claims the next due job and does it; `None` when no job is due.
    ///
    /// # Errors
    /// When the database fails while claiming or finishing (the job's lease then runs out and
    /// it is done again).
    pub async fn process_next<R: Renderer>(
        &self,
        renderer: &R,
    ) -> Result<Option<(FileId, JobReport)>, DomainError> {
        let now = Timestamp::now();
        let Some(job) = self
            .store
            .claim_job(now, now.plus(self.settings.job_lease))
            .await?
        else {
            return Ok(None);
        };
        let id = job.file.id;
        Ok(Some((id, self.run(job, renderer).await?)))
    }

    /// Claims the job of `file` and does it; `None` when it is not due (done, deleted, or
    /// held by another worker: then it is published again once that lease has run out).
    ///
    /// # Errors
    /// As [`Service::process_next`].
    pub async fn process_job<R: Renderer>(
        &self,
        file: FileId,
        renderer: &R,
    ) -> Result<Option<JobReport>, DomainError> {
        let now = Timestamp::now();
        let Some(job) = self
            .store
            .claim_job_of(file, now, now.plus(self.settings.job_lease))
            .await?
        else {
            // Done or deleted (then nothing changes), or leased by a worker that may have died:
            // publish it again once the lease has run out.
            self.store.unpublish_job(file).await?;
            return Ok(None);
        };
        Ok(Some(self.run(job, renderer).await?))
    }

    /// Due jobs whose message is not out (or went out before `published_before`).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn unpublished_jobs(
        &self,
        now: Timestamp,
        published_before: Timestamp,
        limit: u32,
    ) -> Result<Vec<FileId>, DomainError> {
        Ok(self
            .store
            .unpublished_jobs(now, published_before, limit)
            .await?)
    }

    /// Records that the messages of these jobs went out.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn jobs_published(&self, files: &[FileId], at: Timestamp) -> Result<(), DomainError> {
        Ok(self.store.jobs_published(files, at).await?)
    }

    /// Does a claimed job.
    async fn run<R: Renderer>(&self, job: Job, renderer: &R) -> Result<JobReport, DomainError> {
        let id = job.file.id;
        let report = match self.attempt(&job, renderer).await {
            Ok(Attempt::Rendered(facts)) => {
                if self.store.finish_job(id, &JobOutcome::Ready(facts)).await? {
                    JobReport::Ready
                } else {
                    self.remove_renditions(&job.file).await;
                    JobReport::Discarded
                }
            }
            Ok(Attempt::Refused(reason)) => {
                self.store
                    .finish_job(id, &JobOutcome::Failed(reason))
                    .await?;
                JobReport::Failed
            }
            Err(error) => {
                let text = telemetry::ErrorChain(&error).to_string();
                tracing::warn!(file = %id, attempt = job.attempt, error = %text, "processing attempt failed");
                match retry_at(Timestamp::now(), job.attempt, self.settings.job_retry_delay) {
                    Some(at) => {
                        self.store.retry_job(id, at, &text).await?;
                        JobReport::Retried
                    }
                    None => {
                        self.store.dead_letter(id, &text).await?;
                        JobReport::DeadLettered
                    }
                }
            }
        };
        Ok(report)
    }

    /// Resolves once this process has queued a job (see [`JobStore::jobs_queued`]).
    pub async fn jobs_queued(&self) {
        self.store.jobs_queued().await;
    }

    /// An attempt fails (and is retried) only when object storage does: anything wrong with
    /// the image itself is a refusal.
    async fn attempt<R: Renderer>(&self, job: &Job, renderer: &R) -> Result<Attempt, ObjectError> {
        let file = &job.file;
        // Confirm checked the size; an object grown since (overwritten by a late PUT through a
        // still-valid upload URL) is not the confirmed file.
        if self.objects.object_size(&file.object_key).await? != Some(file.size) {
            return Ok(Attempt::Refused(
                "the uploaded object is gone or changed".to_owned(),
            ));
        }
        let Some(bytes) = self.objects.fetch(&file.object_key).await? else {
            return Ok(Attempt::Refused("the uploaded object is gone".to_owned()));
        };
        let rendered = match renderer.render(file.image, bytes).await {
            Ok(rendered) => rendered,
            Err(failure) => return Ok(Attempt::Refused(failure.to_string())),
        };
        let content_type = rendition_type(file.image).content_type();
        for (size, bytes) in rendered.renditions {
            self.objects
                .put(&rendition_key(file, size), bytes, content_type)
                .await?;
        }
        Ok(Attempt::Rendered(rendered.facts))
    }

    /// Best effort. A failure here leaves renditions of a deleted file; while its DELETING
    /// record is kept (through its upload window) the sweeper removes them with it, after that
    /// only a reconciliation of the bucket with the table would (not built yet).
    async fn remove_renditions(&self, file: &FileRecord) {
        for size in crate::domain::processing::ImageSize::ALL {
            if let Err(error) = self.objects.delete(&rendition_key(file, size)).await {
                tracing::warn!(
                    error = %telemetry::ErrorChain(&error),
                    file = %file.id,
                    "removing a rendition of a deleted file failed"
                );
            }
        }
    }
}
