//! Who may do what: logins, users and their roles, tokens.

use kairos_api::control::{
    IssuedToken, LoggedIn, LoginRequest, Me, NewToken, NewUser, TokenKind, TokenView, UserView,
};
use kairos_api::{Code, Problem};
use kairos_store::StoreError;
use kairos_store::control::{Token, User};

use super::{Caller, ControlPlane, blocking, storage};
use crate::auth::{self, Role};

impl ControlPlane {
    /// Creates the `admin` user with every role, unless it exists; returns whether it did.
    pub async fn ensure_admin(&self, password: &str) -> Result<bool, StoreError> {
        if self.store.user("admin").await?.is_some() {
            return Ok(false);
        }
        let user = User {
            name: "admin".into(),
            password_hash: auth::hash_password(password),
            roles: Role::ALL.iter().map(|r| r.name().to_string()).collect(),
            disabled: false,
        };
        self.store.put_user(&user, self.now()).await?;
        Ok(true)
    }

    /// Issues a token; only its digest is stored.
    pub async fn issue_token(
        &self,
        kind: &str,
        subject: &str,
        label: &str,
        by: &str,
    ) -> Result<String, StoreError> {
        let secret = auth::new_token(match kind {
            "user" => "ku",
            "runtime" => "kr",
            _ => "kt",
        });
        let token = Token {
            kind: kind.to_string(),
            subject: subject.to_string(),
            label: label.to_string(),
            digest: auth::token_digest(&secret),
            expires_at: None,
            created_by: by.to_string(),
            created_at: self.now(),
        };
        self.store.add_token(&token).await?;
        if kind == "touchpoint" {
            // Every group's runtimes must learn of it: what they serve changed.
            self.store.touch_groups().await?;
            self.signal();
        }
        Ok(secret)
    }

    /// Revokes the tokens of `kind` for `subject` with this label (`kairos up` revokes the
    /// runtime tokens of its earlier start: those runtimes are gone).
    pub async fn revoke_tokens(
        &self,
        kind: &str,
        subject: &str,
        label: &str,
    ) -> Result<(), StoreError> {
        self.store.revoke_tokens(kind, subject, label).await?;
        Ok(())
    }

    /// How many touchpoint tokens are issued: a set-up with none runs open.
    pub async fn touchpoint_token_count(&self) -> Result<usize, StoreError> {
        Ok(self.store.tokens("touchpoint").await?.len())
    }

    /// Who holds this token: a user, or a group's runtime. Touchpoint tokens are for
    /// runtimes, not for the control plane.
    pub async fn caller(&self, secret: &str) -> Result<Caller, Problem> {
        let invalid = || Problem::new(Code::Unauthorized, "this token is not valid; log in again");
        let token = self
            .store
            .token(&auth::token_digest(secret))
            .await
            .map_err(storage)?
            .ok_or_else(invalid)?;
        match token.kind.as_str() {
            "user" => {
                let user = self
                    .store
                    .user(&token.subject)
                    .await
                    .map_err(storage)?
                    .ok_or_else(invalid)?;
                Ok(Caller {
                    name: user.name,
                    roles: user
                        .roles
                        .iter()
                        .filter_map(|r| Role::from_name(r))
                        .collect(),
                    runtime_group: None,
                })
            }
            "runtime" => Ok(Caller {
                name: format!("runtime of {}", token.subject),
                roles: Vec::new(),
                runtime_group: Some(token.subject),
            }),
            _ => Err(invalid()),
        }
    }

    pub async fn login(&self, request: LoginRequest) -> Result<LoggedIn, Problem> {
        let user = self.store.user(&request.user).await.map_err(storage)?;
        // The same answer, after the same work, for an unknown user and a wrong password: an
        // unknown user is checked against a hash of nothing, so timing tells nobody who exists.
        let stored = user
            .as_ref()
            .map_or_else(|| self.no_user_hash.clone(), |u| u.password_hash.clone());
        let password = request.password;
        let matches = blocking("checking the password", move || {
            auth::verify_password(&password, &stored)
        })
        .await?;
        let Some(user) = user.filter(|_| matches) else {
            return Err(Problem::new(
                Code::BadCredentials,
                "unknown user or wrong password",
            ));
        };
        let token = self
            .issue_token("user", &user.name, "login", &user.name)
            .await
            .map_err(storage)?;
        self.audit(&user.name, "login", &user.name, String::new())
            .await?;
        Ok(LoggedIn {
            token,
            roles: roles_of(&user.roles),
            user: user.name,
        })
    }

    pub fn me(&self, caller: &Caller) -> Me {
        Me {
            user: caller.name.clone(),
            roles: caller.roles.clone(),
        }
    }

    pub async fn users(&self, caller: &Caller) -> Result<Vec<UserView>, Problem> {
        caller.require(&[Role::Administrator])?;
        let users = self.store.users().await.map_err(storage)?;
        Ok(users
            .into_iter()
            .map(|u| UserView {
                roles: roles_of(&u.roles),
                name: u.name,
            })
            .collect())
    }

    pub async fn create_user(&self, caller: &Caller, new: NewUser) -> Result<UserView, Problem> {
        caller.require(&[Role::Administrator])?;
        if new.name.trim().is_empty() || new.password.len() < 8 {
            return Err(Problem::bad_request(
                "name and password: a name and a password of at least 8 characters are needed",
            ));
        }
        let password = new.password;
        let user = User {
            name: new.name.trim().to_string(),
            password_hash: blocking("hashing the password", move || {
                auth::hash_password(&password)
            })
            .await?,
            roles: new.roles.iter().map(|r| r.name().to_string()).collect(),
            disabled: false,
        };
        self.store
            .put_user(&user, self.now())
            .await
            .map_err(storage)?;
        self.audit(
            &caller.name,
            "user",
            &user.name,
            format!("roles: {}", user.roles.join(", ")),
        )
        .await?;
        Ok(UserView {
            name: user.name,
            roles: new.roles,
        })
    }

    pub async fn tokens(&self, caller: &Caller) -> Result<Vec<TokenView>, Problem> {
        caller.require(&[Role::Administrator])?;
        let mut out = Vec::new();
        for kind in [TokenKind::Touchpoint, TokenKind::Runtime] {
            for t in self.store.tokens(kind.name()).await.map_err(storage)? {
                out.push(TokenView {
                    kind,
                    subject: t.subject,
                    label: t.label,
                });
            }
        }
        Ok(out)
    }

    pub async fn create_token(
        &self,
        caller: &Caller,
        new: NewToken,
    ) -> Result<IssuedToken, Problem> {
        caller.require(&[Role::Administrator])?;
        if new.subject.trim().is_empty() {
            return Err(Problem::bad_request(
                "for: the channel (touchpoint) or server group (runtime) the token is for",
            ));
        }
        let secret = self
            .issue_token(new.kind.name(), &new.subject, &new.label, &caller.name)
            .await
            .map_err(storage)?;
        self.audit(
            &caller.name,
            "token",
            &new.subject,
            format!("{} token '{}'", new.kind.name(), new.label),
        )
        .await?;
        Ok(IssuedToken {
            token: secret,
            kind: new.kind,
            subject: new.subject,
        })
    }
}

/// Stored role names as roles; a name this version does not know gives nothing.
fn roles_of(names: &[String]) -> Vec<Role> {
    names.iter().filter_map(|r| Role::from_name(r)).collect()
}
