//! `ActivityService`.

use proto::hangout::v1::{self as pb, activity_service_server::ActivityService};
use tonic::{Request, Response, Status};

use crate::{
    domain::{
        activity::{Activity, HangoutCounts},
        ids::{ActivityId, HangoutId},
    },
    grpc::{
        SharedService, caller, hangouts::hangout_page, page_info, page_request, parse_id,
        parse_ids, timestamp,
    },
};

fn activity_message(activity: Activity) -> pb::Activity {
    pb::Activity {
        id: activity.id.to_string(),
        owner_id: activity.owner.to_string(),
        name: activity.name,
        hangout_count: activity.hangout_count,
        created_at: timestamp(activity.created_at),
    }
}

/// The counting a request's `without_hangout_counts` flag asks for.
pub(super) fn hangout_counts(without: bool) -> HangoutCounts {
    if without {
        HangoutCounts::Omitted
    } else {
        HangoutCounts::Counted
    }
}

pub(super) fn hangout_activities_message(
    lists: Vec<(HangoutId, Vec<Activity>)>,
) -> Vec<pb::HangoutActivities> {
    lists
        .into_iter()
        .map(|(hangout, activities)| pb::HangoutActivities {
            hangout_id: hangout.to_string(),
            activities: activities.into_iter().map(activity_message).collect(),
        })
        .collect()
}

/// Activity CRUD and the lists between activities and hangouts.
pub struct ActivityGrpc {
    service: SharedService,
}

impl ActivityGrpc {
    #[must_use]
    pub fn new(service: SharedService) -> Self {
        Self { service }
    }
}

#[tonic::async_trait]
impl ActivityService for ActivityGrpc {
    async fn create_activity(
        &self,
        request: Request<pb::CreateActivityRequest>,
    ) -> Result<Response<pb::Activity>, Status> {
        let owner = caller(&request)?;
        let activity = self
            .service
            .create_activity(owner, &request.get_ref().name)
            .await?;
        Ok(Response::new(activity_message(activity)))
    }

    async fn rename_activity(
        &self,
        request: Request<pb::RenameActivityRequest>,
    ) -> Result<Response<pb::Activity>, Status> {
        let owner = caller(&request)?;
        let request = request.into_inner();
        let id = parse_id(&request.id, "id", ActivityId::parse)?;
        let activity = self
            .service
            .rename_activity(owner, id, &request.name)
            .await?;
        Ok(Response::new(activity_message(activity)))
    }

    async fn delete_activity(
        &self,
        request: Request<pb::DeleteActivityRequest>,
    ) -> Result<Response<pb::DeleteActivityResponse>, Status> {
        let owner = caller(&request)?;
        let id = parse_id(&request.get_ref().id, "id", ActivityId::parse)?;
        self.service.delete_activity(owner, id).await?;
        Ok(Response::new(pb::DeleteActivityResponse {
            id: id.to_string(),
        }))
    }

    async fn get_activities(
        &self,
        request: Request<pb::GetActivitiesRequest>,
    ) -> Result<Response<pb::GetActivitiesResponse>, Status> {
        let owner = caller(&request)?;
        let ids = parse_ids(&request.get_ref().ids, ActivityId::parse);
        let activities = self.service.activities_by_ids(owner, &ids).await?;
        Ok(Response::new(pb::GetActivitiesResponse {
            activities: activities.into_iter().map(activity_message).collect(),
        }))
    }

    async fn list_activities(
        &self,
        request: Request<pb::ListActivitiesRequest>,
    ) -> Result<Response<pb::ActivityPage>, Status> {
        let owner = caller(&request)?;
        let (first, after) = page_request(request.get_ref().page.as_ref());
        let page = self.service.list_activities(owner, first, &after).await?;
        let page_info = page_info(&page);
        Ok(Response::new(pb::ActivityPage {
            edges: page
                .edges
                .into_iter()
                .map(|edge| pb::ActivityEdge {
                    activity: Some(activity_message(edge.node)),
                    cursor: edge.cursor,
                })
                .collect(),
            page_info: Some(page_info),
        }))
    }

    async fn list_activities_of_hangouts(
        &self,
        request: Request<pb::ListActivitiesOfHangoutsRequest>,
    ) -> Result<Response<pb::ListActivitiesOfHangoutsResponse>, Status> {
        let owner = caller(&request)?;
        let ids = parse_ids(&request.get_ref().hangout_ids, HangoutId::parse);
        let counts = hangout_counts(request.get_ref().without_hangout_counts);
        let lists = self
            .service
            .activities_of_hangouts(owner, &ids, counts)
            .await?;
        Ok(Response::new(pb::ListActivitiesOfHangoutsResponse {
            hangouts: hangout_activities_message(lists),
        }))
    }

    async fn list_hangouts_of_activities(
        &self,
        request: Request<pb::ListHangoutsOfActivitiesRequest>,
    ) -> Result<Response<pb::ListHangoutsOfActivitiesResponse>, Status> {
        let owner = caller(&request)?;
        let mut pages = Vec::new();
        for (index, page) in request.into_inner().pages.into_iter().enumerate() {
            let Some(activity) = ActivityId::parse(&page.activity_id) else {
                continue;
            };
            let (first, after) = page_request(page.page.as_ref());
            let result = self
                .service
                .hangouts_of_activity(owner, activity, first, &after)
                .await;
            match result {
                Ok(found) => pages.push(pb::ActivityHangoutsPage {
                    activity_id: activity.to_string(),
                    page: Some(hangout_page(found)),
                }),
                Err(crate::domain::error::DomainError::NotFound) => {}
                Err(crate::domain::error::DomainError::Invalid { field, message }) => {
                    return Err(crate::domain::error::DomainError::invalid(
                        format!("pages[{index}].{field}"),
                        message,
                    )
                    .into());
                }
                Err(error) => return Err(error.into()),
            }
        }
        Ok(Response::new(pb::ListHangoutsOfActivitiesResponse {
            pages,
        }))
    }
}
