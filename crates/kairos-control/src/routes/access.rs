//! `/api/login`, `/api/me`, `/api/users`, `/api/tokens`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use kairos_api::Problem;
use kairos_api::control::{
    IssuedToken, LoggedIn, LoginRequest, Me, NewToken, NewUser, TokenView, UserView,
};

use super::{Body, Shared};
use crate::service::Caller;

#[utoipa::path(post, path = "/api/login", tag = "access", security(),
    request_body = LoginRequest,
    responses((status = 200, description = "A user token, shown this once", body = LoggedIn)))]
pub async fn login(
    State(cp): Shared,
    Body(request): Body<LoginRequest>,
) -> Result<Json<LoggedIn>, Problem> {
    Ok(Json(cp.login(request).await?))
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
