//! Request parameters (reference §1.2): the URL query merged with an
//! `application/x-www-form-urlencoded` body, decoded with form rules (`+` is a space), as a
//! flat name → value map. Lists are `Name.N` (1-based), lists of objects `Name.N.Field`,
//! booleans `True`/`False` in any case. Accessors report Alibaba's codes.

use super::ApiError;
use std::collections::BTreeMap;

/// Decodes one form-encoded component (`+` → space, `%XY`).
pub fn decode(s: &str) -> Result<String, ApiError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let v = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| ApiError::invalid("malformed %-escape in the request"))?;
                out.push(v);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| ApiError::invalid("the request parameters are not UTF-8"))
}

/// Splits a form-encoded string into decoded pairs, in order.
pub fn parse_form(s: &str) -> Result<Vec<(String, String)>, ApiError> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Ok((decode(k)?, decode(v)?))
        })
        .collect()
}

/// Parameters of one request.
#[derive(Debug, Clone, Default)]
pub struct Params {
    map: BTreeMap<String, String>,
}

impl Params {
    /// The map of `pairs`; a name given twice is refused.
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<Params, ApiError> {
        let mut map = BTreeMap::new();
        for (k, v) in pairs {
            if map.insert(k.clone(), v.clone()).is_some() {
                return Err(ApiError::invalid(format!(
                    "the parameter \"{k}\" is given more than once"
                )));
            }
        }
        Ok(Params { map })
    }

    /// A value, present and non-empty.
    pub fn str_opt(&self, name: &str) -> Option<&str> {
        self.map
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A required non-empty value.
    pub fn str_req(&self, name: &str) -> Result<&str, ApiError> {
        self.str_opt(name).ok_or_else(|| missing(name))
    }

    /// An optional non-negative integer.
    pub fn u64_opt(&self, name: &str) -> Result<Option<u64>, ApiError> {
        self.str_opt(name)
            .map(|v| {
                v.trim().parse().map_err(|_| {
                    ApiError::invalid(format!(
                        "the parameter \"{name}\" must be a non-negative integer"
                    ))
                })
            })
            .transpose()
    }

    /// An optional boolean (`true`/`false` in any case).
    pub fn bool_opt(&self, name: &str) -> Result<Option<bool>, ApiError> {
        self.str_opt(name)
            .map(|v| {
                if v.eq_ignore_ascii_case("true") {
                    Ok(true)
                } else if v.eq_ignore_ascii_case("false") {
                    Ok(false)
                } else {
                    Err(ApiError::invalid(format!(
                        "the parameter \"{name}\" must be true or false"
                    )))
                }
            })
            .transpose()
    }

    /// `Name.1`, `Name.2`, … in index order (non-empty values only).
    pub fn list(&self, name: &str) -> Vec<String> {
        let prefix = format!("{name}.");
        let mut items: Vec<(u64, String)> = self
            .map
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter_map(|(k, v)| {
                let n: u64 = k[prefix.len()..].parse().ok()?;
                (!v.is_empty()).then(|| (n, v.clone()))
            })
            .collect();
        items.sort();
        items.into_iter().map(|(_, v)| v).collect()
    }

    /// `Name.N.Field` entries grouped by N, in index order.
    pub fn objects(&self, name: &str) -> Vec<BTreeMap<String, String>> {
        let prefix = format!("{name}.");
        let mut groups: BTreeMap<u64, BTreeMap<String, String>> = BTreeMap::new();
        for (k, v) in self
            .map
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
        {
            let Some((n, field)) = k[prefix.len()..].split_once('.') else {
                continue;
            };
            if let Ok(n) = n.parse::<u64>() {
                groups
                    .entry(n)
                    .or_default()
                    .insert(field.to_string(), v.clone());
            }
        }
        groups.into_values().collect()
    }

    /// Whether any parameter is `name` or starts with `name.`.
    pub fn has(&self, name: &str) -> bool {
        self.str_opt(name).is_some()
            || self
                .map
                .range(format!("{name}.")..)
                .next()
                .is_some_and(|(k, _)| k.starts_with(&format!("{name}.")))
    }
}

/// `MissingParameter` for `name`, in Alibaba's words.
pub fn missing(name: &str) -> ApiError {
    ApiError::new(
        400,
        "MissingParameter",
        format!(
            "The input parameter \"{name}\" that is mandatory for processing this request is not supplied."
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_objects_and_booleans() {
        let pairs = parse_form(
            "AddAccount.2=b&AddAccount.1=a&AddAccount.10=j&Tag.1.Key=k&Tag.1.Value=v%20w&Tag.2.Key=x&DryRun=True&Name=a+b&Empty=",
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        let p = Params::from_pairs(&pairs).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(p.list("AddAccount"), ["a", "b", "j"]);
        let tags = p.objects("Tag");
        assert_eq!(tags.len(), 2);
        assert_eq!(tags[0].get("Value").map(String::as_str), Some("v w"));
        assert_eq!(p.bool_opt("DryRun").ok().flatten(), Some(true));
        assert_eq!(p.str_opt("Name"), Some("a b"));
        assert_eq!(p.str_opt("Empty"), None);
        assert!(p.has("Tag") && !p.has("Filter"));
        assert_eq!(
            p.str_req("Empty").err().map(|e| e.code),
            Some("MissingParameter".into())
        );
        assert!(Params::from_pairs(&parse_form("A=1&A=2").unwrap_or_default()).is_err());
        assert!(parse_form("A=%zz").is_err());
        let p =
            Params::from_pairs(&parse_form("N=x&B=maybe").unwrap_or_default()).unwrap_or_default();
        assert!(p.u64_opt("N").is_err() && p.bool_opt("B").is_err());
    }
}
