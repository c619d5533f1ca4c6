//! `natter.auth.v1.AuthService` over tonic: translates messages to the domain and
//! [`AuthError`](crate::AuthError) to `tonic::Status`.

use natter_core::grpc::peer_ip;
use natter_core::store::UserRecord;
use natter_proto::auth::v1 as pb;
use natter_proto::auth::v1::auth_service_server::{AuthService, AuthServiceServer};
use tonic::{Request, Response, Status};

use crate::{Auth, Client, LoginOutcome};

/// The gRPC face of [`Auth`].
#[derive(Debug, Clone)]
pub struct AuthGrpc {
    auth: Auth,
}

/// The tonic service for `auth`.
pub fn grpc_service(auth: Auth) -> AuthServiceServer<AuthGrpc> {
    AuthServiceServer::new(AuthGrpc { auth })
}

#[tonic::async_trait]
impl AuthService for AuthGrpc {
    #[tracing::instrument(name = "AuthService/Register", skip_all)]
    async fn register(
        &self,
        request: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::RegisterResponse>, Status> {
        let client = client_of(&request, request.get_ref().client.as_ref());
        let req = request.into_inner();
        let registered = self
            .auth
            .register(&req.username, &req.password, req.email.as_deref())
            .await?;
        let user = Some(user_message(&registered.user));
        let session = match req.open_session {
            true => Some(token_pair(
                self.auth.open_session(registered.user, &client).await?,
            )),
            false => None,
        };
        Ok(Response::new(pb::RegisterResponse { user, session }))
    }

    #[tracing::instrument(name = "AuthService/Login", skip_all)]
    async fn login(
        &self,
        request: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::TokenPair>, Status> {
        let client = client_of(&request, request.get_ref().client.as_ref());
        let req = request.into_inner();
        let outcome = self.auth.login(&req.login, &req.password, &client).await?;
        Ok(Response::new(token_pair(outcome)))
    }

    #[tracing::instrument(name = "AuthService/RefreshToken", skip_all)]
    async fn refresh_token(
        &self,
        request: Request<pb::RefreshTokenRequest>,
    ) -> Result<Response<pb::TokenPair>, Status> {
        let client = client_of(&request, request.get_ref().client.as_ref());
        let outcome = self
            .auth
            .refresh(&request.get_ref().refresh_token, &client)
            .await?;
        Ok(Response::new(token_pair(outcome)))
    }

    #[tracing::instrument(name = "AuthService/Logout", skip_all)]
    async fn logout(
        &self,
        request: Request<pb::LogoutRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        let req = request.into_inner();
        self.auth
            .logout(Some(&req.access_token), Some(&req.refresh_token))
            .await?;
        Ok(Response::new(pb::LogoutResponse {}))
    }

    #[tracing::instrument(name = "AuthService/ValidateToken", skip_all)]
    async fn validate_token(
        &self,
        request: Request<pb::ValidateTokenRequest>,
    ) -> Result<Response<pb::ValidateTokenResponse>, Status> {
        let identity = self.auth.validate(&request.get_ref().access_token).await?;
        let claims = identity.claims;
        Ok(Response::new(pb::ValidateTokenResponse {
            user_id: claims.sub,
            username: claims.name,
            session_id: claims.sid,
            token_id: claims.jti,
            expires_at: claims.exp,
        }))
    }

    async fn get_jwks(
        &self,
        _request: Request<pb::GetJwksRequest>,
    ) -> Result<Response<pb::GetJwksResponse>, Status> {
        Ok(Response::new(pb::GetJwksResponse {
            jwks_json: self.auth.jwks().to_string(),
        }))
    }
}

/// The end user's address and agent: as forwarded by an internal caller, else the peer.
fn client_of<T>(request: &Request<T>, forwarded: Option<&pb::ClientInfo>) -> Client {
    match forwarded {
        Some(info) if !info.ip.is_empty() => Client {
            ip: info.ip.clone(),
            user_agent: info.user_agent.clone(),
        },
        _ => Client {
            ip: peer_ip(request),
            user_agent: forwarded.map(|i| i.user_agent.clone()).unwrap_or_default(),
        },
    }
}

fn user_message(user: &UserRecord) -> pb::User {
    pb::User {
        id: user.id.clone(),
        username: user.username.clone(),
        email: user.email.clone(),
        created_at: user.created_at,
    }
}

fn token_pair(outcome: LoginOutcome) -> pb::TokenPair {
    pb::TokenPair {
        user: Some(user_message(&outcome.user)),
        access_token: outcome.access_token,
        expires_in: outcome.expires_in,
        refresh_token: outcome.refresh_token,
        refresh_expires_in: outcome.refresh_expires_in,
        session_id: outcome.session_id,
    }
}
