//! One client interface over both transports, so every scenario is written once.

use std::net::SocketAddr;

use natter_proto::auth::v1 as pb;
use natter_proto::auth::v1::auth_service_client::AuthServiceClient;
use serde_json::{Value, json};
use tonic::transport::Channel;

/// Tokens from a login or refresh.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
    pub session_id: String,
    pub user_id: String,
}

/// The kind of a refusal, as both transports can express it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 422 / InvalidArgument.
    Invalid,
    /// 409 / AlreadyExists.
    Conflict,
    /// 401 / Unauthenticated.
    Unauthenticated,
    /// 429 / ResourceExhausted.
    RateLimited,
    /// Anything else.
    Other,
}

/// A refused call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: Kind,
    pub message: String,
    pub retry_after: Option<u64>,
}

pub type Outcome<T> = Result<T, Failure>;

#[async_trait::async_trait]
pub trait Api: Send + Sync {
    async fn register(
        &self,
        username: &str,
        password: &str,
        email: Option<&str>,
    ) -> Outcome<String>;
    /// Registers and opens a session in the same call.
    async fn register_with_session(&self, username: &str, password: &str) -> Outcome<Tokens>;
    /// `ip` is the end user's address as the edge saw it.
    async fn login(&self, login: &str, password: &str, ip: &str) -> Outcome<Tokens>;
    async fn refresh(&self, refresh_token: &str) -> Outcome<Tokens>;
    async fn logout(&self, access: Option<&str>, refresh: Option<&str>) -> Outcome<()>;
    /// The user id of a valid token.
    async fn validate(&self, access: &str) -> Outcome<String>;
    async fn jwks(&self) -> String;
}

pub struct GrpcApi {
    client: AuthServiceClient<Channel>,
}

pub struct JsonApi {
    http: reqwest::Client,
    base: String,
}

impl GrpcApi {
    async fn send_register(&self, request: pb::RegisterRequest) -> Outcome<pb::RegisterResponse> {
        let response = self.client.clone().register(request).await;
        Ok(response.map_err(grpc_failure)?.into_inner())
    }

    pub async fn connect(addr: SocketAddr) -> Self {
        let channel = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .expect("connect gRPC");
        Self {
            client: AuthServiceClient::new(channel),
        }
    }
}

fn grpc_failure(status: tonic::Status) -> Failure {
    let kind = match status.code() {
        tonic::Code::InvalidArgument => Kind::Invalid,
        tonic::Code::AlreadyExists => Kind::Conflict,
        tonic::Code::Unauthenticated => Kind::Unauthenticated,
        tonic::Code::ResourceExhausted => Kind::RateLimited,
        _ => Kind::Other,
    };
    let retry_after = status
        .metadata()
        .get("retry-after")
        .and_then(|v| v.to_str().ok()?.parse().ok());
    Failure {
        kind,
        message: status.message().to_owned(),
        retry_after,
    }
}

fn grpc_tokens(pair: pb::TokenPair) -> Tokens {
    Tokens {
        access: pair.access_token,
        refresh: pair.refresh_token,
        session_id: pair.session_id,
        user_id: pair.user.map(|u| u.id).unwrap_or_default(),
    }
}

#[async_trait::async_trait]
impl Api for GrpcApi {
    async fn register(
        &self,
        username: &str,
        password: &str,
        email: Option<&str>,
    ) -> Outcome<String> {
        let request = pb::RegisterRequest {
            username: username.into(),
            password: password.into(),
            email: email.map(str::to_owned),
            ..Default::default()
        };
        Ok(self.send_register(request).await?.user.unwrap().id)
    }

    async fn register_with_session(&self, username: &str, password: &str) -> Outcome<Tokens> {
        let request = pb::RegisterRequest {
            username: username.into(),
            password: password.into(),
            open_session: true,
            ..Default::default()
        };
        let response = self.send_register(request).await?;
        Ok(grpc_tokens(response.session.expect("a session")))
    }

    async fn login(&self, login: &str, password: &str, ip: &str) -> Outcome<Tokens> {
        let request = pb::LoginRequest {
            login: login.into(),
            password: password.into(),
            client: Some(pb::ClientInfo {
                ip: ip.into(),
                user_agent: "grpc-test".into(),
            }),
        };
        let response = self
            .client
            .clone()
            .login(request)
            .await
            .map_err(grpc_failure)?;
        Ok(grpc_tokens(response.into_inner()))
    }

    async fn refresh(&self, refresh_token: &str) -> Outcome<Tokens> {
        let request = pb::RefreshTokenRequest {
            refresh_token: refresh_token.into(),
            client: None,
        };
        let response = self
            .client
            .clone()
            .refresh_token(request)
            .await
            .map_err(grpc_failure)?;
        Ok(grpc_tokens(response.into_inner()))
    }

    async fn logout(&self, access: Option<&str>, refresh: Option<&str>) -> Outcome<()> {
        let request = pb::LogoutRequest {
            access_token: access.unwrap_or_default().into(),
            refresh_token: refresh.unwrap_or_default().into(),
        };
        self.client
            .clone()
            .logout(request)
            .await
            .map_err(grpc_failure)?;
        Ok(())
    }

    async fn validate(&self, access: &str) -> Outcome<String> {
        let request = pb::ValidateTokenRequest {
            access_token: access.into(),
        };
        let response = self
            .client
            .clone()
            .validate_token(request)
            .await
            .map_err(grpc_failure)?;
        Ok(response.into_inner().user_id)
    }

    async fn jwks(&self) -> String {
        let response = self
            .client
            .clone()
            .get_jwks(pb::GetJwksRequest {})
            .await
            .unwrap();
        response.into_inner().jwks_json
    }
}

impl JsonApi {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: format!("http://{addr}"),
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Outcome<Value> {
        let response = request.send().await.expect("HTTP request");
        let status = response.status();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()?.parse().ok());
        let text = response.text().await.unwrap();
        if status.is_success() {
            return Ok(serde_json::from_str(&text).unwrap_or(Value::Null));
        }
        let body: Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("error bodies are JSON, got {status} {text:?}"));
        let code = body["error"]["code"].as_str().expect("error.code");
        assert!(!code.is_empty() && code.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        let kind = match status.as_u16() {
            400 | 422 => Kind::Invalid,
            409 => Kind::Conflict,
            401 => Kind::Unauthenticated,
            429 => Kind::RateLimited,
            _ => Kind::Other,
        };
        Err(Failure {
            kind,
            message: body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            retry_after,
        })
    }

    fn post(&self, path: &str, body: Value) -> reqwest::RequestBuilder {
        self.http.post(format!("{}{path}", self.base)).json(&body)
    }
}

fn json_tokens(body: Value) -> Tokens {
    let text = |v: &Value| v.as_str().unwrap().to_owned();
    assert_eq!(body["token_type"], "Bearer");
    Tokens {
        access: text(&body["access_token"]),
        refresh: text(&body["refresh_token"]),
        session_id: text(&body["session_id"]),
        user_id: text(&body["user"]["id"]),
    }
}

#[async_trait::async_trait]
impl Api for JsonApi {
    async fn register(
        &self,
        username: &str,
        password: &str,
        email: Option<&str>,
    ) -> Outcome<String> {
        let body = json!({"username": username, "password": password, "email": email});
        let user = self.send(self.post("/api/v1/auth/register", body)).await?;
        Ok(user["id"].as_str().unwrap().to_owned())
    }

    async fn register_with_session(&self, username: &str, password: &str) -> Outcome<Tokens> {
        let body = json!({"username": username, "password": password, "session": true});
        self.send(self.post("/api/v1/auth/register", body))
            .await
            .map(json_tokens)
    }

    async fn login(&self, login: &str, password: &str, ip: &str) -> Outcome<Tokens> {
        let body = json!({"login": login, "password": password});
        let request = self
            .post("/api/v1/auth/login", body)
            .header("x-forwarded-for", ip);
        self.send(request).await.map(json_tokens)
    }

    async fn refresh(&self, refresh_token: &str) -> Outcome<Tokens> {
        let body = json!({"refresh_token": refresh_token});
        self.send(self.post("/api/v1/auth/refresh", body))
            .await
            .map(json_tokens)
    }

    async fn logout(&self, access: Option<&str>, refresh: Option<&str>) -> Outcome<()> {
        let mut request = self.post("/api/v1/auth/logout", json!({"refresh_token": refresh}));
        if let Some(token) = access {
            request = request.bearer_auth(token);
        }
        self.send(request).await.map(|_| ())
    }

    async fn validate(&self, access: &str) -> Outcome<String> {
        let request = self
            .http
            .get(format!("{}/api/v1/auth/me", self.base))
            .bearer_auth(access);
        let me = self.send(request).await?;
        Ok(me["user_id"].as_str().unwrap().to_owned())
    }

    async fn jwks(&self) -> String {
        let response = self
            .http
            .get(format!("{}/.well-known/jwks.json", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.headers()["content-type"],
            "application/jwk-set+json"
        );
        response.text().await.unwrap()
    }
}
