//! The Accept header of WADO-RS requests: media ranges with their `type` and
//! `transfer-syntax` parameters, in preference order.

use axum::http::{HeaderMap, header};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRange {
    /// e.g. `multipart/related`, `image/jpeg`, `*/*`.
    pub media_type: String,
    /// The `type` parameter of a multipart range.
    pub part_type: Option<String>,
    pub transfer_syntax: Option<String>,
    quality: u16,
}

impl MediaRange {
    /// The media type the parts (or the single body) carry.
    pub fn content(&self) -> &str {
        if self.media_type == "multipart/related" {
            self.part_type.as_deref().unwrap_or("*/*")
        } else {
            &self.media_type
        }
    }

    pub fn accepts(&self, media_type: &str) -> bool {
        let content = self.content();
        content == "*/*"
            || content == media_type
            || content.strip_suffix("/*").is_some_and(|major| media_type.split('/').next() == Some(major))
    }

    /// Whether the transfer syntax parameter allows `uid` (absent and `*` allow anything).
    pub fn allows_transfer_syntax(&self, uid: &str) -> bool {
        match self.transfer_syntax.as_deref() {
            None | Some("*") => true,
            Some(ts) => ts == uid,
        }
    }
}

/// The ranges of the Accept header, best first; `*/*` when there is none.
pub fn parse(headers: &HeaderMap) -> Vec<MediaRange> {
    let raw: Vec<&str> = headers.get_all(header::ACCEPT).iter().filter_map(|v| v.to_str().ok()).collect();
    let mut ranges: Vec<MediaRange> = raw
        .iter()
        .flat_map(|v| v.split(','))
        .filter_map(|item| {
            let mut pieces = item.split(';').map(str::trim);
            let media_type = pieces.next()?.to_ascii_lowercase();
            if media_type.is_empty() {
                return None;
            }
            let mut range = MediaRange { media_type, part_type: None, transfer_syntax: None, quality: 1000 };
            for param in pieces {
                let Some((k, v)) = param.split_once('=') else {
                    continue;
                };
                let v = v.trim().trim_matches('"').to_owned();
                match k.trim().to_ascii_lowercase().as_str() {
                    "type" => range.part_type = Some(v.to_ascii_lowercase()),
                    "transfer-syntax" => range.transfer_syntax = Some(v),
                    "q" => range.quality = (v.parse::<f32>().unwrap_or(1.0).clamp(0.0, 1.0) * 1000.0) as u16,
                    _ => {}
                }
            }
            Some(range)
        })
        .filter(|r| r.quality > 0)
        .collect();
    ranges.sort_by_key(|r| std::cmp::Reverse(r.quality));
    if ranges.is_empty() {
        ranges.push(MediaRange { media_type: "*/*".into(), part_type: None, transfer_syntax: None, quality: 1000 });
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn parses_multipart_ranges() {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static(
                "multipart/related; type=\"application/octet-stream\"; transfer-syntax=1.2.840.10008.1.2.1, image/png;q=0.5",
            ),
        );
        let r = parse(&h);
        assert_eq!(r[0].content(), "application/octet-stream");
        assert!(r[0].allows_transfer_syntax("1.2.840.10008.1.2.1"));
        assert!(!r[0].allows_transfer_syntax("1.2.840.10008.1.2.4.50"));
        assert!(r[1].accepts("image/png"));
        assert!(parse(&HeaderMap::new())[0].accepts("image/jpeg"));
    }
}
