"""A minimal S3 client signed with AWS Signature Version 4, standard library only.

Path-style requests (http://host:port/bucket/key) with the payload's real SHA-256 as
x-amz-content-sha256. Enough for the cluster tests: PUT, GET (ranged too), HEAD, LIST, DELETE.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import http.client
import urllib.parse
import xml.etree.ElementTree as ET
from dataclasses import dataclass

S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def _uri_encode(text: str, keep_slash: bool) -> str:
    """URI-encode as SigV4 asks: every byte but A-Z a-z 0-9 - _ . ~ (and '/' in paths)."""
    return urllib.parse.quote(text, safe="-_.~/" if keep_slash else "-_.~")


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def sign(
    method: str,
    host: str,
    path: str,
    query: dict[str, str],
    headers: dict[str, str],
    payload_sha256: str,
    access_key_id: str,
    secret_access_key: str,
    region: str,
    now: datetime.datetime | None = None,
    service: str = "s3",
) -> dict[str, str]:
    """Return the headers to send: `headers` plus host, x-amz-date, x-amz-content-sha256 and
    Authorization. `path` is the unencoded path ("/bucket/key"); every header given is signed."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    out = {k.lower(): str(v).strip() for k, v in headers.items()}
    out["host"] = host
    out["x-amz-date"] = amz_date
    out["x-amz-content-sha256"] = payload_sha256
    signed = sorted(out)
    canonical_query = "&".join(
        f"{_uri_encode(k, False)}={_uri_encode(v, False)}" for k, v in sorted(query.items())
    )
    canonical_request = "\n".join(
        [
            method,
            _uri_encode(path, True),
            canonical_query,
            "".join(f"{k}:{' '.join(out[k].split())}\n" for k in signed),
            ";".join(signed),
            payload_sha256,
        ]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = _hmac(("AWS4" + secret_access_key).encode(), day)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    out["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access_key_id}/{scope}, "
        f"SignedHeaders={';'.join(signed)}, Signature={signature}"
    )
    return out


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def xml(self) -> ET.Element:
        return ET.fromstring(self.body)


class S3Error(Exception):
    def __init__(self, method: str, path: str, response: Response):
        self.response = response
        super().__init__(
            f"{method} {path}: HTTP {response.status}: {response.body[:500].decode(errors='replace')}"
        )


class S3Client:
    def __init__(
        self,
        endpoint: str,
        region: str,
        access_key_id: str,
        secret_access_key: str,
        timeout: float = 30.0,
    ):
        url = urllib.parse.urlsplit(endpoint)
        if url.scheme != "http" or not url.hostname:
            raise ValueError(f"only http://host:port endpoints are supported, not {endpoint!r}")
        self.host = url.netloc
        self.region = region
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.timeout = timeout

    def request(
        self,
        method: str,
        bucket: str,
        key: str = "",
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
    ) -> Response:
        path = f"/{bucket}/{key}" if key else f"/{bucket}"
        query = query or {}
        signed = sign(
            method,
            self.host,
            path,
            query,
            headers or {},
            hashlib.sha256(body).hexdigest(),
            self.access_key_id,
            self.secret_access_key,
            self.region,
        )
        target = _uri_encode(path, True)
        if query:
            target += "?" + "&".join(
                f"{_uri_encode(k, False)}={_uri_encode(v, False)}" for k, v in sorted(query.items())
            )
        conn = http.client.HTTPConnection(self.host, timeout=self.timeout)
        try:
            # http.client adds Host itself unless told not to; ours is the signed one.
            conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            for k, v in signed.items():
                conn.putheader(k, v)
            conn.putheader("content-length", str(len(body)))
            conn.endheaders(body if body else None)
            resp = conn.getresponse()
            data = resp.read()
            return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
        finally:
            conn.close()

    def _ok(self, method: str, bucket: str, key: str = "", **kw) -> Response:
        resp = self.request(method, bucket, key, **kw)
        if not 200 <= resp.status < 300:
            raise S3Error(method, f"/{bucket}/{key}", resp)
        return resp

    def put_object(self, bucket: str, key: str, body: bytes, content_type: str | None = None) -> str:
        headers = {"content-type": content_type} if content_type else None
        return self._ok("PUT", bucket, key, headers=headers, body=body).headers.get("etag", "")

    def get_object(self, bucket: str, key: str, byte_range: str | None = None) -> Response:
        """byte_range is the Range header's value, e.g. "bytes=0-99"."""
        headers = {"range": byte_range} if byte_range else None
        return self._ok("GET", bucket, key, headers=headers)

    def head_object(self, bucket: str, key: str) -> Response:
        return self.request("HEAD", bucket, key)

    def delete_object(self, bucket: str, key: str) -> None:
        self._ok("DELETE", bucket, key)

    def list_objects(self, bucket: str, prefix: str = "") -> list[str]:
        """Every key under prefix (ListObjectsV2, following continuation tokens)."""
        keys: list[str] = []
        token = None
        while True:
            query = {"list-type": "2", "prefix": prefix}
            if token:
                query["continuation-token"] = token
            root = self._ok("GET", bucket, query=query).xml()
            keys += [c.findtext(f"{S3_NS}Key") for c in root.iter(f"{S3_NS}Contents")]
            if root.findtext(f"{S3_NS}IsTruncated") != "true":
                return keys
            token = root.findtext(f"{S3_NS}NextContinuationToken")
