//! Which channels a call may reach. A group is open (any call, no token) or closed; on a
//! closed group a touchpoint token reaches the channels it was issued for, and a token given
//! on the command line (offline mode) reaches every channel.

use std::collections::HashMap;
use std::sync::Arc;

use kairos_api::control::TouchpointGrant;
use kairos_api::{Code, Problem};

/// What one call may reach, settled from its token before it runs.
#[derive(Clone, Debug)]
pub enum Access {
    Any,
    Channels(Arc<[String]>),
}

impl Access {
    /// Refuses a call about `channel` unless this access reaches it.
    pub fn check(&self, channel: &str) -> Result<(), Problem> {
        match self {
            Access::Any => Ok(()),
            Access::Channels(channels)
                if channels.iter().any(|c| c.eq_ignore_ascii_case(channel)) =>
            {
                Ok(())
            }
            Access::Channels(channels) => Err(Problem::new(
                Code::TokenNotForChannel,
                format!(
                    "this touchpoint token is for {}, not for {channel}",
                    channels.join(", ")
                ),
            )),
        }
    }
}

/// The touchpoint tokens of the control plane, by digest, and whether the group is open.
pub struct Grants {
    pub open: bool,
    by_digest: HashMap<String, Grant>,
}

struct Grant {
    channels: Arc<[String]>,
    /// Unix seconds.
    expires_at: Option<i64>,
}

impl Grants {
    /// Open: a runtime nobody configured tokens for accepts every call.
    pub fn open() -> Grants {
        Grants {
            open: true,
            by_digest: HashMap::new(),
        }
    }

    pub fn new(open: bool, tokens: &[TouchpointGrant]) -> Grants {
        Grants {
            open,
            by_digest: tokens
                .iter()
                .map(|t| {
                    let grant = Grant {
                        channels: t.channels.iter().cloned().collect(),
                        expires_at: t.expires_at,
                    };
                    (t.digest.clone(), grant)
                })
                .collect(),
        }
    }

    /// The access of an issued token at `now` (Unix seconds): `None` for a token not issued
    /// for this group's channels; an expired token is refused, not ignored.
    pub fn access(&self, token: &str, now: i64) -> Option<Result<Access, Problem>> {
        let grant = self.by_digest.get(&kairos_api::token_digest(token))?;
        Some(match grant.expires_at {
            Some(at) if now >= at => Err(Problem::new(
                Code::Unauthorized,
                "this touchpoint token has expired; ask for a new one",
            )),
            _ => Ok(Access::Channels(grant.channels.clone())),
        })
    }
}

/// The origins whose pages may call this runtime from a browser (CORS): the group's, and
/// those given on the command line. `*` allows any.
#[derive(Clone, Debug, Default)]
pub struct Origins {
    any: bool,
    listed: Vec<String>,
}

impl Origins {
    pub fn new<'a>(origins: impl IntoIterator<Item = &'a String>) -> Origins {
        let mut allowed = Origins::default();
        for origin in origins {
            let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
            match origin.as_str() {
                "*" => allowed.any = true,
                "" => {}
                _ => allowed.listed.push(origin),
            }
        }
        allowed
    }

    /// Whether a page of `origin` (as its browser sends the header) may call.
    pub fn allow(&self, origin: &[u8]) -> bool {
        self.any
            || self
                .listed
                .iter()
                .any(|o| o.as_bytes().eq_ignore_ascii_case(origin))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_reaches_its_channels_until_it_expires() {
        let grants = Grants::new(
            false,
            &[TouchpointGrant {
                digest: kairos_api::token_digest("kt_shop"),
                channels: vec!["shop".into(), "app".into()],
                expires_at: Some(100),
            }],
        );
        let access = grants.access("kt_shop", 99).unwrap().unwrap();
        assert!(access.check("SHOP").is_ok() && access.check("app").is_ok());
        let refused = access.check("web").unwrap_err();
        assert_eq!(refused.code, Code::TokenNotForChannel);
        assert_eq!(
            refused.detail,
            "this touchpoint token is for shop, app, not for web"
        );
        assert_eq!(
            grants.access("kt_shop", 100).unwrap().unwrap_err().code,
            Code::Unauthorized
        );
        assert!(grants.access("kt_other", 0).is_none());
    }
}
