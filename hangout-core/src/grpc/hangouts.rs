//! `HangoutService`.

use proto::hangout::v1::{self as pb, hangout_service_server::HangoutService};
use tonic::{Request, Response, Status};

use crate::{
    domain::{
        hangout::{
            Hangout, HangoutChange, HangoutFilter, HangoutListRequest, HangoutOrderField,
            HangoutStatus, NewHangout,
        },
        ids::HangoutId,
        page::Page,
    },
    grpc::{
        SharedService, caller, direction, page_info, page_request, parse_id, parse_ids,
        parse_timestamp, timestamp,
    },
};

pub(super) fn hangout_message(hangout: Hangout) -> pb::Hangout {
    pb::Hangout {
        id: hangout.id.to_string(),
        owner_id: hangout.owner.to_string(),
        title: hangout.title,
        description: hangout.description,
        date: timestamp(hangout.date),
        status: status_message(hangout.status) as i32,
        created_at: timestamp(hangout.created_at),
        updated_at: timestamp(hangout.updated_at),
    }
}

pub(super) fn hangout_page(page: Page<Hangout>) -> pb::HangoutPage {
    let page_info = page_info(&page);
    pb::HangoutPage {
        edges: page
            .edges
            .into_iter()
            .map(|edge| pb::HangoutEdge {
                hangout: Some(hangout_message(edge.node)),
                cursor: edge.cursor,
            })
            .collect(),
        page_info: Some(page_info),
    }
}

fn status_message(status: HangoutStatus) -> pb::HangoutStatus {
    match status {
        HangoutStatus::Planning => pb::HangoutStatus::Planning,
        HangoutStatus::Confirmed => pb::HangoutStatus::Confirmed,
        HangoutStatus::Executed => pb::HangoutStatus::Executed,
        HangoutStatus::Cancelled => pb::HangoutStatus::Cancelled,
    }
}

/// `None` for UNSPECIFIED; unknown numbers are invalid.
fn parse_status(value: i32, field: &str) -> Result<Option<HangoutStatus>, Status> {
    match pb::HangoutStatus::try_from(value) {
        Ok(pb::HangoutStatus::Unspecified) => Ok(None),
        Ok(pb::HangoutStatus::Planning) => Ok(Some(HangoutStatus::Planning)),
        Ok(pb::HangoutStatus::Confirmed) => Ok(Some(HangoutStatus::Confirmed)),
        Ok(pb::HangoutStatus::Executed) => Ok(Some(HangoutStatus::Executed)),
        Ok(pb::HangoutStatus::Cancelled) => Ok(Some(HangoutStatus::Cancelled)),
        Err(_) => {
            Err(crate::domain::error::DomainError::invalid(field, "is not a known status").into())
        }
    }
}

/// Hangout CRUD and lists.
pub struct HangoutGrpc {
    service: SharedService,
}

impl HangoutGrpc {
    #[must_use]
    pub fn new(service: SharedService) -> Self {
        Self { service }
    }
}

#[tonic::async_trait]
impl HangoutService for HangoutGrpc {
    async fn create_hangout(
        &self,
        request: Request<pb::CreateHangoutRequest>,
    ) -> Result<Response<pb::Hangout>, Status> {
        let owner = caller(&request)?;
        let request = request.into_inner();
        let new = NewHangout {
            title: request.title,
            description: request.description,
            date: parse_timestamp(request.date.as_ref(), "date")?,
            status: parse_status(request.status, "status")?,
            activity_ids: request.activity_ids,
        };
        let hangout = self.service.create_hangout(owner, new).await?;
        Ok(Response::new(hangout_message(hangout)))
    }

    async fn update_hangout(
        &self,
        request: Request<pb::UpdateHangoutRequest>,
    ) -> Result<Response<pb::Hangout>, Status> {
        let owner = caller(&request)?;
        let request = request.into_inner();
        let id = parse_id(&request.id, "id", HangoutId::parse)?;
        let change = HangoutChange {
            title: request.title,
            description: request.description.map(|patch| patch.value),
            date: parse_timestamp(request.date.as_ref(), "date")?,
            status: parse_status(request.status, "status")?,
            activity_ids: request.activity_ids.map(|list| list.ids),
        };
        let hangout = self.service.update_hangout(owner, id, change).await?;
        Ok(Response::new(hangout_message(hangout)))
    }

    async fn delete_hangout(
        &self,
        request: Request<pb::DeleteHangoutRequest>,
    ) -> Result<Response<pb::DeleteHangoutResponse>, Status> {
        let owner = caller(&request)?;
        let id = parse_id(&request.get_ref().id, "id", HangoutId::parse)?;
        let files = self.service.delete_hangout(owner, id).await?;
        Ok(Response::new(pb::DeleteHangoutResponse {
            id: id.to_string(),
            deleted_file_ids: files.iter().map(ToString::to_string).collect(),
        }))
    }

    async fn get_hangouts(
        &self,
        request: Request<pb::GetHangoutsRequest>,
    ) -> Result<Response<pb::GetHangoutsResponse>, Status> {
        let owner = caller(&request)?;
        let ids = parse_ids(&request.get_ref().ids, HangoutId::parse);
        let hangouts = self.service.hangouts_by_ids(owner, &ids).await?;
        Ok(Response::new(pb::GetHangoutsResponse {
            hangouts: hangouts.into_iter().map(hangout_message).collect(),
        }))
    }

    async fn list_hangouts(
        &self,
        request: Request<pb::ListHangoutsRequest>,
    ) -> Result<Response<pb::HangoutPage>, Status> {
        let owner = caller(&request)?;
        let request = request.into_inner();
        let (first, after) = page_request(request.page.as_ref());
        let field = match pb::HangoutOrderField::try_from(request.order_field) {
            Ok(pb::HangoutOrderField::Date) => HangoutOrderField::Date,
            _ => HangoutOrderField::CreatedAt,
        };
        let mut statuses = Vec::with_capacity(request.status_in.len());
        for (index, value) in request.status_in.iter().enumerate() {
            let field = format!("filter.status[{index}]");
            match parse_status(*value, &field)? {
                Some(status) if !statuses.contains(&status) => statuses.push(status),
                Some(_) => {}
                None => {
                    return Err(crate::domain::error::DomainError::invalid(
                        field,
                        "is not a known status",
                    )
                    .into());
                }
            }
        }
        let list = HangoutListRequest {
            first,
            after,
            field,
            direction: direction(request.direction),
            filter: HangoutFilter {
                statuses,
                date_from: parse_timestamp(request.date_from.as_ref(), "filter.dateFrom")?,
                date_to: parse_timestamp(request.date_to.as_ref(), "filter.dateTo")?,
            },
        };
        let page = self.service.list_hangouts(owner, list).await?;
        Ok(Response::new(hangout_page(page)))
    }
}
