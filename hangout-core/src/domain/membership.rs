//! Members of a hangout: who belongs to it, with which role, and what they answered.
//!
//! The creator is the OWNER (exactly one per hangout); others join by accepting an invitation
//! as a CO_HOST or a GUEST. What each role may do is decided in [`super::policy`].

use crate::domain::{
    Service,
    error::{DomainError, DomainResult, not_found},
    hangout::Hangout,
    ids::{HangoutId, UserId},
    page::{self, Cursor, Direction, Page, PageSize},
    policy::Action,
    store::{KeysetQuery, Store, StoreError},
    time::Timestamp,
};

/// Members of one hangout, at most.
pub const MAX_MEMBERS: u64 = 500;

const MEMBERS_ORDER: &str = "members.joined";

/// A member's role in a hangout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Owner,
    CoHost,
    Guest,
}

impl Role {
    /// The stored spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "OWNER",
            Self::CoHost => "CO_HOST",
            Self::Guest => "GUEST",
        }
    }

    #[must_use]
    pub fn from_stored(text: &str) -> Option<Self> {
        match text {
            "OWNER" => Some(Self::Owner),
            "CO_HOST" => Some(Self::CoHost),
            "GUEST" => Some(Self::Guest),
            _ => None,
        }
    }
}

/// A member's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Rsvp {
    #[default]
    NoReply,
    Going,
    Maybe,
    NotGoing,
}

impl Rsvp {
    pub const ALL: [Self; 4] = [Self::NoReply, Self::Going, Self::Maybe, Self::NotGoing];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoReply => "NO_REPLY",
            Self::Going => "GOING",
            Self::Maybe => "MAYBE",
            Self::NotGoing => "NOT_GOING",
        }
    }

    #[must_use]
    pub fn from_stored(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|rsvp| rsvp.as_str() == text)
    }
}

/// The caller's own place in a hangout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Membership {
    pub role: Role,
    pub rsvp: Rsvp,
}

impl Membership {
    /// The creator's: OWNER, and going.
    pub const CREATOR: Self = Self {
        role: Role::Owner,
        rsvp: Rsvp::Going,
    };
}

/// One member of a hangout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub hangout: HangoutId,
    pub user: UserId,
    pub role: Role,
    pub rsvp: Rsvp,
    pub joined_at: Timestamp,
}

impl Member {
    /// The key of the members list's order, then the user id: the owner first (0 is before
    /// every real instant), everyone else as they joined. `store::members` sorts by the same.
    #[must_use]
    pub fn order_key(&self) -> i64 {
        match self.role {
            Role::Owner => 0,
            Role::CoHost | Role::Guest => self.joined_at.as_millis(),
        }
    }
}

/// How many members gave each answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RsvpCounts {
    pub going: u64,
    pub maybe: u64,
    pub not_going: u64,
    pub no_reply: u64,
}

impl RsvpCounts {
    pub fn add(&mut self, rsvp: Rsvp, count: u64) {
        match rsvp {
            Rsvp::Going => self.going += count,
            Rsvp::Maybe => self.maybe += count,
            Rsvp::NotGoing => self.not_going += count,
            Rsvp::NoReply => self.no_reply += count,
        }
    }
}

/// A request for one page of one hangout's members, as given.
#[derive(Clone, Debug)]
pub struct MemberPageRequest {
    pub hangout: HangoutId,
    pub first: u32,
    pub after: String,
    /// Empty means every answer.
    pub rsvp_in: Vec<Rsvp>,
}

/// A validated page query of one hangout's members.
#[derive(Clone, Debug)]
pub struct MemberListQuery {
    pub rsvp_in: Vec<Rsvp>,
    pub page: KeysetQuery<i64>,
}

fn member_cursor(member: &Member) -> String {
    Cursor {
        key: member.order_key(),
        id: member.user.to_string(),
    }
    .encode(MEMBERS_ORDER, Direction::Asc)
}

impl<S: Store> Service<S> {
    /// The caller's role in `hangout`, checked against `action` (see [`super::policy`]).
    ///
    /// # Errors
    /// `NotFound` for a non-member, `Forbidden` for a member whose role does not allow it.
    pub(crate) async fn authorize(
        &self,
        caller: UserId,
        hangout: HangoutId,
        action: Action,
    ) -> DomainResult<Role> {
        let role = self.store.role_of(hangout, caller).await?;
        action.check(role)
    }

    /// The caller's role in each of the distinct `hangouts` they are a member of.
    ///
    /// # Errors
    /// Only internal ones.
    pub(crate) async fn roles_in(
        &self,
        caller: UserId,
        hangouts: impl IntoIterator<Item = HangoutId>,
    ) -> DomainResult<std::collections::HashMap<HangoutId, Role>> {
        let mut hangouts: Vec<HangoutId> = hangouts.into_iter().collect();
        hangouts.sort_unstable_by_key(ToString::to_string);
        hangouts.dedup();
        if hangouts.is_empty() {
            return Ok(std::collections::HashMap::new());
        }
        Ok(self
            .store
            .roles_of(&hangouts, caller)
            .await?
            .into_iter()
            .collect())
    }

    /// Runs `change`, made with `action`'s [`Guard`](super::store::Guard) for `caller` after
    /// [`Service::authorize`] allowed it; maps its failure with [`Service::refused_after_change`].
    ///
    /// # Errors
    /// The refusal that holds now when the caller's role changed meanwhile; the store's
    /// `NotFound` as the domain's; others as internal.
    pub(crate) async fn guarded<T>(
        &self,
        caller: UserId,
        hangout: HangoutId,
        action: Action,
        change: impl std::future::Future<Output = crate::domain::store::StoreResult<T>>,
    ) -> DomainResult<T> {
        match change.await {
            Ok(value) => Ok(value),
            Err(error) => Err(self
                .refused_after_change(caller, hangout, action, error)
                .await),
        }
    }

    /// The error for a change whose [`Guard`](super::store::Guard) no longer held: the caller's
    /// role changed between the check and the change, so check again and say what now holds.
    pub(crate) async fn refused_after_change(
        &self,
        caller: UserId,
        hangout: HangoutId,
        action: Action,
        error: StoreError,
    ) -> DomainError {
        match error {
            StoreError::Stale => match self.authorize(caller, hangout, action).await {
                Err(refusal) => refusal,
                Ok(_) => DomainError::AlreadyExists(
                    "the hangout's members changed meanwhile; try again".to_owned(),
                ),
            },
            StoreError::NotFound => DomainError::NotFound,
            other => other.into(),
        }
    }

    /// One page for each of the requests' hangouts the caller is a member of.
    ///
    /// # Errors
    /// `Invalid` for a bad page size or cursor, naming the request's index.
    pub async fn members_of_hangouts(
        &self,
        caller: UserId,
        requests: Vec<MemberPageRequest>,
    ) -> DomainResult<Vec<(HangoutId, Page<Member>)>> {
        let mut queries = Vec::with_capacity(requests.len());
        let mut sizes = Vec::with_capacity(requests.len());
        for (index, request) in requests.into_iter().enumerate() {
            let size = PageSize::parse(request.first, &format!("pages[{index}].first"))?;
            let after = page::decode_after(
                &request.after,
                MEMBERS_ORDER,
                Direction::Asc,
                &format!("pages[{index}].after"),
            )?;
            sizes.push(size);
            queries.push((
                request.hangout,
                MemberListQuery {
                    rsvp_in: request.rsvp_in,
                    page: KeysetQuery {
                        after,
                        fetch: size.get() + 1,
                    },
                },
            ));
        }
        if queries.is_empty() {
            return Ok(Vec::new());
        }
        let found = self.store.members_of_hangouts(caller, &queries).await?;
        Ok(found
            .into_iter()
            .filter_map(|(index, rows)| {
                let (hangout, _) = queries.get(index)?;
                let size = *sizes.get(index)?;
                let page = Page::from_rows(rows.rows, size, rows.total_count, member_cursor);
                Some((*hangout, page))
            })
            .collect())
    }

    /// Counts by answer for each of `hangouts` the caller is a member of.
    ///
    /// # Errors
    /// Only internal ones.
    pub async fn rsvp_counts(
        &self,
        caller: UserId,
        hangouts: &[HangoutId],
    ) -> DomainResult<Vec<(HangoutId, RsvpCounts)>> {
        if hangouts.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.store.rsvp_counts(caller, hangouts).await?)
    }

    /// The members among `users` of `hangout`; none when the caller is not a member.
    ///
    /// # Errors
    /// Only internal ones.
    pub async fn members_by_ids(
        &self,
        caller: UserId,
        hangout: HangoutId,
        users: &[UserId],
    ) -> DomainResult<Vec<Member>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.store.members_by_ids(caller, hangout, users).await?)
    }

    /// Sets the caller's own answer.
    ///
    /// # Errors
    /// `NotFound` unless the caller is a member.
    pub async fn set_rsvp(
        &self,
        caller: UserId,
        hangout: HangoutId,
        rsvp: Rsvp,
    ) -> DomainResult<Member> {
        self.authorize(caller, hangout, Action::SetRsvp).await?;
        self.store
            .set_rsvp(hangout, caller, rsvp)
            .await
            .map_err(not_found)
    }

    /// Makes a member a GUEST or a CO_HOST.
    ///
    /// # Errors
    /// `NotFound` for a hangout the caller cannot see or a user who is not a member;
    /// `Forbidden` unless the caller is the OWNER; `Invalid` on `role` for OWNER, on `userId`
    /// for the caller themselves.
    pub async fn update_member_role(
        &self,
        caller: UserId,
        hangout: HangoutId,
        user: UserId,
        role: Role,
    ) -> DomainResult<Member> {
        let action = Action::ChangeRoles;
        self.authorize(caller, hangout, action).await?;
        if role == Role::Owner {
            return Err(DomainError::invalid(
                "role",
                "must be GUEST or CO_HOST; hand over ownership with transferHangoutOwnership",
            ));
        }
        if user == caller {
            return Err(DomainError::invalid("userId", "is your own"));
        }
        let guard = action.guard(caller);
        self.guarded(
            caller,
            hangout,
            action,
            self.store.set_member_role(hangout, user, role, &guard),
        )
        .await
    }

    /// Removes a member; their memories stay in the hangout, the open invitations they made are
    /// revoked, and no invitation made before now lets them back in.
    ///
    /// # Errors
    /// `NotFound` for a hangout the caller cannot see or a user who is not a member;
    /// `Forbidden` when the caller's role may not remove the member's; `Invalid` on `userId`
    /// for the caller themselves.
    pub async fn remove_member(
        &self,
        caller: UserId,
        hangout: HangoutId,
        user: UserId,
    ) -> DomainResult<()> {
        let role = self.store.role_of(hangout, caller).await?;
        Action::SeeHangout.check(role)?;
        if user == caller {
            return Err(DomainError::invalid(
                "userId",
                "is your own; leave the hangout instead",
            ));
        }
        let target = self
            .store
            .role_of(hangout, user)
            .await?
            .ok_or(DomainError::NotFound)?;
        let action = Action::RemoveMember { target };
        action.check(role)?;
        let guard = action.guard(caller);
        let removal =
            self.store
                .remove_member(hangout, user, target, Some(Timestamp::now()), &guard);
        self.guarded(caller, hangout, action, removal).await
    }

    /// The caller leaves; their memories stay in the hangout.
    ///
    /// # Errors
    /// `NotFound` unless a member; `Forbidden` for the OWNER.
    pub async fn leave_hangout(&self, caller: UserId, hangout: HangoutId) -> DomainResult<()> {
        let action = Action::Leave;
        let role = self.authorize(caller, hangout, action).await?;
        let guard = action.guard(caller);
        let removal = self
            .store
            .remove_member(hangout, caller, role, None, &guard);
        self.guarded(caller, hangout, action, removal).await
    }

    /// Hands the hangout to another member; the caller becomes a CO_HOST.
    ///
    /// # Errors
    /// `NotFound` for a hangout the caller cannot see or a user who is not a member;
    /// `Forbidden` unless the caller is the OWNER; `Invalid` on `userId` for the caller.
    pub async fn transfer_ownership(
        &self,
        caller: UserId,
        hangout: HangoutId,
        user: UserId,
    ) -> DomainResult<Hangout> {
        self.authorize(caller, hangout, Action::TransferOwnership)
            .await?;
        if user == caller {
            return Err(DomainError::invalid("userId", "is your own"));
        }
        self.store
            .transfer_ownership(hangout, caller, user, Timestamp::now())
            .await
            .map_err(not_found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip() {
        for role in [Role::Owner, Role::CoHost, Role::Guest] {
            assert_eq!(Role::from_stored(role.as_str()), Some(role));
        }
        for rsvp in Rsvp::ALL {
            assert_eq!(Rsvp::from_stored(rsvp.as_str()), Some(rsvp));
        }
        assert_eq!(Role::from_stored("ADMIN"), None);
    }

    #[test]
    fn the_owner_sorts_first() {
        let member = |role, joined| Member {
            hangout: HangoutId::generate(),
            user: UserId::generate(),
            role,
            rsvp: Rsvp::NoReply,
            joined_at: Timestamp::from_millis(joined),
        };
        assert!(member(Role::Owner, 500).order_key() < member(Role::Guest, 1).order_key());
        assert!(member(Role::Guest, 1).order_key() < member(Role::CoHost, 2).order_key());
    }
}
