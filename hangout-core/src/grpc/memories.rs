//! `MemoryService`, and `FileReportService` (file-core's reports about the files of memories).

use proto::hangout::v1::{
    self as pb, file_report_service_server::FileReportService, memory_service_server::MemoryService,
};
use tonic::{Request, Response, Status};

use crate::{
    domain::{
        error::DomainError,
        ids::{FileId, HangoutId, MemoryId},
        memory::{Memory, MemoryPageRequest, MemoryStatus, NewMemoryFile},
        page::Page,
    },
    grpc::{
        SharedService, caller, direction, page_info, page_request, parse_id, parse_ids, timestamp,
    },
};

fn memory_message(memory: Memory) -> pb::Memory {
    pb::Memory {
        id: memory.id.to_string(),
        hangout_id: memory.hangout.to_string(),
        uploaded_by: memory.uploaded_by.to_string(),
        file_name: memory.file_name,
        content_type: memory.content_type,
        size: memory.size,
        status: match memory.status {
            MemoryStatus::Pending => pb::MemoryStatus::Pending,
            MemoryStatus::Uploaded => pb::MemoryStatus::Uploaded,
        } as i32,
        file_id: memory.file.map(|file| file.to_string()).unwrap_or_default(),
        created_at: timestamp(memory.created_at),
        upload_expires_at: timestamp(memory.upload_expires_at),
    }
}

fn memories_message(memories: Vec<Memory>) -> Vec<pb::Memory> {
    memories.into_iter().map(memory_message).collect()
}

/// One page of `hangout`'s memories as asked on the wire.
pub(super) fn memory_page_request(
    hangout: HangoutId,
    page: Option<&pb::PageRequest>,
    status: i32,
    order: i32,
) -> Result<MemoryPageRequest, Status> {
    let (first, after) = page_request(page);
    let status = match pb::MemoryStatus::try_from(status) {
        Ok(pb::MemoryStatus::Pending) => MemoryStatus::Pending,
        Ok(pb::MemoryStatus::Uploaded | pb::MemoryStatus::Unspecified) => MemoryStatus::Uploaded,
        Err(_) => return Err(DomainError::invalid("status", "is not a known status").into()),
    };
    Ok(MemoryPageRequest {
        hangout,
        first,
        after,
        status,
        direction: direction(order),
    })
}

pub(super) fn memory_pages_message(
    pages: Vec<(HangoutId, Page<Memory>)>,
) -> Vec<pb::HangoutMemoriesPage> {
    pages
        .into_iter()
        .map(|(hangout, page)| {
            let page_info = page_info(&page);
            pb::HangoutMemoriesPage {
                hangout_id: hangout.to_string(),
                edges: page
                    .edges
                    .into_iter()
                    .map(|edge| pb::MemoryEdge {
                        memory: Some(memory_message(edge.node)),
                        cursor: edge.cursor,
                    })
                    .collect(),
                page_info: Some(page_info),
            }
        })
        .collect()
}

/// Memory records of hangouts.
pub struct MemoryGrpc {
    service: SharedService,
}

impl MemoryGrpc {
    #[must_use]
    pub fn new(service: SharedService) -> Self {
        Self { service }
    }
}

#[tonic::async_trait]
impl MemoryService for MemoryGrpc {
    async fn create_memories(
        &self,
        request: Request<pb::CreateMemoriesRequest>,
    ) -> Result<Response<pb::CreateMemoriesResponse>, Status> {
        let owner = caller(&request)?;
        let request = request.into_inner();
        let hangout = parse_id(&request.hangout_id, "hangoutId", HangoutId::parse)?;
        let files = request
            .files
            .into_iter()
            .map(|file| NewMemoryFile {
                file_name: file.file_name,
                content_type: file.content_type,
                size: file.size,
            })
            .collect();
        let memories = self.service.create_memories(owner, hangout, files).await?;
        Ok(Response::new(pb::CreateMemoriesResponse {
            memories: memories_message(memories),
        }))
    }

    async fn attach_memory_files(
        &self,
        request: Request<pb::AttachMemoryFilesRequest>,
    ) -> Result<Response<pb::AttachMemoryFilesResponse>, Status> {
        let owner = caller(&request)?;
        let mut links = Vec::new();
        for (index, link) in request.get_ref().links.iter().enumerate() {
            let memory = parse_id(
                &link.memory_id,
                &format!("links[{index}].memoryId"),
                MemoryId::parse,
            )?;
            let file = parse_id(
                &link.file_id,
                &format!("links[{index}].fileId"),
                FileId::parse,
            )?;
            links.push((memory, file));
        }
        self.service.attach_memory_files(owner, &links).await?;
        Ok(Response::new(pb::AttachMemoryFilesResponse {}))
    }

    async fn mark_memories_uploaded(
        &self,
        request: Request<pb::MarkMemoriesUploadedRequest>,
    ) -> Result<Response<pb::MarkMemoriesUploadedResponse>, Status> {
        let owner = caller(&request)?;
        let ids = parse_ids(&request.get_ref().ids, MemoryId::parse);
        let memories = self.service.mark_memories_uploaded(owner, &ids).await?;
        Ok(Response::new(pb::MarkMemoriesUploadedResponse {
            memories: memories_message(memories),
        }))
    }

    async fn get_memories(
        &self,
        request: Request<pb::GetMemoriesRequest>,
    ) -> Result<Response<pb::GetMemoriesResponse>, Status> {
        let owner = caller(&request)?;
        let ids = parse_ids(&request.get_ref().ids, MemoryId::parse);
        let memories = self.service.memories_by_ids(owner, &ids).await?;
        Ok(Response::new(pb::GetMemoriesResponse {
            memories: memories_message(memories),
        }))
    }

    async fn list_memories_of_hangouts(
        &self,
        request: Request<pb::ListMemoriesOfHangoutsRequest>,
    ) -> Result<Response<pb::ListMemoriesOfHangoutsResponse>, Status> {
        let owner = caller(&request)?;
        let mut requests = Vec::new();
        for page in request.into_inner().pages {
            let Some(hangout) = HangoutId::parse(&page.hangout_id) else {
                continue;
            };
            requests.push(memory_page_request(
                hangout,
                page.page.as_ref(),
                page.status,
                page.direction,
            )?);
        }
        let pages = self.service.memories_of_hangouts(owner, requests).await?;
        Ok(Response::new(pb::ListMemoriesOfHangoutsResponse {
            pages: memory_pages_message(pages),
        }))
    }

    async fn delete_memories(
        &self,
        request: Request<pb::DeleteMemoriesRequest>,
    ) -> Result<Response<pb::DeleteMemoriesResponse>, Status> {
        let owner = caller(&request)?;
        let ids = parse_ids(&request.get_ref().ids, MemoryId::parse);
        let deleted = self.service.delete_memories(owner, &ids).await?;
        Ok(Response::new(pb::DeleteMemoriesResponse {
            deleted: deleted
                .into_iter()
                .map(|(memory, file)| pb::MemoryFileLink {
                    memory_id: memory.to_string(),
                    file_id: file.map(|file| file.to_string()).unwrap_or_default(),
                })
                .collect(),
        }))
    }
}

/// `FileReportService`: served to file-core only (the server puts a client check in front).
#[derive(Clone)]
pub struct FileReportGrpc {
    service: SharedService,
}

impl FileReportGrpc {
    #[must_use]
    pub fn new(service: SharedService) -> Self {
        Self { service }
    }
}

#[tonic::async_trait]
impl FileReportService for FileReportGrpc {
    async fn report_processed(
        &self,
        request: Request<pb::ReportProcessedRequest>,
    ) -> Result<Response<pb::ReportProcessedResponse>, Status> {
        let files = request
            .get_ref()
            .files
            .iter()
            .map(|file| {
                Ok((
                    parse_id(&file.memory_id, "files.memory_id", MemoryId::parse)?,
                    parse_id(&file.file_id, "files.file_id", FileId::parse)?,
                ))
            })
            .collect::<Result<Vec<_>, Status>>()?;
        let recorded = self.service.record_memories_processed(&files).await?;
        Ok(Response::new(pb::ReportProcessedResponse { recorded }))
    }

    async fn owed_file_deletions(
        &self,
        request: Request<pb::OwedFileDeletionsRequest>,
    ) -> Result<Response<pb::OwedFileDeletionsResponse>, Status> {
        let limit = usize::try_from(request.get_ref().limit).unwrap_or(usize::MAX);
        let files = self.service.owed_file_deletions(limit).await?;
        Ok(Response::new(pb::OwedFileDeletionsResponse {
            file_ids: files.iter().map(ToString::to_string).collect(),
        }))
    }

    async fn confirm_file_deletions(
        &self,
        request: Request<pb::ConfirmFileDeletionsRequest>,
    ) -> Result<Response<pb::ConfirmFileDeletionsResponse>, Status> {
        let files = parse_file_ids(&request.get_ref().file_ids)?;
        self.service.confirm_file_deletions(&files).await?;
        Ok(Response::new(pb::ConfirmFileDeletionsResponse {}))
    }

    async fn held_files(
        &self,
        request: Request<pb::HeldFilesRequest>,
    ) -> Result<Response<pb::HeldFilesResponse>, Status> {
        let files = parse_file_ids(&request.get_ref().file_ids)?;
        let held = self.service.held_files(&files).await?;
        Ok(Response::new(pb::HeldFilesResponse {
            file_ids: held.iter().map(ToString::to_string).collect(),
        }))
    }
}

/// File ids from file-core, which only ever sends well-formed ones: a malformed id is refused.
fn parse_file_ids(texts: &[String]) -> Result<Vec<FileId>, Status> {
    texts
        .iter()
        .map(|text| parse_id(text, "file_ids", FileId::parse))
        .collect()
}
