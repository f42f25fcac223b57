//! `/api/login`, `/api/logout`, `/api/me`, `/api/users`, `/api/tokens`.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use kairos_api::Problem;
use kairos_api::control::{
    DisabledRequest, IssuedToken, LoggedIn, LoginRequest, Me, NewToken, NewUser, TokenView,
    UserView,
};

use super::{Body, Shared};
use crate::service::Caller;

#[utoipa::path(post, path = "/api/login", tag = "access", security(),
    request_body = LoginRequest,
    responses((status = 200, description = "A user token, shown this once", body = LoggedIn)))]
pub async fn login(
    State(cp): Shared,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    Body(request): Body<LoginRequest>,
) -> Result<Json<LoggedIn>, Problem> {
    Ok(Json(cp.login(request, Some(from.ip())).await?))
}

#[utoipa::path(get, path = "/api/me", tag = "access",
    responses((status = 200, description = "Who the token belongs to", body = Me)))]
pub async fn me(State(cp): Shared, Extension(caller): Extension<Caller>) -> Json<Me> {
    Json(cp.me(&caller))
}

#[utoipa::path(get, path = "/api/users", tag = "access",
    responses((status = 200, description = "Every user and their roles", body = Vec<UserView>)))]
pub async fn users(
    State(cp): Shared,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Vec<UserView>>, Problem> {
    Ok(Json(cp.users(&caller).await?))
}

#[utoipa::path(post, path = "/api/users", tag = "access", request_body = NewUser,
    responses((status = 201, description = "The user, created or replaced", body = UserView)))]
pub async fn create_user(
    State(cp): Shared,
    Extension(caller): Extension<Caller>,
    Body(new): Body<NewUser>,
) -> Result<(StatusCode, Json<UserView>), Problem> {
    Ok((
        StatusCode::CREATED,
        Json(cp.create_user(&caller, new).await?),
    ))
}

#[utoipa::path(get, path = "/api/tokens", tag = "access",
    responses((status = 200, description = "Touchpoint and runtime tokens, without their secrets", body = Vec<TokenView>)))]
pub async fn tokens(
    State(cp): Shared,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Vec<TokenView>>, Problem> {
    Ok(Json(cp.tokens(&caller).await?))
}

#[utoipa::path(post, path = "/api/tokens", tag = "access", request_body = NewToken,
    responses((status = 201, description = "The token, its secret shown this once", body = IssuedToken)))]
pub async fn create_token(
    State(cp): Shared,
    Extension(caller): Extension<Caller>,
    Body(new): Body<NewToken>,
) -> Result<(StatusCode, Json<IssuedToken>), Problem> {
    Ok((
        StatusCode::CREATED,
        Json(cp.create_token(&caller, new).await?),
    ))
}

#[utoipa::path(post, path = "/api/logout", tag = "access",
    responses((status = 204, description = "The token this call came with no longer works")))]
pub async fn logout(
    State(cp): Shared,
    Extension(caller): Extension<Caller>,
) -> Result<StatusCode, Problem> {
    cp.logout(&caller).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, path = "/api/users/{user}/disabled", tag = "access",
    params(("user" = String, Path, description = "The user")),
    request_body = DisabledRequest,
    responses((status = 200, description = "The user, disabled (their tokens ended) or enabled", body = UserView)))]
pub async fn set_user_disabled(
    State(cp): Shared,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Body(request): Body<DisabledRequest>,
) -> Result<Json<UserView>, Problem> {
    Ok(Json(
        cp.set_user_disabled(&caller, &name, request.disabled)
            .await?,
    ))
}

#[utoipa::path(delete, path = "/api/users/{user}", tag = "access",
    params(("user" = String, Path, description = "The user")),
    responses((status = 204, description = "The user and their tokens are gone; the audit log keeps what they did")))]
pub async fn delete_user(
    State(cp): Shared,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<StatusCode, Problem> {
    cp.delete_user(&caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/tokens/{id}", tag = "access",
    params(("id" = String, Path, description = "The token's ID, as listed")),
    responses((status = 204, description = "The token no longer works, on every instance within a poll")))]
pub async fn revoke(
    State(cp): Shared,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    cp.revoke(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
