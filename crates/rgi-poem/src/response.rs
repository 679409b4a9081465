//! poem → RGI: the response.

use http::{HeaderValue, Response, StatusCode, header};
use http_body::Body as _;
use http_body_util::BodyExt as _;

use crate::ResponseBody;

/// Turns poem's response into the RGI response, its body streamed as it is.
///
/// Responses that carry no body on the wire lose the body an endpoint attached anyway
/// (`HTTP-FRAME-6`, `HTTP-FRAME-8`): responses to `HEAD` (`body_expected` is false), `1xx`,
/// `204` and `304`. For `HEAD`, a body of exact size gives the `content-length` a `GET` would get
/// (`HTTP-RESP-12`), unless the endpoint set one.
pub(crate) fn from_poem(response: poem::Response, body_expected: bool) -> Response<ResponseBody> {
    let mut response = Response::<ResponseBody>::from(response);
    let status = response.status();
    let no_body_status = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    if !body_expected || no_body_status {
        let length = response.body().size_hint().exact();
        if !body_expected && !no_body_status {
            if let Some(length) = length {
                response
                    .headers_mut()
                    .entry(header::CONTENT_LENGTH)
                    .or_insert_with(|| HeaderValue::from(length));
            }
        }
        *response.body_mut() = http_body_util::Empty::new()
            .map_err(|never| match never {})
            .boxed();
    }
    response
}
