//! Who may do what in a hangout: the one place where roles are turned into permissions.
//!
//! Every operation on a hangout names its [`Action`] and asks [`Action::check`] with the
//! caller's role (`None` for a non-member). A non-member gets `NotFound` for everything, so
//! that a hangout's existence does not leak; a member whose role does not allow the action
//! gets `Forbidden`. Reads are scoped by membership in the store itself (every read joins the
//! caller's membership), which is the `SeeHangout` rule applied in SQL.

use crate::domain::{
    error::{DomainError, DomainResult},
    membership::Role,
};

/// Something a member may try to do in a hangout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// See the hangout, its activities, members and memories.
    SeeHangout,
    /// Change title, description, date or status.
    EditDetails,
    /// Replace the hangout's activities (with the owner's own).
    ChangeActivities,
    DeleteHangout,
    /// Invite someone with this role.
    Invite {
        role: Role,
    },
    /// See the pending invitations and revoke them.
    ManageInvitations,
    /// Revoke an invitation carrying this role.
    Revoke {
        role: Role,
    },
    /// Make a member a GUEST or a CO_HOST.
    ChangeRoles,
    /// Remove a member who has this role.
    RemoveMember {
        target: Role,
    },
    TransferOwnership,
    SetRsvp,
    Leave,
    AddMemories,
    /// Delete a memory; `own` when the caller uploaded it.
    DeleteMemory {
        own: bool,
    },
}

impl Action {
    /// Whether `role` allows this action.
    #[must_use]
    pub fn allowed_for(self, role: Role) -> bool {
        use Role::{CoHost, Guest, Owner};
        match self {
            Self::SeeHangout | Self::SetRsvp | Self::AddMemories => true,
            Self::EditDetails | Self::ManageInvitations => matches!(role, Owner | CoHost),
            Self::ChangeActivities
            | Self::DeleteHangout
            | Self::ChangeRoles
            | Self::TransferOwnership => role == Owner,
            Self::Invite { role: invited } | Self::Revoke { role: invited } => match invited {
                Guest => matches!(role, Owner | CoHost),
                CoHost => role == Owner,
                Owner => false,
            },
            Self::RemoveMember { target } => match target {
                Owner => false,
                CoHost => role == Owner,
                Guest => matches!(role, Owner | CoHost),
            },
            Self::Leave => role != Owner,
            Self::DeleteMemory { own } => own || matches!(role, Owner | CoHost),
        }
    }

    /// The roles this action is allowed to.
    #[must_use]
    pub fn roles(self) -> Vec<Role> {
        [Role::Owner, Role::CoHost, Role::Guest]
            .into_iter()
            .filter(|role| self.allowed_for(*role))
            .collect()
    }

    /// The check the store repeats inside the change's transaction.
    #[must_use]
    pub fn guard(self, user: crate::domain::ids::UserId) -> crate::domain::store::Guard {
        crate::domain::store::Guard {
            user,
            roles: self.roles(),
        }
    }

    /// The caller's role when it allows this action.
    ///
    /// # Errors
    /// `NotFound` for a non-member, `Forbidden` for a member whose role does not allow it.
    pub fn check(self, role: Option<Role>) -> DomainResult<Role> {
        let role = role.ok_or(DomainError::NotFound)?;
        if self.allowed_for(role) {
            Ok(role)
        } else {
            Err(DomainError::Forbidden(self.refusal()))
        }
    }

    /// What a refused member is told.
    fn refusal(self) -> &'static str {
        match self {
            Self::SeeHangout | Self::SetRsvp | Self::AddMemories => "not allowed",
            Self::EditDetails => "only the owner and co-hosts edit the hangout",
            Self::ChangeActivities => "only the owner changes the hangout's activities",
            Self::DeleteHangout => "only the owner deletes the hangout",
            Self::Invite { .. } => "your role may not invite with this role",
            Self::ManageInvitations | Self::Revoke { .. } => {
                "your role may not manage these invitations"
            }
            Self::ChangeRoles => "only the owner changes roles",
            Self::RemoveMember { .. } => "your role may not remove this member",
            Self::TransferOwnership => "only the owner hands over the hangout",
            Self::Leave => "the owner cannot leave; hand over ownership or delete the hangout",
            Self::DeleteMemory { .. } => {
                "only the uploader, co-hosts and the owner delete a memory"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Role::{CoHost, Guest, Owner};

    /// The contract's table of roles, action by action: who is allowed.
    #[test]
    fn the_roles_of_the_contract() {
        let table: &[(Action, &[Role])] = &[
            (Action::SeeHangout, &[Owner, CoHost, Guest]),
            (Action::EditDetails, &[Owner, CoHost]),
            (Action::ChangeActivities, &[Owner]),
            (Action::DeleteHangout, &[Owner]),
            (Action::Invite { role: Guest }, &[Owner, CoHost]),
            (Action::Invite { role: CoHost }, &[Owner]),
            (Action::Invite { role: Owner }, &[]),
            (Action::ManageInvitations, &[Owner, CoHost]),
            (Action::Revoke { role: Guest }, &[Owner, CoHost]),
            (Action::Revoke { role: CoHost }, &[Owner]),
            (Action::ChangeRoles, &[Owner]),
            (Action::RemoveMember { target: Guest }, &[Owner, CoHost]),
            (Action::RemoveMember { target: CoHost }, &[Owner]),
            (Action::RemoveMember { target: Owner }, &[]),
            (Action::TransferOwnership, &[Owner]),
            (Action::SetRsvp, &[Owner, CoHost, Guest]),
            (Action::Leave, &[CoHost, Guest]),
            (Action::AddMemories, &[Owner, CoHost, Guest]),
            (Action::DeleteMemory { own: true }, &[Owner, CoHost, Guest]),
            (Action::DeleteMemory { own: false }, &[Owner, CoHost]),
        ];
        for (action, allowed) in table {
            for role in [Owner, CoHost, Guest] {
                assert_eq!(
                    action.allowed_for(role),
                    allowed.contains(&role),
                    "{action:?} for {role:?}"
                );
                let checked = action.check(Some(role));
                if allowed.contains(&role) {
                    assert_eq!(checked.ok(), Some(role));
                } else {
                    assert!(matches!(checked, Err(DomainError::Forbidden(_))));
                }
            }
            assert!(matches!(action.check(None), Err(DomainError::NotFound)));
        }
    }
}
