//! `HangoutService`.

use proto::hangout::v1::{self as pb, hangout_service_server::HangoutService};
use tonic::{Request, Response, Status};

use crate::{
    domain::{
        error::{DomainError, DomainResult},
        hangout::{
            Hangout, HangoutChange, HangoutFilter, HangoutListRequest, HangoutOrderField,
            HangoutStatus, NewHangout,
        },
        ids::{HangoutId, UserId},
        page::Page,
    },
    grpc::{
        SharedService,
        activities::{hangout_activities_message, hangout_counts},
        auth::user_message,
        caller, direction,
        membership::{parse_roles, role_message, rsvp_message},
        memories::memory_page_request,
        memories::memory_pages_message,
        page_info, page_request, parse_id, parse_ids, parse_timestamp, timestamp,
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
        viewer_role: role_message(hangout.viewer.role) as i32,
        viewer_rsvp: rsvp_message(hangout.viewer.rsvp) as i32,
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
        ..pb::HangoutPage::default()
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
        Err(_) => Err(DomainError::invalid(field, "is not a known status").into()),
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
                    return Err(DomainError::invalid(field, "is not a known status").into());
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
                roles: parse_roles(&request.role_in, "filter.membership.role")?,
            },
        };
        let page = self.service.list_hangouts(owner, list).await?;
        let included = match request.include {
            Some(include) => self.included(owner, &page, include).await?,
            None => Included::default(),
        };
        let mut message = hangout_page(page);
        message.owners = included.owners;
        message.activities = included.activities;
        message.memory_pages = included.memory_pages;
        Ok(Response::new(message))
    }
}

/// The records a `ListHangouts` request asked for beside its page.
#[derive(Default)]
struct Included {
    owners: Vec<pb::User>,
    activities: Vec<pb::HangoutActivities>,
    memory_pages: Vec<pb::HangoutMemoriesPage>,
}

impl HangoutGrpc {
    /// Reads what `include` asks for about the hangouts of `page`, through the same domain
    /// calls as `GetUsers`, `ListActivitiesOfHangouts` and `ListMemoriesOfHangouts`, so each
    /// part is what that call would return; the three reads run concurrently.
    async fn included(
        &self,
        caller: UserId,
        page: &Page<Hangout>,
        include: pb::HangoutPageIncludes,
    ) -> Result<Included, Status> {
        let hangouts: Vec<HangoutId> = page.edges.iter().map(|edge| edge.node.id).collect();
        let mut owners: Vec<UserId> = page.edges.iter().map(|edge| edge.node.owner).collect();
        owners.sort_unstable();
        owners.dedup();
        let memory_pages = include
            .memories
            .map(|options| {
                hangouts
                    .iter()
                    .map(|hangout| {
                        memory_page_request(
                            *hangout,
                            options.page.as_ref(),
                            options.status,
                            options.direction,
                        )
                    })
                    .collect::<Result<Vec<_>, Status>>()
            })
            .transpose()?;
        let service = &self.service;
        let (owners, activities, memory_pages) = tokio::join!(
            async {
                if include.owners {
                    service.users_by_ids(Some(caller), &owners).await
                } else {
                    Ok(Vec::new())
                }
            },
            async {
                if include.activities {
                    let counts = hangout_counts(include.activities_without_hangout_counts);
                    service
                        .activities_of_hangouts(caller, &hangouts, counts)
                        .await
                } else {
                    Ok(Vec::new())
                }
            },
            async {
                match memory_pages {
                    Some(requests) => service.memories_of_hangouts(caller, requests).await,
                    None => Ok(Vec::new()),
                }
            },
        );
        Ok(Included {
            owners: best_effort("owners", owners)?
                .into_iter()
                .map(user_message)
                .collect(),
            activities: hangout_activities_message(best_effort("activities", activities)?),
            memory_pages: memory_pages_message(best_effort("memory_pages", memory_pages)?),
        })
    }
}

/// The records of an included part. A store failure leaves the part empty, logged: the page
/// itself was read, and the caller reads the part with its dedicated call, which reports the
/// failure where it belongs. A part the dedicated call would refuse is refused.
fn best_effort<T>(part: &'static str, result: DomainResult<Vec<T>>) -> Result<Vec<T>, Status> {
    match result {
        Ok(records) => Ok(records),
        Err(DomainError::Store(error)) => {
            tracing::warn!(
                part,
                error = %telemetry::ErrorChain(&error),
                "an included part of a hangouts page was not read; left empty"
            );
            Ok(Vec::new())
        }
        Err(error) => Err(error.into()),
    }
}
