//! Who a verified token's claims say the user is, by a provider's claim mapping: the
//! user id, the display name (one claim or several joined), the rooms, the picture.

use super::{AuthError, Identity};
use crate::config::ClaimMapping;
use crate::event::UserRef;
use serde_json::{Map, Value};

/// A claim mapping with its dotted paths split once.
#[derive(Debug, Clone)]
pub struct ClaimMap {
    user: Vec<String>,
    name: Vec<Vec<String>>,
    rooms: Vec<String>,
    image: Vec<String>,
}

fn split(path: &str) -> Vec<String> {
    if path.is_empty() {
        return Vec::new();
    }
    path.split('.').map(str::to_owned).collect()
}

/// The value at `path` in `claims` (none for an empty path).
fn at<'a>(claims: &'a Map<String, Value>, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut v = claims.get(first)?;
    for k in rest {
        v = v.get(k)?;
    }
    Some(v)
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl ClaimMap {
    /// From the configuration's mapping.
    pub fn new(m: &ClaimMapping) -> ClaimMap {
        ClaimMap {
            user: split(&m.user),
            name: m.name.iter().map(|n| split(n)).collect(),
            rooms: split(&m.rooms),
            image: split(&m.image),
        }
    }

    /// Who `claims` say the user is.
    ///
    /// # Errors
    /// No user id where the mapping says it is (or an empty one).
    pub fn identity(&self, claims: &Map<String, Value>) -> Result<Identity, AuthError> {
        let id = text(at(claims, &self.user)).ok_or_else(|| {
            AuthError::Invalid(format!(
                "no user id in the token's `{}` claim",
                self.user.join(".")
            ))
        })?;
        let parts: Vec<String> = self
            .name
            .iter()
            .filter_map(|p| text(at(claims, p)))
            .collect();
        let name = (!parts.is_empty()).then(|| parts.join(" "));
        let rooms = match at(claims, &self.rooms) {
            Some(Value::Array(a)) => Some(
                a.iter()
                    .filter_map(|r| text(Some(r)))
                    .collect::<Vec<String>>(),
            ),
            Some(v @ Value::String(_)) => text(Some(v)).map(|r| vec![r]),
            _ => None,
        };
        let image = text(at(claims, &self.image));
        Ok(Identity {
            user: UserRef { id, name, image },
            rooms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn the_mapping_finds_the_user_where_the_provider_puts_it() {
        let default = ClaimMap::new(&ClaimMapping::default());
        let i = default
            .identity(&claims(json!({"sub": "u1", "name": "Ada", "rooms": ["a", 5], "picture": "https://p/1.png"})))
            .expect("identity");
        assert_eq!(i.user.id, "u1");
        assert_eq!(i.user.name.as_deref(), Some("Ada"));
        assert_eq!(i.user.image.as_deref(), Some("https://p/1.png"));
        assert_eq!(i.rooms, Some(vec!["a".to_string(), "5".to_string()]));
        let clerk = ClaimMap::new(&ClaimMapping {
            user: "sub".into(),
            name: vec!["first_name".into(), "last_name".into()],
            rooms: "metadata.rooms".into(),
            image: "image_url".into(),
        });
        let i = clerk
            .identity(&claims(json!({"sub": "user_2x", "first_name": "Ada", "last_name": "Lovelace", "metadata": {"rooms": "r1"}})))
            .expect("identity");
        assert_eq!(i.user.name.as_deref(), Some("Ada Lovelace"));
        assert_eq!(i.rooms, Some(vec!["r1".to_string()]));
        assert_eq!(i.user.image, None);
        let numeric = default
            .identity(&claims(json!({"sub": 42})))
            .expect("identity");
        assert_eq!(numeric.user.id, "42");
        assert!(default.identity(&claims(json!({"sub": ""}))).is_err());
        assert!(default.identity(&claims(json!({"name": "x"}))).is_err());
    }
}
