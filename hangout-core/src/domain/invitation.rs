//! Invitations: how people join a hangout. Either addressed to one email address (accepted by
//! the account with that address, now or after it signs up) or a link whose code anyone signed
//! in can accept while it is open. A link's code is 256 bits derived from a service secret and
//! the invitation's id ([`CodeKey`]) and stored only as its SHA-256, like a refresh token: the
//! database alone gives no code away, yet the hangout's managers can be shown it again.

use std::{collections::HashMap, time::Duration};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac as _};
use sha2::Sha256;

use crate::domain::{
    Service,
    error::{DomainError, DomainResult},
    hangout::Hangout,
    ids::{HangoutId, InvitationId, UserId},
    membership::{MAX_MEMBERS, Role},
    page::{self, Cursor, Direction, Page, PageSize},
    policy::Action,
    session::token_hash,
    store::{KeysetQuery, Limit, Store, StoreError},
    time::Timestamp,
    user::{Email, User},
};

/// Open invitations of one hangout, at most.
pub const MAX_OPEN_INVITATIONS: u64 = 100;
/// The most people one link may admit.
pub const MAX_LINK_USES: u32 = 1000;
/// Invitations one user may create within [`INVITATION_RATE_WINDOW`].
pub const MAX_INVITATIONS_PER_WINDOW: u64 = 50;
pub const INVITATION_RATE_WINDOW: Duration = Duration::from_secs(60 * 60);
/// How long an invitation to a person stays open unless told otherwise.
pub const PERSON_INVITATION_TTL: Duration = Duration::from_secs(30 * 24 * 60 * 60);

const INVITATIONS_ORDER: &str = "invitations.created_at";

/// The secret link codes are derived from: `HMAC-SHA256(key, invitation id)`. Derived itself
/// from a secret the service already keeps (see `App::build`), with a purpose string so the
/// two uses never share a key. Should the secret change, stored hashes no longer match the
/// codes derived anew: links still work, and managers are shown no code for the old ones.
#[derive(Clone)]
pub struct CodeKey([u8; 32]);

impl CodeKey {
    /// The key for `secret`'s bytes.
    #[must_use]
    pub fn derive(secret: &[u8]) -> Self {
        Self(hmac_sha256(secret, b"hangout-core invitation codes v1"))
    }

    /// The code of the link invitation `id`: 256 bits, URL-safe.
    #[must_use]
    pub fn code_for(&self, id: InvitationId) -> String {
        URL_SAFE_NO_PAD.encode(hmac_sha256(&self.0, id.to_string().as_bytes()))
    }
}

impl std::fmt::Debug for CodeKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("CodeKey(redacted)")
    }
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return [0; 32];
    };
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// What is stored of an invitation's life; expiry and a used-up link are read off the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvitationState {
    Pending,
    Accepted,
    Declined,
    Revoked,
}

impl InvitationState {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Accepted => "ACCEPTED",
            Self::Declined => "DECLINED",
            Self::Revoked => "REVOKED",
        }
    }

    #[must_use]
    pub fn from_stored(text: &str) -> Option<Self> {
        [Self::Pending, Self::Accepted, Self::Declined, Self::Revoked]
            .into_iter()
            .find(|state| state.as_str() == text)
    }
}

/// Where an invitation stands, as shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvitationStatus {
    Pending,
    Accepted,
    Declined,
    Revoked,
    Expired,
}

/// Whom an invitation is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InvitationTarget {
    /// One person, by email address.
    Person(Email),
    /// Anyone with the code, up to `max_uses` people (`None`: unlimited).
    Link { max_uses: Option<u32>, uses: u32 },
}

/// An invitation with what its invitee may see of the hangout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invitation {
    pub id: InvitationId,
    pub hangout: HangoutId,
    pub role: Role,
    pub target: InvitationTarget,
    pub invited_by: User,
    pub state: InvitationState,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub hangout_title: String,
    pub hangout_date: Timestamp,
    /// SHA-256 of a link's code, as stored.
    pub code_hash: Option<String>,
    /// A link's code, for its hangout's managers (see [`Invitation::reveal_code`]).
    pub code: Option<String>,
}

impl Invitation {
    /// The status at `now`.
    #[must_use]
    pub fn status(&self, now: Timestamp) -> InvitationStatus {
        match self.state {
            InvitationState::Accepted => InvitationStatus::Accepted,
            InvitationState::Declined => InvitationStatus::Declined,
            InvitationState::Revoked => InvitationStatus::Revoked,
            InvitationState::Pending if self.uses_left() == Some(0) => InvitationStatus::Accepted,
            InvitationState::Pending if self.expires_at.is_some_and(|at| at <= now) => {
                InvitationStatus::Expired
            }
            InvitationState::Pending => InvitationStatus::Pending,
        }
    }

    /// Whether it can still be accepted at `now`.
    #[must_use]
    pub fn is_open(&self, now: Timestamp) -> bool {
        self.status(now) == InvitationStatus::Pending
    }

    /// For a link with a limit: how many more may accept it.
    #[must_use]
    pub fn uses_left(&self) -> Option<u32> {
        match self.target {
            InvitationTarget::Link {
                max_uses: Some(max),
                uses,
            } => Some(max.saturating_sub(uses)),
            InvitationTarget::Person(_) | InvitationTarget::Link { max_uses: None, .. } => None,
        }
    }

    /// Fills in a link's code, derived anew, when it matches the stored hash: for the
    /// hangout's managers only.
    fn reveal_code(mut self, key: &CodeKey) -> Self {
        if matches!(self.target, InvitationTarget::Link { .. }) {
            let code = key.code_for(self.id);
            if self.code_hash.as_deref() == Some(token_hash(&code).as_str()) {
                self.code = Some(code);
            }
        }
        self
    }

    fn is_addressed_to(&self, email: Option<&Email>) -> bool {
        matches!((&self.target, email), (InvitationTarget::Person(to), Some(email)) if to == email)
    }

    /// As `viewer` sees it: the inviter's email masked unless it is the viewer's own, and the
    /// address it was sent to masked unless the viewer sent it or is its `addressee`.
    fn seen_by(mut self, viewer: UserId, addressee: bool) -> Self {
        if let InvitationTarget::Person(email) = &mut self.target
            && viewer != self.invited_by.id
            && !addressee
        {
            *email = email.masked();
        }
        self.invited_by = self.invited_by.seen_by(Some(viewer));
        self
    }
}

/// An invitation as the caller asks for it, not yet validated.
#[derive(Clone, Debug)]
pub struct NewInvitation {
    pub hangout: HangoutId,
    pub role: Role,
    /// `None` creates a link.
    pub email: Option<String>,
    pub expires_at: Option<Timestamp>,
    pub max_uses: Option<u32>,
}

/// The bounds checked in the same transaction as an invitation's insertion.
#[derive(Clone, Debug)]
pub struct NewInvitationLimits {
    /// Open invitations of the hangout at most, before this one.
    pub max_open: u64,
    /// Invitations its inviter created since `rate_since`, at most, before this one.
    pub max_recent: u64,
    pub rate_since: Timestamp,
    /// What counts as open.
    pub now: Timestamp,
}

/// How an invitation is named when accepted.
#[derive(Clone, Debug)]
pub enum AcceptBy {
    /// A link's code.
    Code(String),
    /// An invitation to the caller's email.
    Id(InvitationId),
}

/// A request for one page of one hangout's open invitations, as given.
#[derive(Clone, Debug)]
pub struct InvitationPageRequest {
    pub hangout: HangoutId,
    pub first: u32,
    pub after: String,
}

fn invitation_cursor(invitation: &Invitation) -> String {
    Cursor {
        key: invitation.created_at.as_millis(),
        id: invitation.id.to_string(),
    }
    .encode(INVITATIONS_ORDER, Direction::Desc)
}

fn keyset(first: u32, after: &str, field: &str) -> DomainResult<(PageSize, KeysetQuery<i64>)> {
    let size = PageSize::parse(first, &format!("{field}first"))?;
    let after = page::decode_after(
        after,
        INVITATIONS_ORDER,
        Direction::Desc,
        &format!("{field}after"),
    )?;
    Ok((
        size,
        KeysetQuery {
            after,
            fetch: size.get() + 1,
        },
    ))
}

fn limit_error(limit: Limit) -> DomainError {
    match limit {
        Limit::OpenInvitations => DomainError::LimitReached(format!(
            "a hangout has at most {MAX_OPEN_INVITATIONS} open invitations; revoke some first"
        )),
        Limit::RecentInvitations { oldest } => {
            let free_at = oldest.plus(INVITATION_RATE_WINDOW).as_millis();
            let wait = free_at.saturating_sub(Timestamp::now().as_millis());
            DomainError::RateLimited {
                retry_after_seconds: u64::try_from(wait / 1000 + 1).unwrap_or(1),
            }
        }
        Limit::Members => {
            DomainError::LimitReached(format!("a hangout has at most {MAX_MEMBERS} members"))
        }
    }
}

/// Checks a new invitation's fields; returns the target.
fn parse_new(
    new: &NewInvitation,
    now: Timestamp,
) -> DomainResult<(InvitationTarget, Option<Timestamp>)> {
    if new.role == Role::Owner {
        return Err(DomainError::invalid("role", "must be GUEST or CO_HOST"));
    }
    if let Some(expires_at) = new.expires_at
        && expires_at <= now
    {
        return Err(DomainError::invalid("expiresAt", "must be in the future"));
    }
    match &new.email {
        Some(email) => {
            if new.max_uses.is_some() {
                return Err(DomainError::invalid(
                    "maxUses",
                    "is only for a link (an invitation without email)",
                ));
            }
            let email = Email::parse(email)?;
            let expires_at = new
                .expires_at
                .unwrap_or_else(|| now.plus(PERSON_INVITATION_TTL));
            Ok((InvitationTarget::Person(email), Some(expires_at)))
        }
        None => {
            if let Some(uses) = new.max_uses
                && !(1..=MAX_LINK_USES).contains(&uses)
            {
                return Err(DomainError::invalid(
                    "maxUses",
                    format!("must be 1 to {MAX_LINK_USES}"),
                ));
            }
            Ok((
                InvitationTarget::Link {
                    max_uses: new.max_uses,
                    uses: 0,
                },
                new.expires_at,
            ))
        }
    }
}

impl<S: Store> Service<S> {
    /// Creates an invitation: OWNER invites with any role, CO_HOST invites guests. The
    /// answer is the same whether or not an account has the email address.
    ///
    /// # Errors
    /// `Invalid` naming the field; `NotFound` for a hangout the caller cannot see;
    /// `Forbidden` for a role that may not invite with this role; `LimitReached` past
    /// [`MAX_OPEN_INVITATIONS`]; `RateLimited` past [`MAX_INVITATIONS_PER_WINDOW`].
    pub async fn create_invitation(
        &self,
        caller: UserId,
        new: NewInvitation,
    ) -> DomainResult<Invitation> {
        let now = Timestamp::now();
        let (target, expires_at) = parse_new(&new, now)?;
        let action = Action::Invite { role: new.role };
        self.authorize(caller, new.hangout, action).await?;
        let id = InvitationId::generate();
        let code_hash = match target {
            InvitationTarget::Link { .. } => Some(token_hash(&self.settings.code_key.code_for(id))),
            InvitationTarget::Person(_) => None,
        };
        let inviter = self
            .store
            .users_by_ids(&[caller])
            .await?
            .pop()
            .ok_or(DomainError::Unauthenticated("unknown caller"))?;
        let invitation = Invitation {
            id,
            hangout: new.hangout,
            role: new.role,
            target,
            invited_by: inviter,
            state: InvitationState::Pending,
            created_at: now,
            expires_at,
            hangout_title: String::new(),
            hangout_date: now,
            code_hash: None,
            code: None,
        };
        let limits = NewInvitationLimits {
            max_open: MAX_OPEN_INVITATIONS,
            max_recent: MAX_INVITATIONS_PER_WINDOW,
            rate_since: now.minus(INVITATION_RATE_WINDOW),
            now,
        };
        match self
            .store
            .insert_invitation(
                &invitation,
                code_hash.as_deref(),
                &limits,
                &action.guard(caller),
            )
            .await
        {
            Ok(()) => {}
            Err(StoreError::Limit(limit)) => return Err(limit_error(limit)),
            Err(error) => {
                return Err(self
                    .refused_after_change(caller, new.hangout, action, error)
                    .await);
            }
        }
        let stored = self
            .store
            .invitations_by_ids(&[id])
            .await?
            .pop()
            .ok_or(DomainError::NotFound)?;
        Ok(stored
            .reveal_code(&self.settings.code_key)
            .seen_by(caller, false))
    }

    /// Joins the invitation's hangout with its role. A member accepting again gets the
    /// hangout and nothing changes; of two accepting the last use of a link, one gets in.
    ///
    /// # Errors
    /// `NotFound` for an unknown, foreign, revoked, declined, expired or used-up invitation;
    /// `LimitReached` when the hangout has [`MAX_MEMBERS`].
    pub async fn accept_invitation(&self, caller: UserId, by: AcceptBy) -> DomainResult<Hangout> {
        let invitation = match by {
            AcceptBy::Code(code) => {
                self.store
                    .invitation_by_code_hash(&token_hash(&code))
                    .await?
            }
            AcceptBy::Id(id) => self.addressed_to(caller, id).await?,
        }
        .ok_or(DomainError::NotFound)?;
        let hangout = invitation.hangout;
        if self.store.role_of(hangout, caller).await?.is_some() {
            // Already a member: an invitation to their address is answered by being one.
            if matches!(invitation.target, InvitationTarget::Person(_)) {
                self.store
                    .close_invitation(invitation.id, InvitationState::Accepted, None)
                    .await?;
            }
        } else {
            if !invitation.is_open(Timestamp::now()) {
                return Err(DomainError::NotFound);
            }
            match self
                .store
                .accept_invitation(&invitation, caller, Timestamp::now())
                .await
            {
                Ok(true) | Err(StoreError::Conflict(_)) => {}
                Ok(false) => return Err(DomainError::NotFound),
                Err(StoreError::Limit(limit)) => return Err(limit_error(limit)),
                Err(error) => return Err(error.into()),
            }
        }
        self.store
            .hangouts_by_ids(caller, &[hangout])
            .await?
            .pop()
            .ok_or(DomainError::NotFound)
    }

    /// The invitation `id` when it is addressed to the caller's email.
    async fn addressed_to(
        &self,
        caller: UserId,
        id: InvitationId,
    ) -> DomainResult<Option<Invitation>> {
        let email = self.store.email_of(caller).await?;
        Ok(self
            .store
            .invitations_by_ids(&[id])
            .await?
            .pop()
            .filter(|invitation| invitation.is_addressed_to(email.as_ref())))
    }

    /// The addressee declines an open invitation to their email.
    ///
    /// # Errors
    /// `NotFound` unless it is open and addressed to the caller.
    pub async fn decline_invitation(
        &self,
        caller: UserId,
        id: InvitationId,
    ) -> DomainResult<Invitation> {
        let invitation = self
            .addressed_to(caller, id)
            .await?
            .filter(|invitation| invitation.is_open(Timestamp::now()))
            .ok_or(DomainError::NotFound)?;
        if !self
            .store
            .close_invitation(id, InvitationState::Declined, None)
            .await?
        {
            return Err(DomainError::NotFound);
        }
        Ok(Invitation {
            state: InvitationState::Declined,
            ..invitation
        }
        .seen_by(caller, true))
    }

    /// Revokes an invitation: OWNER any, CO_HOST guest invitations. One that is no longer
    /// pending is returned as it is.
    ///
    /// # Errors
    /// `NotFound` for an invitation of a hangout the caller cannot see; `Forbidden` for a
    /// role that may not manage it.
    pub async fn revoke_invitation(
        &self,
        caller: UserId,
        id: InvitationId,
    ) -> DomainResult<Invitation> {
        let invitation = self
            .store
            .invitations_by_ids(&[id])
            .await?
            .pop()
            .ok_or(DomainError::NotFound)?;
        let role = self.store.role_of(invitation.hangout, caller).await?;
        Action::ManageInvitations.check(role)?;
        let action = Action::Revoke {
            role: invitation.role,
        };
        action.check(role)?;
        let guard = action.guard(caller);
        let revoked = invitation.state == InvitationState::Pending
            && self
                .guarded(
                    caller,
                    invitation.hangout,
                    action,
                    self.store
                        .close_invitation(id, InvitationState::Revoked, Some(&guard)),
                )
                .await?;
        let invitation = if revoked {
            Invitation {
                state: InvitationState::Revoked,
                ..invitation
            }
        } else {
            invitation
        };
        let addressee = invitation.is_addressed_to(self.store.email_of(caller).await?.as_ref());
        Ok(invitation.seen_by(caller, addressee))
    }

    /// The invitations among `ids` the caller may see: those of hangouts they manage and those
    /// addressed to their email.
    ///
    /// # Errors
    /// Only internal ones.
    pub async fn invitations_by_ids(
        &self,
        caller: UserId,
        ids: &[InvitationId],
    ) -> DomainResult<Vec<Invitation>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let invitations = self.store.invitations_by_ids(ids).await?;
        let roles = self
            .roles_in(caller, invitations.iter().map(|i| i.hangout))
            .await?;
        let email = self.store.email_of(caller).await?;
        Ok(invitations
            .into_iter()
            .filter_map(|invitation| {
                let manages = Action::ManageInvitations
                    .check(roles.get(&invitation.hangout).copied())
                    .is_ok();
                let addressee = invitation.is_addressed_to(email.as_ref());
                let invitation = if manages {
                    invitation.reveal_code(&self.settings.code_key)
                } else {
                    invitation
                };
                (manages || addressee).then(|| invitation.seen_by(caller, addressee))
            })
            .collect())
    }

    /// A page of open invitations for each requested hangout the caller is a member of:
    /// empty unless they manage it.
    ///
    /// # Errors
    /// `Invalid` for a bad page, naming the request's index.
    pub async fn invitations_of_hangouts(
        &self,
        caller: UserId,
        requests: Vec<InvitationPageRequest>,
    ) -> DomainResult<Vec<(HangoutId, Page<Invitation>)>> {
        let roles = self
            .roles_in(caller, requests.iter().map(|request| request.hangout))
            .await?;
        let mut queries = Vec::new();
        let mut answers: Vec<(HangoutId, Option<usize>, PageSize)> = Vec::new();
        for (index, request) in requests.into_iter().enumerate() {
            let (size, query) = keyset(request.first, &request.after, &format!("pages[{index}]."))?;
            let Some(&role) = roles.get(&request.hangout) else {
                continue;
            };
            if Action::ManageInvitations.allowed_for(role) {
                answers.push((request.hangout, Some(queries.len()), size));
                queries.push((request.hangout, query));
            } else {
                answers.push((request.hangout, None, size));
            }
        }
        let now = Timestamp::now();
        let mut found: HashMap<usize, _> = if queries.is_empty() {
            HashMap::new()
        } else {
            self.store
                .open_invitations_of_hangouts(&queries, now)
                .await?
                .into_iter()
                .collect()
        };
        Ok(answers
            .into_iter()
            .map(|(hangout, query, size)| {
                let rows = query.and_then(|query| found.remove(&query));
                let (rows, total) =
                    rows.map_or((Vec::new(), 0), |rows| (rows.rows, rows.total_count));
                let key = &self.settings.code_key;
                let rows = rows
                    .into_iter()
                    .map(|i| i.reveal_code(key).seen_by(caller, false))
                    .collect();
                (
                    hangout,
                    Page::from_rows(rows, size, total, invitation_cursor),
                )
            })
            .collect())
    }

    /// Open invitations addressed to the caller's email, newest first.
    ///
    /// # Errors
    /// `Invalid` for a bad page.
    pub async fn my_invitations(
        &self,
        caller: UserId,
        first: u32,
        after: &str,
    ) -> DomainResult<Page<Invitation>> {
        let (size, query) = keyset(first, after, "")?;
        let Some(email) = self.store.email_of(caller).await? else {
            return Ok(Page::from_rows(Vec::new(), size, 0, invitation_cursor));
        };
        let rows = self
            .store
            .open_invitations_for_email(caller, &email, &query, Timestamp::now())
            .await?;
        let invitations = rows
            .rows
            .into_iter()
            .map(|i| i.seen_by(caller, true))
            .collect();
        Ok(Page::from_rows(
            invitations,
            size,
            rows.total_count,
            invitation_cursor,
        ))
    }

    /// What a link shows before it is accepted.
    ///
    /// # Errors
    /// `NotFound` unless the code names an open invitation.
    pub async fn invitation_preview(&self, code: &str) -> DomainResult<Invitation> {
        self.store
            .invitation_by_code_hash(&token_hash(code))
            .await?
            .filter(|invitation| invitation.is_open(Timestamp::now()))
            .ok_or(DomainError::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(max_uses: Option<u32>, uses: u32, expires_at: Option<i64>) -> Invitation {
        Invitation {
            id: InvitationId::generate(),
            hangout: HangoutId::generate(),
            role: Role::Guest,
            target: InvitationTarget::Link { max_uses, uses },
            invited_by: User {
                id: UserId::generate(),
                name: "Ada".to_owned(),
                email: Email::from_stored("ada@example.com".to_owned()),
                created_at: Timestamp::from_millis(1),
            },
            state: InvitationState::Pending,
            created_at: Timestamp::from_millis(1),
            expires_at: expires_at.map(Timestamp::from_millis),
            hangout_title: "Picnic".to_owned(),
            hangout_date: Timestamp::from_millis(1),
            code_hash: None,
            code: None,
        }
    }

    #[test]
    fn status_reads_expiry_and_uses() {
        let now = Timestamp::from_millis(100);
        assert_eq!(link(None, 5, None).status(now), InvitationStatus::Pending);
        assert_eq!(
            link(Some(2), 1, None).status(now),
            InvitationStatus::Pending
        );
        assert_eq!(
            link(Some(2), 2, None).status(now),
            InvitationStatus::Accepted
        );
        assert_eq!(
            link(None, 0, Some(100)).status(now),
            InvitationStatus::Expired
        );
        assert_eq!(
            link(None, 0, Some(101)).status(now),
            InvitationStatus::Pending
        );
        let revoked = Invitation {
            state: InvitationState::Revoked,
            ..link(None, 0, None)
        };
        assert_eq!(revoked.status(now), InvitationStatus::Revoked);
        assert_eq!(link(Some(3), 1, None).uses_left(), Some(2));
        assert_eq!(link(None, 1, None).uses_left(), None);
    }

    #[test]
    fn new_invitations_are_checked_field_by_field() {
        let now = Timestamp::from_millis(1_000);
        let new = |role, email: Option<&str>, expires_at: Option<i64>, max_uses| NewInvitation {
            hangout: HangoutId::generate(),
            role,
            email: email.map(str::to_owned),
            expires_at: expires_at.map(Timestamp::from_millis),
            max_uses,
        };
        let field = |result: DomainResult<_>| match result {
            Err(DomainError::Invalid { field, .. }) => field,
            other => format!("{other:?}"),
        };
        assert_eq!(
            field(parse_new(&new(Role::Owner, None, None, None), now)),
            "role"
        );
        assert_eq!(
            field(parse_new(&new(Role::Guest, Some("nope"), None, None), now)),
            "email"
        );
        assert_eq!(
            field(parse_new(
                &new(Role::Guest, Some("a@b.c"), None, Some(2)),
                now
            )),
            "maxUses"
        );
        assert_eq!(
            field(parse_new(&new(Role::Guest, None, None, Some(0)), now)),
            "maxUses"
        );
        assert_eq!(
            field(parse_new(&new(Role::Guest, None, None, Some(1001)), now)),
            "maxUses"
        );
        assert_eq!(
            field(parse_new(&new(Role::Guest, None, Some(1_000), None), now)),
            "expiresAt"
        );
        let (target, expires) =
            parse_new(&new(Role::CoHost, Some(" A@B.c "), None, None), now).unwrap();
        assert_eq!(
            target,
            InvitationTarget::Person(Email::from_stored("a@b.c".to_owned()))
        );
        assert_eq!(expires, Some(now.plus(PERSON_INVITATION_TTL)));
        let (target, expires) = parse_new(&new(Role::Guest, None, None, Some(1000)), now).unwrap();
        assert_eq!(
            target,
            InvitationTarget::Link {
                max_uses: Some(1000),
                uses: 0
            }
        );
        assert_eq!(expires, None);
    }
}
