//! Who may do what: logins, users and their roles, tokens of every kind.

use kairos_api::control::{
    IssuedKind, IssuedToken, LoggedIn, LoginRequest, Me, NewToken, NewUser, TokenKind, TokenView,
    UserView,
};
use kairos_api::{Code, Problem};
use kairos_rules::time::Timestamp;
use kairos_store::StoreError;
use kairos_store::control::{Token, User};

use super::{Caller, ControlPlane, blocking, not_found, storage, time};
use crate::auth::{self, Role};

const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// The channels a touchpoint token's subject names, in order.
pub(super) fn token_channels(subject: &str) -> impl Iterator<Item = &str> {
    subject.split(',').map(str::trim).filter(|c| !c.is_empty())
}

fn token_view(kind: TokenKind, t: Token) -> TokenView {
    TokenView {
        id: t.id().to_string(),
        kind,
        created_at: time(t.created_at),
        expires_at: t.expires_at.map(time),
        subject: t.subject,
        label: t.label,
        created_by: t.created_by,
    }
}

/// A stored kind as the kind it is; one this build does not know is no token at all.
fn kind_of(stored: &str) -> Option<TokenKind> {
    TokenKind::ALL.into_iter().find(|k| k.name() == stored)
}

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

    /// Issues a token; only its digest is stored. Runtimes learn of a new touchpoint token
    /// at once: what they accept changed.
    pub async fn issue_token(
        &self,
        kind: TokenKind,
        subject: &str,
        label: &str,
        by: &str,
        expires_at: Option<Timestamp>,
    ) -> Result<(String, Token), StoreError> {
        let secret = auth::new_token(match kind {
            TokenKind::User => "ku",
            TokenKind::Runtime => "kr",
            TokenKind::Touchpoint => "kt",
        });
        let token = Token {
            kind: kind.name().to_string(),
            subject: subject.to_string(),
            label: label.to_string(),
            digest: auth::token_digest(&secret),
            expires_at,
            created_by: by.to_string(),
            created_at: self.now(),
        };
        self.store.add_token(&token).await?;
        if kind == TokenKind::Touchpoint {
            self.store.touch_groups().await?;
            self.signal();
        }
        Ok((secret, token))
    }

    /// Revokes the tokens of `kind` for `subject` with this label (`kairos up` revokes the
    /// runtime tokens of its earlier start: those runtimes are gone).
    pub async fn revoke_tokens(
        &self,
        kind: TokenKind,
        subject: &str,
        label: &str,
    ) -> Result<(), StoreError> {
        self.store
            .revoke_tokens(kind.name(), subject, label)
            .await?;
        Ok(())
    }

    /// Who holds this token: a user, or a group's runtime. Touchpoint tokens are for
    /// runtimes, not for the control plane; an expired token, or a disabled user's, is none.
    pub async fn caller(&self, secret: &str) -> Result<Caller, Problem> {
        let invalid = || Problem::new(Code::Unauthorized, "this token is not valid; log in again");
        let token = self
            .store
            .token(&auth::token_digest(secret))
            .await
            .map_err(storage)?
            .filter(|t| !t.expired(self.now()))
            .ok_or_else(invalid)?;
        match kind_of(&token.kind).ok_or_else(invalid)? {
            TokenKind::User => {
                let user = self
                    .store
                    .user(&token.subject)
                    .await
                    .map_err(storage)?
                    .filter(|u| !u.disabled)
                    .ok_or_else(invalid)?;
                Ok(Caller {
                    name: user.name,
                    roles: roles_of(&user.roles),
                    runtime_group: None,
                    token: Some(token.digest),
                })
            }
            TokenKind::Runtime => Ok(Caller {
                name: format!("runtime of {}", token.subject),
                roles: Vec::new(),
                runtime_group: Some(token.subject),
                token: Some(token.digest),
            }),
            TokenKind::Touchpoint => Err(invalid()),
        }
    }

    /// Logs a user in from `from` (the client's address, when known). Failures are audited
    /// and counted; past a few, per user or per address, logins wait (429).
    pub async fn login(
        &self,
        request: LoginRequest,
        from: Option<std::net::IpAddr>,
    ) -> Result<LoggedIn, Problem> {
        let wait = self
            .throttle
            .lock()
            .expect("the throttle is never poisoned")
            .wait(&request.user, from, self.now());
        if let Some(seconds) = wait {
            return Err(Problem::new(
                Code::TooManyAttempts,
                format!("too many failed logins: try again in {seconds} s"),
            ));
        }
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
        let refused = match &user {
            Some(u) if matches && u.disabled => Some(format!(
                "{} is disabled; an administrator can enable them again",
                u.name
            )),
            Some(_) if matches => None,
            _ => Some("unknown user or wrong password".to_string()),
        };
        if let Some(why) = refused {
            self.throttle
                .lock()
                .expect("the throttle is never poisoned")
                .failed(&request.user, from, self.now());
            let detail = match from {
                Some(ip) => format!("{why} (from {ip})"),
                None => why.clone(),
            };
            self.audit(&request.user, "login failed", &request.user, detail)
                .await?;
            return Err(Problem::new(Code::BadCredentials, why));
        }
        self.throttle
            .lock()
            .expect("the throttle is never poisoned")
            .succeeded(&request.user);
        let user = user.expect("a login that matched has its user");
        let (token, _) = self
            .issue_token(TokenKind::User, &user.name, "login", &user.name, None)
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

    /// Sets a user's password and enables them, without a caller: `kairos user
    /// reset-password`, for an administrator locked out, runs it against the database with
    /// the server stopped. Their tokens end; the audit log records that it ran.
    pub async fn reset_password(&self, name: &str, password: String) -> Result<(), Problem> {
        if password.len() < 8 {
            return Err(Problem::bad_request(
                "password: at least 8 characters are needed",
            ));
        }
        let mut user = self.user_named(name).await?;
        user.password_hash = blocking("hashing the password", move || {
            auth::hash_password(&password)
        })
        .await?;
        user.disabled = false;
        self.store
            .put_user(&user, self.now())
            .await
            .map_err(storage)?;
        self.audit(
            "kairos user reset-password",
            "reset password",
            name,
            String::new(),
        )
        .await
    }

    async fn user_named(&self, name: &str) -> Result<User, Problem> {
        self.store
            .user(name)
            .await
            .map_err(storage)?
            .ok_or_else(|| not_found(format!("there is no user '{name}'")))
    }

    /// Ends the caller's own token.
    pub async fn logout(&self, caller: &Caller) -> Result<(), Problem> {
        if let Some(digest) = &caller.token {
            self.store.revoke_token(digest).await.map_err(storage)?;
            self.audit(&caller.name, "logout", &caller.name, String::new())
                .await?;
        }
        Ok(())
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
        Ok(users.into_iter().map(user_view).collect())
    }

    /// Creates a user or replaces one's password and roles; a new password ends the user's
    /// tokens.
    pub async fn create_user(&self, caller: &Caller, new: NewUser) -> Result<UserView, Problem> {
        caller.require(&[Role::Administrator])?;
        if new.name.trim().is_empty() || new.password.len() < 8 {
            return Err(Problem::bad_request(
                "name and password: a name and a password of at least 8 characters are needed",
            ));
        }
        let name = new.name.trim().to_string();
        let existing = self.store.user(&name).await.map_err(storage)?;
        let password = new.password;
        let user = User {
            name,
            password_hash: blocking("hashing the password", move || {
                auth::hash_password(&password)
            })
            .await?,
            roles: new.roles.iter().map(|r| r.name().to_string()).collect(),
            disabled: existing.is_some_and(|u| u.disabled),
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
        Ok(user_view(user))
    }

    /// Disables a user, or enables one again: a disabled user cannot log in and every
    /// token of theirs ends now.
    pub async fn set_user_disabled(
        &self,
        caller: &Caller,
        name: &str,
        disabled: bool,
    ) -> Result<UserView, Problem> {
        caller.require(&[Role::Administrator])?;
        if disabled && name == caller.name {
            return Err(Problem::new(
                Code::Forbidden,
                "you cannot disable yourself; ask another administrator",
            ));
        }
        let mut user = self.user_named(name).await?;
        user.disabled = disabled;
        self.store
            .put_user(&user, self.now())
            .await
            .map_err(storage)?;
        let action = if disabled {
            "disable user"
        } else {
            "enable user"
        };
        self.audit(&caller.name, action, name, String::new())
            .await?;
        Ok(user_view(user))
    }

    /// Deletes a user and every token of theirs. What they did stays in the audit log.
    pub async fn delete_user(&self, caller: &Caller, name: &str) -> Result<(), Problem> {
        caller.require(&[Role::Administrator])?;
        if name == caller.name {
            return Err(Problem::new(
                Code::Forbidden,
                "you cannot delete yourself; ask another administrator",
            ));
        }
        if !self.store.delete_user(name).await.map_err(storage)? {
            return Err(not_found(format!("there is no user '{name}'")));
        }
        self.audit(&caller.name, "delete user", name, String::new())
            .await
    }

    /// Every token, without secrets: touchpoint, runtime and users' logins.
    pub async fn tokens(&self, caller: &Caller) -> Result<Vec<TokenView>, Problem> {
        caller.require(&[Role::Administrator])?;
        let mut out = Vec::new();
        for kind in TokenKind::ALL {
            for t in self.store.tokens(kind.name()).await.map_err(storage)? {
                out.push(token_view(kind, t));
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
        let kind = TokenKind::from(new.kind);
        let subject = match new.kind {
            IssuedKind::Touchpoint => token_channels(&new.subject).collect::<Vec<_>>().join(","),
            IssuedKind::Runtime => new.subject.trim().to_string(),
        };
        if subject.is_empty() {
            return Err(Problem::bad_request(
                "for: the channels (touchpoint) or server group (runtime) the token is for",
            ));
        }
        let expires_at = match new.expires_in_seconds {
            None => None,
            Some(seconds @ 1..=315_360_000) => {
                Some(Timestamp(self.now().0 + seconds as i64 * NANOS_PER_SECOND))
            }
            Some(seconds) => {
                return Err(Problem::bad_request(format!(
                    "expires_in_seconds: {seconds} is not within 1 to 315360000 (ten years)"
                )));
            }
        };
        let (secret, token) = self
            .issue_token(kind, &subject, &new.label, &caller.name, expires_at)
            .await
            .map_err(storage)?;
        self.audit(
            &caller.name,
            "token",
            &subject,
            format!("{} token {} '{}'", kind.name(), token.id(), new.label),
        )
        .await?;
        Ok(IssuedToken {
            token: secret,
            id: token.id().to_string(),
            kind,
            subject,
            expires_at: expires_at.map(time),
        })
    }

    /// Revokes a token by its ID: an administrator any, a user their own. Runtimes stop
    /// accepting a touchpoint token at their next poll, which this change answers at once.
    pub async fn revoke(&self, caller: &Caller, id: &str) -> Result<(), Problem> {
        let missing = || not_found(format!("there is no token '{id}'"));
        if !caller.has(Role::Administrator) {
            let own = self
                .store
                .tokens(TokenKind::User.name())
                .await
                .map_err(storage)?
                .into_iter()
                .any(|t| t.id() == id && t.subject == caller.name);
            if !own {
                caller.require(&[Role::Administrator])?;
            }
        }
        let revoked = self
            .store
            .revoke_token(id)
            .await
            .map_err(storage)?
            .ok_or_else(missing)?;
        if revoked.kind != TokenKind::User.name() {
            self.store.touch_groups().await.map_err(storage)?;
            self.signal();
        }
        self.audit(
            &caller.name,
            "revoke token",
            &revoked.subject,
            format!("{} token {id} '{}'", revoked.kind, revoked.label),
        )
        .await
    }
}

fn user_view(u: User) -> UserView {
    UserView {
        roles: roles_of(&u.roles),
        name: u.name,
        disabled: u.disabled,
    }
}

/// Stored role names as roles; a name this version does not know gives nothing.
fn roles_of(names: &[String]) -> Vec<Role> {
    names.iter().filter_map(|r| Role::from_name(r)).collect()
}
