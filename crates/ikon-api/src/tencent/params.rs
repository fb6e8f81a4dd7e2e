//! Request parameters: the JSON body of a POST, or a GET query string flattened the SDK's
//! way (`Filters.0.Values.1=x`, 0-based list indexes, `True`/`False` booleans) rebuilt into
//! the same JSON shape. Typed accessors coerce GET strings and report the documented codes
//! (`MissingParameter`, `InvalidParameter`, `InvalidParameterValue`, `UnknownParameter`).

use super::ApiError;
use serde_json::{Map, Value};

/// Most list entries accepted in a GET query (bounds the rebuilt arrays).
const MAX_INDEX: usize = 1000;
/// Most dot-separated segments in one GET parameter name (`Filters.0.Values.1` has 4):
/// a name of thousands of segments would rebuild JSON nested so deep that dropping it
/// overflows a worker thread's stack and aborts the server.
const MAX_DEPTH: usize = 16;
/// Most list slots one GET query may create, the `null`s padding sparse indexes included:
/// `a.999.999.…` would otherwise make a 64 KiB query allocate gigabytes.
const MAX_SLOTS: usize = 10 * MAX_INDEX;

/// Parses a GET query string into a JSON object.
pub fn from_query(query: &str) -> Result<Value, ApiError> {
    let mut root = Value::Object(Map::new());
    let mut slots = 0;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = decode(k)?;
        let v = decode(v)?;
        insert(&mut root, &k, Value::String(v), &mut slots)?;
    }
    Ok(root)
}

fn decode(s: &str) -> Result<String, ApiError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        ApiError::new("InvalidParameter", "malformed %-escape in the query string")
                    })?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out)
        .map_err(|_| ApiError::new("InvalidParameter", "query string is not UTF-8"))
}

/// Puts `v` at `key` in `root`; `slots` counts the list slots created so far.
fn insert(root: &mut Value, key: &str, v: Value, slots: &mut usize) -> Result<(), ApiError> {
    let bad = || {
        ApiError::new(
            "InvalidParameter",
            format!("malformed parameter name {key:?}"),
        )
    };
    let segs: Vec<&str> = key.split('.').collect();
    if segs.iter().any(|s| s.is_empty()) {
        return Err(bad());
    }
    if segs.len() > MAX_DEPTH {
        return Err(ApiError::new(
            "InvalidParameter",
            format!("a parameter name is nested more than {MAX_DEPTH} levels deep"),
        ));
    }
    let mut cur = root;
    for (i, seg) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        let next_is_index = segs
            .get(i + 1)
            .is_some_and(|s| s.bytes().all(|b| b.is_ascii_digit()));
        let fresh = || {
            if next_is_index {
                Value::Array(Vec::new())
            } else {
                Value::Object(Map::new())
            }
        };
        if seg.bytes().all(|b| b.is_ascii_digit()) {
            let idx: usize = seg.parse().map_err(|_| bad())?;
            if idx >= MAX_INDEX {
                return Err(ApiError::new(
                    "InvalidParameterValue.LimitExceeded",
                    format!("list index in {key:?} too large"),
                ));
            }
            let arr = cur.as_array_mut().ok_or_else(bad)?;
            *slots += (idx + 1).saturating_sub(arr.len());
            if *slots > MAX_SLOTS {
                return Err(ApiError::new(
                    "InvalidParameterValue.LimitExceeded",
                    format!("the query's lists have more than {MAX_SLOTS} entries"),
                ));
            }
            while arr.len() <= idx {
                arr.push(Value::Null);
            }
            if last {
                arr[idx] = v;
                return Ok(());
            }
            if arr[idx].is_null() {
                arr[idx] = fresh();
            }
            cur = &mut arr[idx];
        } else {
            let obj = cur.as_object_mut().ok_or_else(bad)?;
            if last {
                obj.insert(seg.to_string(), v);
                return Ok(());
            }
            cur = obj.entry(seg.to_string()).or_insert_with(fresh);
        }
    }
    Ok(())
}

/// One `{Name, Values}` filter.
pub type Filter = (String, Vec<String>);

/// Typed access to one action's parameters.
pub struct Params<'a> {
    obj: &'a Map<String, Value>,
}

impl<'a> Params<'a> {
    /// Wraps a parameter object, refusing names the action does not declare.
    pub fn new(v: &'a Value, allowed: &[&str]) -> Result<Params<'a>, ApiError> {
        let obj = v.as_object().ok_or_else(|| {
            ApiError::new("InvalidParameter", "the request body must be a JSON object")
        })?;
        for k in obj.keys() {
            if !allowed.contains(&k.as_str()) {
                return Err(ApiError::new(
                    "UnknownParameter",
                    format!("the parameter `{k}` is not recognized"),
                ));
            }
        }
        Ok(Params { obj })
    }

    /// Raw value if present and not null.
    pub fn get(&self, name: &str) -> Option<&'a Value> {
        self.obj.get(name).filter(|v| !v.is_null())
    }

    /// An optional string.
    pub fn str_opt(&self, name: &str) -> Result<Option<&'a str>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(type_error(name, "a string")),
        }
    }

    /// A required string.
    pub fn str_req(&self, name: &str) -> Result<&'a str, ApiError> {
        self.str_opt(name)?.ok_or_else(|| missing(name))
    }

    /// An optional unsigned integer.
    pub fn u64_opt(&self, name: &str) -> Result<Option<u64>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .map(Some)
                .ok_or_else(|| type_error(name, "a non-negative integer")),
            Some(Value::String(s)) => s
                .parse()
                .map(Some)
                .map_err(|_| type_error(name, "a non-negative integer")),
            Some(_) => Err(type_error(name, "a non-negative integer")),
        }
    }

    /// An optional boolean (`true`/`false`, or `True`/`False`/`true`/`false` text).
    pub fn bool_opt(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) => match s.as_str() {
                "true" | "True" | "TRUE" => Ok(Some(true)),
                "false" | "False" | "FALSE" => Ok(Some(false)),
                _ => Err(type_error(name, "a boolean")),
            },
            Some(_) => Err(type_error(name, "a boolean")),
        }
    }

    /// An optional list of strings.
    pub fn str_list(&self, name: &str) -> Result<Option<Vec<String>>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(type_error(name, "a list of strings")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(type_error(name, "a list of strings")),
        }
    }

    /// `Filters`: a list of `{Name, Values}`.
    pub fn filters(&self, name: &str) -> Result<Option<Vec<Filter>>, ApiError> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        let arr = v
            .as_array()
            .ok_or_else(|| type_error(name, "a list of {Name, Values}"))?;
        let mut out = Vec::with_capacity(arr.len());
        for (i, f) in arr.iter().enumerate() {
            let obj = f
                .as_object()
                .ok_or_else(|| type_error(name, "a list of {Name, Values}"))?;
            for k in obj.keys() {
                if k != "Name" && k != "Values" {
                    return Err(ApiError::new(
                        "UnknownParameter",
                        format!("the parameter `{name}.{i}.{k}` is not recognized"),
                    ));
                }
            }
            let fname = match obj.get("Name") {
                Some(Value::String(s)) => s.clone(),
                None | Some(Value::Null) => return Err(missing(&format!("{name}.{i}.Name"))),
                Some(_) => return Err(type_error(&format!("{name}.{i}.Name"), "a string")),
            };
            let values = match obj.get("Values") {
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|v| match v {
                        Value::String(s) => Ok(s.clone()),
                        _ => Err(type_error(
                            &format!("{name}.{i}.Values"),
                            "a list of strings",
                        )),
                    })
                    .collect::<Result<Vec<_>, _>>()?,
                None | Some(Value::Null) => return Err(missing(&format!("{name}.{i}.Values"))),
                Some(_) => {
                    return Err(type_error(
                        &format!("{name}.{i}.Values"),
                        "a list of strings",
                    ))
                }
            };
            out.push((fname, values));
        }
        Ok(Some(out))
    }
}

/// `MissingParameter` for `name`.
pub fn missing(name: &str) -> ApiError {
    ApiError::new(
        "MissingParameter",
        format!("the request is missing the required parameter `{name}`"),
    )
}

fn type_error(name: &str, what: &str) -> ApiError {
    ApiError::new(
        "InvalidParameter",
        format!("the parameter `{name}` must be {what}"),
    )
}

/// At most the policy's ids per call in list `name`.
pub fn check_count(svc: &ikon_service::Service, name: &str, n: usize) -> Result<(), ApiError> {
    let max = svc.config().api.ids_per_call;
    if n > max {
        return Err(ApiError::new(
            "InvalidParameterValue.LimitExceeded",
            format!("{name} takes at most {max} items"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_query_rebuilds_lists_and_objects() {
        let v = from_query("Filters.0.Name=image-type&Filters.0.Values.0=PRIVATE_IMAGE&Filters.0.Values.1=SHARED_IMAGE&Offset=0&Limit=10&DryRun=True&ImageIds.0=img-%61bc")
            .unwrap_or_else(|e| panic!("{e:?}"));
        let p = Params::new(&v, &["Filters", "Offset", "Limit", "DryRun", "ImageIds"])
            .unwrap_or_else(|e| panic!("{e:?}"));
        let f = p.filters("Filters").unwrap_or_default().unwrap_or_default();
        assert_eq!(
            f,
            vec![(
                "image-type".to_string(),
                vec!["PRIVATE_IMAGE".to_string(), "SHARED_IMAGE".to_string()]
            )]
        );
        assert_eq!(p.u64_opt("Limit").ok().flatten(), Some(10));
        assert_eq!(p.bool_opt("DryRun").ok().flatten(), Some(true));
        assert_eq!(
            p.str_list("ImageIds").ok().flatten(),
            Some(vec!["img-abc".to_string()])
        );
    }

    #[test]
    fn bad_parameters_get_documented_codes() {
        let v = serde_json::json!({"Limit": "x", "Bogus": 1});
        assert_eq!(
            Params::new(&v, &["Limit"]).err().map(|e| e.code),
            Some("UnknownParameter".into())
        );
        let v = serde_json::json!({"Limit": -1});
        let p = Params::new(&v, &["Limit", "ImageId"]).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            p.u64_opt("Limit").err().map(|e| e.code),
            Some("InvalidParameter".into())
        );
        assert_eq!(
            p.str_req("ImageId").err().map(|e| e.code),
            Some("MissingParameter".into())
        );
        assert!(from_query("A.=1").is_err());
        assert!(from_query("A.5000=1").is_err());
        assert!(from_query("A=%zz").is_err());
    }
}
