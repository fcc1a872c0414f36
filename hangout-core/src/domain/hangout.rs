//! Hangouts: plans shared by their members, with activities and memories attached.

use crate::domain::{
    Service,
    error::{DomainError, DomainResult, not_found},
    ids::{ActivityId, FileId, HangoutId, UserId},
    membership::{Membership, Role},
    page::{self, Cursor, Direction, Page, PageSize},
    policy::Action,
    store::Store,
    text::parse_label,
    time::Timestamp,
};

/// The most characters of a description (Markdown, stored as written).
pub const MAX_DESCRIPTION_CHARS: usize = 10_000;
/// Most activities on one hangout: the gateway's cost analysis sizes `Hangout.activities` by it.
pub const MAX_ACTIVITIES: usize = 50;

/// Where a hangout stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum HangoutStatus {
    #[default]
    Planning,
    Confirmed,
    Executed,
    Cancelled,
}

impl HangoutStatus {
    /// The stored spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Planning => "PLANNING",
            Self::Confirmed => "CONFIRMED",
            Self::Executed => "EXECUTED",
            Self::Cancelled => "CANCELLED",
        }
    }

    /// Parses the stored spelling.
    #[must_use]
    pub fn from_stored(text: &str) -> Option<Self> {
        match text {
            "PLANNING" => Some(Self::Planning),
            "CONFIRMED" => Some(Self::Confirmed),
            "EXECUTED" => Some(Self::Executed),
            "CANCELLED" => Some(Self::Cancelled),
            _ => None,
        }
    }
}

/// A hangout, as one of its members sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hangout {
    pub id: HangoutId,
    pub owner: UserId,
    /// The reader's own role and answer.
    pub viewer: Membership,
    pub title: String,
    pub description: Option<String>,
    pub date: Timestamp,
    pub status: HangoutStatus,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What a caller gives to create a hangout, not yet validated.
#[derive(Clone, Debug, Default)]
pub struct NewHangout {
    pub title: String,
    pub description: Option<String>,
    pub date: Option<Timestamp>,
    pub status: Option<HangoutStatus>,
    pub activity_ids: Vec<String>,
}

/// A validated change: `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HangoutPatch {
    pub title: Option<String>,
    /// `Some(None)` clears the description.
    pub description: Option<Option<String>>,
    pub date: Option<Timestamp>,
    pub status: Option<HangoutStatus>,
    /// Replaces the whole set.
    pub activities: Option<Vec<ActivityId>>,
}

/// A change as the caller gives it, not yet validated.
#[derive(Clone, Debug, Default)]
pub struct HangoutChange {
    pub title: Option<String>,
    pub description: Option<Option<String>>,
    pub date: Option<Timestamp>,
    pub status: Option<HangoutStatus>,
    pub activity_ids: Option<Vec<String>>,
}

/// The sort key of the hangout list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum HangoutOrderField {
    #[default]
    CreatedAt,
    Date,
}

impl HangoutOrderField {
    fn cursor_name(self) -> &'static str {
        match self {
            Self::CreatedAt => "hangouts.created_at",
            Self::Date => "hangouts.date",
        }
    }

    /// The sort key of `hangout` in this ordering.
    #[must_use]
    pub fn key_of(self, hangout: &Hangout) -> i64 {
        match self {
            Self::CreatedAt => hangout.created_at.as_millis(),
            Self::Date => hangout.date.as_millis(),
        }
    }
}

/// Filters of the hangout list; all given ones must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HangoutFilter {
    /// Empty means any status.
    pub statuses: Vec<HangoutStatus>,
    /// Date at or after.
    pub date_from: Option<Timestamp>,
    /// Date strictly before.
    pub date_to: Option<Timestamp>,
    /// The caller's role is one of these; empty means any.
    pub roles: Vec<Role>,
}

/// A request for one page of the caller's hangouts, as given.
#[derive(Clone, Debug, Default)]
pub struct HangoutListRequest {
    pub first: u32,
    pub after: String,
    pub field: HangoutOrderField,
    pub direction: Direction,
    pub filter: HangoutFilter,
}

/// A validated page query for the store.
#[derive(Clone, Debug)]
pub struct HangoutListQuery {
    pub field: HangoutOrderField,
    pub direction: Direction,
    pub filter: HangoutFilter,
    pub after: Option<Cursor<i64>>,
    /// Rows to fetch: the page size plus one.
    pub fetch: u32,
}

/// The ordering of an activity's hangout list: newest first.
pub(crate) const ACTIVITY_HANGOUTS_ORDER: &str = "activity.hangouts";

fn parse_title(text: &str, field: &str) -> DomainResult<String> {
    parse_label(text, field)
}

fn check_description(text: &str) -> DomainResult<()> {
    if text.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(DomainError::invalid(
            "description",
            format!("must be at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    Ok(())
}

/// Parses activity ids; each may appear once.
fn parse_activity_ids(ids: &[String]) -> DomainResult<Vec<ActivityId>> {
    if ids.len() > MAX_ACTIVITIES {
        return Err(DomainError::invalid(
            "activityIds",
            format!("must hold at most {MAX_ACTIVITIES} activities"),
        ));
    }
    let mut parsed: Vec<ActivityId> = Vec::with_capacity(ids.len());
    for (index, text) in ids.iter().enumerate() {
        let field = format!("activityIds[{index}]");
        let id = ActivityId::parse(text)
            .ok_or_else(|| DomainError::invalid(field.clone(), "is not a valid id"))?;
        if parsed.contains(&id) {
            return Err(DomainError::invalid(field, "is given more than once"));
        }
        parsed.push(id);
    }
    Ok(parsed)
}

impl<S: Store> Service<S> {
    /// Creates a hangout owned by `owner`.
    ///
    /// # Errors
    /// `Invalid` for a bad field; `NotFound` when an activity is not the owner's.
    pub async fn create_hangout(&self, owner: UserId, new: NewHangout) -> DomainResult<Hangout> {
        let title = parse_title(&new.title, "title")?;
        if let Some(description) = &new.description {
            check_description(description)?;
        }
        let date = new
            .date
            .ok_or_else(|| DomainError::invalid("date", "is required"))?;
        let activities = parse_activity_ids(&new.activity_ids)?;
        let now = Timestamp::now();
        let hangout = Hangout {
            id: HangoutId::generate(),
            owner,
            viewer: Membership::CREATOR,
            title,
            description: new.description,
            date,
            status: new.status.unwrap_or_default(),
            created_at: now,
            updated_at: now,
        };
        self.store
            .insert_hangout(&hangout, &activities)
            .await
            .map_err(not_found)?;
        Ok(hangout)
    }

    /// Changes the fields given: OWNER and CO_HOST edit the details, only the OWNER the
    /// activities (and only to the owner's own).
    ///
    /// # Errors
    /// `Invalid` for a bad field; `NotFound` for a hangout the caller cannot see or an
    /// activity that is not the owner's; `Forbidden` for a role that may not change it.
    pub async fn update_hangout(
        &self,
        caller: UserId,
        id: HangoutId,
        change: HangoutChange,
    ) -> DomainResult<Hangout> {
        let title = change
            .title
            .as_deref()
            .map(|title| parse_title(title, "title"))
            .transpose()?;
        if let Some(Some(description)) = &change.description {
            check_description(description)?;
        }
        let activities = change
            .activity_ids
            .as_deref()
            .map(parse_activity_ids)
            .transpose()?;
        let patch = HangoutPatch {
            title,
            description: change.description,
            date: change.date,
            status: change.status,
            activities,
        };
        let action = if patch.activities.is_some() {
            Action::ChangeActivities
        } else {
            Action::EditDetails
        };
        self.authorize(caller, id, action).await?;
        let guard = action.guard(caller);
        let update = self
            .store
            .update_hangout(caller, id, &patch, Timestamp::now(), &guard);
        self.guarded(caller, id, action, update).await
    }

    /// Deletes a hangout with its members, invitations and every member's memory records;
    /// returns the file ids to remove from storage.
    ///
    /// # Errors
    /// `NotFound` for a hangout the caller cannot see; `Forbidden` unless the OWNER.
    pub async fn delete_hangout(&self, caller: UserId, id: HangoutId) -> DomainResult<Vec<FileId>> {
        let action = Action::DeleteHangout;
        self.authorize(caller, id, action).await?;
        let guard = action.guard(caller);
        self.guarded(caller, id, action, self.store.delete_hangout(id, &guard))
            .await
    }

    /// The caller's hangouts among `ids`.
    ///
    /// # Errors
    /// Only internal ones.
    pub async fn hangouts_by_ids(
        &self,
        caller: UserId,
        ids: &[HangoutId],
    ) -> DomainResult<Vec<Hangout>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.store.hangouts_by_ids(caller, ids).await?)
    }

    /// One page of the hangouts the caller is a member of.
    ///
    /// # Errors
    /// `Invalid` for a bad page size, cursor or date range.
    pub async fn list_hangouts(
        &self,
        caller: UserId,
        request: HangoutListRequest,
    ) -> DomainResult<Page<Hangout>> {
        let size = PageSize::parse(request.first, "first")?;
        let ordering = request.field.cursor_name();
        let after = page::decode_after(&request.after, ordering, request.direction, "after")?;
        if let (Some(from), Some(to)) = (request.filter.date_from, request.filter.date_to)
            && from >= to
        {
            return Err(DomainError::invalid(
                "filter.dateTo",
                "must be after filter.dateFrom",
            ));
        }
        let query = HangoutListQuery {
            field: request.field,
            direction: request.direction,
            filter: request.filter,
            after,
            fetch: size.get() + 1,
        };
        let rows = self.store.list_hangouts(caller, &query).await?;
        let field = request.field;
        let direction = request.direction;
        Ok(Page::from_rows(
            rows.rows,
            size,
            rows.total_count,
            |hangout| {
                Cursor {
                    key: field.key_of(hangout),
                    id: hangout.id.to_string(),
                }
                .encode(ordering, direction)
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_trimmed_and_bounded() {
        assert_eq!(
            parse_title("  Picnic ", "title").ok(),
            Some("Picnic".to_owned())
        );
        assert!(parse_title("   ", "title").is_err());
        assert!(parse_title(&"é".repeat(255), "title").is_ok());
        assert!(parse_title(&"é".repeat(256), "title").is_err());
        // Stored as plain text: markup is kept, not escaped.
        assert_eq!(
            parse_title("<b>Tom & Jerry</b>", "title").ok(),
            Some("<b>Tom & Jerry</b>".to_owned())
        );
    }

    #[test]
    fn descriptions_are_bounded() {
        assert!(check_description(&"x".repeat(10_000)).is_ok());
        assert!(check_description(&"x".repeat(10_001)).is_err());
    }

    #[test]
    fn activity_ids_are_parsed_once_each() {
        let id = ActivityId::generate().to_string();
        assert!(parse_activity_ids(std::slice::from_ref(&id)).is_ok());
        let twice = parse_activity_ids(&[id.clone(), id]);
        assert!(
            matches!(twice, Err(DomainError::Invalid { field, .. }) if field == "activityIds[1]")
        );
        assert!(parse_activity_ids(&["nope".to_owned()]).is_err());
        let many: Vec<String> = (0..=MAX_ACTIVITIES)
            .map(|_| ActivityId::generate().to_string())
            .collect();
        assert!(matches!(
            parse_activity_ids(&many),
            Err(DomainError::Invalid { field, .. }) if field == "activityIds"
        ));
        assert!(parse_activity_ids(&many[1..]).is_ok());
    }
}
