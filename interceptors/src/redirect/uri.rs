//! Resolving a `Location` against the URI it answered (RFC 3986 §5.2),
//! since `http::Uri` parses but does not resolve references.

use http::Uri;
use undici_dispatcher::{Error, Origin};

/// A URI reference split into its components (RFC 3986 §5.2.1; the
/// fragment is dropped, request targets have none).
#[derive(Debug, Default, PartialEq, Eq)]
struct Reference<'a> {
    scheme: Option<&'a str>,
    authority: Option<&'a str>,
    path: &'a str,
    query: Option<&'a str>,
}

impl<'a> Reference<'a> {
    fn parse(text: &'a str) -> Reference<'a> {
        let text = text.split_once('#').map_or(text, |(before, _)| before);
        let (scheme, rest) = match text.split_once(':') {
            Some((scheme, rest)) if is_scheme(scheme) => (Some(scheme), rest),
            _ => (None, text),
        };
        let (authority, rest) = match rest.strip_prefix("//") {
            Some(after) => {
                let end = after.find(['/', '?']).unwrap_or(after.len());
                (Some(&after[..end]), &after[end..])
            }
            None => (None, rest),
        };
        let (path, query) = match rest.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (rest, None),
        };
        Reference {
            scheme,
            authority,
            path,
            query,
        }
    }
}

/// `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`.
fn is_scheme(text: &str) -> bool {
    let mut bytes = text.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

fn invalid(location: &str, why: &str) -> Error {
    Error::invalid_argument(format!("invalid redirect location {location:?}: {why}"))
}

/// Resolves `location` against `base`. `base` may be absolute or, as
/// requests to a Client often are, origin-form (`/path?query`): then a
/// relative location stays origin-form.
pub(crate) fn resolve(base: &Uri, location: &str) -> Result<Uri, Error> {
    // Browsers ignore surrounding whitespace in Location.
    let location = location.trim_matches(|c: char| c.is_ascii_whitespace() || c.is_control());
    let reference = Reference::parse(location);
    let base_path = match base.path() {
        "" if base.authority().is_some() => "/",
        path => path,
    };
    let (scheme, authority, path, query);
    if let Some(given) = reference.scheme {
        scheme = Some(given);
        authority = reference.authority;
        path = remove_dot_segments(reference.path);
        query = reference.query;
    } else {
        scheme = base.scheme_str();
        if reference.authority.is_some() {
            if scheme.is_none() {
                return Err(invalid(
                    location,
                    "a scheme-relative location needs an absolute request URI",
                ));
            }
            authority = reference.authority;
            path = remove_dot_segments(reference.path);
            query = reference.query;
        } else {
            authority = base.authority().map(|authority| authority.as_str());
            if reference.path.is_empty() {
                path = base_path.to_owned();
                query = reference.query.or(base.query());
            } else if reference.path.starts_with('/') {
                path = remove_dot_segments(reference.path);
                query = reference.query;
            } else {
                path = remove_dot_segments(&merge(base_path, reference.path));
                query = reference.query;
            }
        }
    }
    let mut target = String::with_capacity(location.len() + 32);
    if let Some(scheme) = scheme {
        if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
            return Err(invalid(location, "only http and https are followed"));
        }
        let Some(authority) = authority.filter(|authority| !authority.is_empty()) else {
            return Err(invalid(location, "no host"));
        };
        target.push_str(&scheme.to_ascii_lowercase());
        target.push_str("://");
        target.push_str(authority);
    }
    if path.is_empty() {
        target.push('/');
    } else {
        encode_into(&mut target, &path);
    }
    if let Some(query) = query {
        target.push('?');
        encode_into(&mut target, query);
    }
    let uri = Uri::try_from(target).map_err(|err| invalid(location, &err.to_string()))?;
    if uri.scheme().is_some() {
        // Refuses what an Agent could not route (userinfo, a bad host).
        Origin::from_uri(&uri).map_err(|err| invalid(location, err.message()))?;
    }
    Ok(uri)
}

/// RFC 3986 §5.2.3: the reference's path after the base's directory.
fn merge(base_path: &str, reference_path: &str) -> String {
    match base_path.rfind('/') {
        Some(slash) => format!("{}{reference_path}", &base_path[..=slash]),
        None => format!("/{reference_path}"),
    }
}

/// RFC 3986 §5.2.4.
fn remove_dot_segments(path: &str) -> String {
    let mut input = path;
    let mut output = String::with_capacity(path.len());
    while !input.is_empty() {
        if let Some(rest) = input.strip_prefix("../") {
            input = rest;
        } else if let Some(rest) = input.strip_prefix("./") {
            input = rest;
        } else if input.starts_with("/./") {
            input = &input[2..];
        } else if input == "/." {
            input = "/";
        } else if input.starts_with("/../") || input == "/.." {
            input = if input == "/.." { "/" } else { &input[3..] };
            let cut = output.rfind('/').unwrap_or(0);
            output.truncate(cut);
        } else if input == "." || input == ".." {
            input = "";
        } else {
            let start = usize::from(input.starts_with('/'));
            let end = input[start..].find('/').map_or(input.len(), |i| i + start);
            output.push_str(&input[..end]);
            input = &input[end..];
        }
    }
    output
}

/// Percent-encodes what may not appear in a request target as sent
/// (controls, spaces, non-ASCII, `"<>`{}`), as browsers do with a
/// `Location`; `%` is taken as already encoding.
fn encode_into(target: &mut String, text: &str) {
    for byte in text.bytes() {
        let plain =
            byte > 0x20 && byte < 0x7f && !matches!(byte, b'"' | b'<' | b'>' | b'`' | b'{' | b'}');
        if plain {
            target.push(char::from(byte));
        } else {
            target.push_str(&format!("%{byte:02X}"));
        }
    }
}

/// True unless both URIs are known to share an origin. An origin-form
/// URI (`/path`, as sent to a Client) has an origin only the dispatcher
/// knows, so a hop from one to an absolute URI counts as cross-origin:
/// credentials are dropped rather than risked.
pub(crate) fn is_cross_origin(from: &Uri, to: &Uri) -> bool {
    match (from.authority(), to.authority()) {
        (None, None) => false,
        (Some(_), Some(_)) => match (Origin::from_uri(from), Origin::from_uri(to)) {
            (Ok(from), Ok(to)) => from != to,
            _ => true,
        },
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(base: &str, location: &str) -> String {
        resolve(&Uri::try_from(base).unwrap(), location)
            .unwrap()
            .to_string()
    }

    #[test]
    fn rfc_3986_normal_examples() {
        let base = "http://a/b/c/d;p?q";
        let cases = [
            ("g", "http://a/b/c/g"),
            ("./g", "http://a/b/c/g"),
            ("g/", "http://a/b/c/g/"),
            ("/g", "http://a/g"),
            ("//g", "http://g/"),
            ("?y", "http://a/b/c/d;p?y"),
            ("g?y", "http://a/b/c/g?y"),
            ("#s", "http://a/b/c/d;p?q"),
            ("g#s", "http://a/b/c/g"),
            (";x", "http://a/b/c/;x"),
            ("", "http://a/b/c/d;p?q"),
            (".", "http://a/b/c/"),
            ("./", "http://a/b/c/"),
            ("..", "http://a/b/"),
            ("../", "http://a/b/"),
            ("../g", "http://a/b/g"),
            ("../..", "http://a/"),
            ("../../g", "http://a/g"),
        ];
        for (location, expected) in cases {
            assert_eq!(resolved(base, location), expected, "{location}");
        }
    }

    #[test]
    fn rfc_3986_abnormal_examples() {
        let base = "http://a/b/c/d;p?q";
        let cases = [
            ("../../../g", "http://a/g"),
            ("/./g", "http://a/g"),
            ("/../g", "http://a/g"),
            ("g.", "http://a/b/c/g."),
            (".g", "http://a/b/c/.g"),
            ("g..", "http://a/b/c/g.."),
            ("./../g", "http://a/b/g"),
            ("./g/.", "http://a/b/c/g/"),
            ("g/./h", "http://a/b/c/g/h"),
            ("g/../h", "http://a/b/c/h"),
            ("http:g", "http:g"),
        ];
        for (location, expected) in cases {
            if expected == "http:g" {
                assert!(resolve(&Uri::try_from(base).unwrap(), location).is_err());
                continue;
            }
            assert_eq!(resolved(base, location), expected, "{location}");
        }
    }

    #[test]
    fn origin_form_bases_stay_origin_form() {
        assert_eq!(resolved("/a/b?x=1", "c"), "/a/c");
        assert_eq!(resolved("/a/b", "/d?e"), "/d?e");
        assert_eq!(
            resolved("/a/b", "http://other:8080/x"),
            "http://other:8080/x"
        );
        assert!(resolve(&Uri::from_static("/a"), "//host/x").is_err());
    }

    #[test]
    fn hostile_locations_are_refused_or_encoded() {
        let base = Uri::from_static("http://a/b");
        assert!(resolve(&base, "ftp://a/b").is_err());
        assert!(resolve(&base, "javascript:alert(1)").is_err());
        assert!(resolve(&base, "http://user:pw@evil/").is_err());
        assert!(resolve(&base, "http:///nohost").is_err());
        assert_eq!(resolved("http://a/b", " /x y/é "), "http://a/x%20y/%C3%A9");
        assert_eq!(resolved("http://a/b", "HTTPS://A/"), "https://A/");
    }

    #[test]
    fn origins_are_compared_by_scheme_host_and_port() {
        let cross = |a: &'static str, b: &'static str| {
            is_cross_origin(&Uri::from_static(a), &Uri::from_static(b))
        };
        assert!(!cross("http://a/x", "http://a:80/y"));
        assert!(cross("http://a/x", "https://a/x"));
        assert!(cross("http://a/x", "http://a:8080/x"));
        assert!(!cross("/x", "/y"));
        assert!(cross("/x", "http://a/y"));
    }
}
