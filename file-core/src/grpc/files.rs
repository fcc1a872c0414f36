//! `FileService`.

use proto::file::v1::{self as pb, file_service_server::FileService};
use tonic::{Request, Response, Status};

use crate::{
    domain::{
        error::DomainError,
        file::{FileStatus, NewUpload},
        files::FileView,
        ids::{FileId, HangoutId},
        objects::PresignedRequest,
        processing::{ImageSize, Processing},
        uploads::{CreatedUpload, UploadFailure, UploadFailureReason},
    },
    grpc::{SharedService, caller, timestamp},
    metrics::UploadMetrics,
};

fn headers(request: &PresignedRequest) -> Vec<pb::HttpHeader> {
    request
        .headers
        .iter()
        .map(|(name, value)| pb::HttpHeader {
            name: name.clone(),
            value: value.clone(),
        })
        .collect()
}

fn upload_message(upload: CreatedUpload) -> pb::Upload {
    pb::Upload {
        file_id: upload.file.id.to_string(),
        memory_id: upload.file.memory.to_string(),
        headers: headers(&upload.request),
        url: upload.request.url,
        method: upload.request.method,
        expires_at: timestamp(upload.request.expires_at),
    }
}

fn image_size(size: pb::ImageSize) -> Option<ImageSize> {
    match size {
        pb::ImageSize::Unspecified => None,
        pb::ImageSize::Thumbnail => Some(ImageSize::Thumbnail),
        pb::ImageSize::Preview => Some(ImageSize::Preview),
        pb::ImageSize::Full => Some(ImageSize::Full),
    }
}

fn image_size_message(size: ImageSize) -> pb::ImageSize {
    match size {
        ImageSize::Thumbnail => pb::ImageSize::Thumbnail,
        ImageSize::Preview => pb::ImageSize::Preview,
        ImageSize::Full => pb::ImageSize::Full,
    }
}

fn file_message(view: FileView) -> pb::File {
    let file = view.file;
    let processing = match file.processing {
        None => pb::Processing::Unspecified,
        Some(Processing::Queued) => pb::Processing::Queued,
        Some(Processing::Ready) => pb::Processing::Ready,
        Some(Processing::Failed) => pb::Processing::Failed,
    };
    let images = view
        .images
        .into_iter()
        .map(|(size, request)| pb::Image {
            size: image_size_message(size) as i32,
            url: request.url,
            expires_at: timestamp(request.expires_at),
        })
        .collect();
    let status = match file.status {
        FileStatus::Pending => pb::FileStatus::Pending,
        FileStatus::Uploaded => pb::FileStatus::Uploaded,
        // Never shown: DELETING files are filtered out by the domain.
        FileStatus::Deleting => pb::FileStatus::Unspecified,
    };
    pb::File {
        id: file.id.to_string(),
        memory_id: file.memory.to_string(),
        hangout_id: file.hangout.to_string(),
        file_name: file.file_name,
        content_type: file.image.content_type().to_owned(),
        size: file.size,
        status: status as i32,
        download_url: view
            .download
            .as_ref()
            .map(|download| download.url.clone())
            .unwrap_or_default(),
        download_url_expires_at: view
            .download
            .and_then(|download| timestamp(download.expires_at)),
        created_at: timestamp(file.created_at),
        processing: processing as i32,
        width: file.facts.map_or(0, |facts| facts.width),
        height: file.facts.map_or(0, |facts| facts.height),
        taken_at: file
            .facts
            .and_then(|facts| facts.taken_at)
            .and_then(timestamp),
        images,
    }
}

fn failure_message(failure: UploadFailure) -> pb::UploadFailure {
    let reason = match failure.reason {
        UploadFailureReason::NotUploaded => pb::UploadFailureReason::NotUploaded,
        UploadFailureReason::SizeMismatch => pb::UploadFailureReason::SizeMismatch,
        UploadFailureReason::ChecksumMismatch => pb::UploadFailureReason::ChecksumMismatch,
        UploadFailureReason::ContentMismatch => pb::UploadFailureReason::ContentMismatch,
    };
    pb::UploadFailure {
        file_id: failure.file.to_string(),
        reason: reason as i32,
        message: failure.message,
    }
}

/// Ids of a batch read or delete: malformed ids cannot name anything, so they are dropped like
/// unknown ones.
fn lenient_ids(texts: &[String]) -> Vec<FileId> {
    texts
        .iter()
        .filter_map(|text| FileId::parse(text))
        .collect()
}

/// The photo file lifecycle.
pub struct FileGrpc {
    service: SharedService,
    uploads: UploadMetrics,
}

impl FileGrpc {
    #[must_use]
    pub fn new(service: SharedService, uploads: UploadMetrics) -> Self {
        Self { service, uploads }
    }
}

#[tonic::async_trait]
impl FileService for FileGrpc {
    async fn create_uploads(
        &self,
        request: Request<pb::CreateUploadsRequest>,
    ) -> Result<Response<pb::CreateUploadsResponse>, Status> {
        let owner = caller(&request)?;
        let request = request.into_inner();
        let hangout = HangoutId::parse(&request.hangout_id)
            .ok_or_else(|| DomainError::invalid("hangoutId", "is not a valid id"))?;
        let uploads = request
            .files
            .into_iter()
            .map(|file| NewUpload {
                memory_id: file.memory_id,
                file_name: file.file_name,
                content_type: file.content_type,
                size: file.size,
                md5: file.md5,
            })
            .collect();
        let created = self.service.create_uploads(owner, hangout, uploads).await?;
        self.uploads.created();
        Ok(Response::new(pb::CreateUploadsResponse {
            uploads: created.into_iter().map(upload_message).collect(),
        }))
    }

    async fn confirm_uploads(
        &self,
        request: Request<pb::ConfirmUploadsRequest>,
    ) -> Result<Response<pb::ConfirmUploadsResponse>, Status> {
        let owner = caller(&request)?;
        let mut ids = Vec::with_capacity(request.get_ref().file_ids.len());
        for (index, text) in request.get_ref().file_ids.iter().enumerate() {
            let id = FileId::parse(text).ok_or_else(|| {
                DomainError::invalid(format!("fileIds[{index}]"), "is not a valid id")
            })?;
            ids.push(id);
        }
        let outcome = self.service.confirm_uploads(owner, &ids).await?;
        self.uploads
            .confirmed(outcome.failures.iter().map(|failure| failure.reason));
        Ok(Response::new(pb::ConfirmUploadsResponse {
            confirmed: outcome.confirmed.into_iter().map(file_message).collect(),
            failures: outcome.failures.into_iter().map(failure_message).collect(),
        }))
    }

    async fn get_files(
        &self,
        request: Request<pb::GetFilesRequest>,
    ) -> Result<Response<pb::GetFilesResponse>, Status> {
        // The files are not scoped by the caller (see `FileScope::Named`), but what they show
        // depends on it.
        let viewer = caller(&request)?;
        let ids = lenient_ids(&request.get_ref().ids);
        let mut sizes = Vec::new();
        for size in request.get_ref().image_sizes() {
            if let Some(size) = image_size(size)
                && !sizes.contains(&size)
            {
                sizes.push(size);
            }
        }
        let downloads = !request.get_ref().without_download_urls;
        let files = self
            .service
            .files_by_ids(viewer, &ids, &sizes, downloads)
            .await?;
        Ok(Response::new(pb::GetFilesResponse {
            files: files.into_iter().map(file_message).collect(),
        }))
    }

    async fn delete_files(
        &self,
        request: Request<pb::DeleteFilesRequest>,
    ) -> Result<Response<pb::DeleteFilesResponse>, Status> {
        caller(&request)?;
        let ids = lenient_ids(&request.get_ref().ids);
        self.service.delete_files(&ids).await?;
        Ok(Response::new(pb::DeleteFilesResponse {}))
    }
}
