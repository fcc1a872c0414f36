//! The typed client of file-core: one method per RPC of `file.v1`, plus `*_by_ids` helpers
//! that split id lists into calls of at most [`MAX_IDS_PER_CALL`], file-core's limit.

use proto::file::v1::{self as pb, file_service_client::FileServiceClient};
use tonic::transport::Channel;

use crate::backend::{BackendError, CallContext, Client};

/// The most ids file-core takes in one confirm or delete call.
pub const MAX_IDS_PER_CALL: usize = 100;
/// The most ids file-core takes in one get call (a page of 100 hangouts with 5 memories).
pub const MAX_IDS_PER_READ: usize = 500;

/// file-core's service.
#[derive(Clone, Debug)]
pub struct FileCore {
    pub(crate) client: Client,
    files: FileServiceClient<Channel>,
}

impl FileCore {
    pub(crate) fn new(client: Client) -> Self {
        Self {
            files: FileServiceClient::new(client.channel.clone()),
            client,
        }
    }

    rpc!(create_uploads, files, "FileService/CreateUploads", pb::CreateUploadsRequest => pb::CreateUploadsResponse);
    rpc!(confirm_uploads, files, "FileService/ConfirmUploads", pb::ConfirmUploadsRequest => pb::ConfirmUploadsResponse);
    rpc!(get_files, files, "FileService/GetFiles", pb::GetFilesRequest => pb::GetFilesResponse);
    rpc!(delete_files, files, "FileService/DeleteFiles", pb::DeleteFilesRequest => pb::DeleteFilesResponse);

    /// Files by id as the caller sees them, with the URLs of `urls` signed (the download URL,
    /// renditions), in as many calls as file-core's id limit needs (one for a page of 20
    /// hangouts with 5 memories each).
    ///
    /// # Errors
    /// The first failed call.
    pub async fn get_files_by_ids(
        &self,
        call: &CallContext,
        ids: Vec<String>,
        urls: crate::graphql::FileUrls,
    ) -> Result<Vec<pb::File>, BackendError> {
        let mut files = Vec::with_capacity(ids.len());
        let image_sizes = urls.sizes_to_proto();
        for chunk in ids.chunks(MAX_IDS_PER_READ) {
            let request = pb::GetFilesRequest {
                ids: chunk.to_vec(),
                image_sizes: image_sizes.clone(),
                without_download_urls: !urls.downloads(),
            };
            files.extend(self.get_files(call, request).await?.files);
        }
        Ok(files)
    }

    /// Deletes files by id, in as many calls as file-core's id limit needs.
    ///
    /// # Errors
    /// The first failed call; earlier chunks stay deleted (deletion is idempotent, so the
    /// whole list can be retried).
    pub async fn delete_files_by_ids(
        &self,
        call: &CallContext,
        ids: Vec<String>,
    ) -> Result<(), BackendError> {
        for chunk in ids.chunks(MAX_IDS_PER_CALL) {
            let request = pb::DeleteFilesRequest {
                ids: chunk.to_vec(),
            };
            self.delete_files(call, request).await?;
        }
        Ok(())
    }

    /// Confirms uploads by file id, in as many calls as file-core's id limit needs.
    ///
    /// # Errors
    /// The first failed call.
    pub async fn confirm_uploads_by_ids(
        &self,
        call: &CallContext,
        ids: Vec<String>,
    ) -> Result<pb::ConfirmUploadsResponse, BackendError> {
        let mut all = pb::ConfirmUploadsResponse::default();
        for chunk in ids.chunks(MAX_IDS_PER_CALL) {
            let request = pb::ConfirmUploadsRequest {
                file_ids: chunk.to_vec(),
            };
            let response = self.confirm_uploads(call, request).await?;
            all.confirmed.extend(response.confirmed);
            all.failures.extend(response.failures);
        }
        Ok(all)
    }
}
