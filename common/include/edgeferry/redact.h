// Redaction of credentials in URLs, for everything the agent prints (logs, /status,
// `edgeferry status`, dead letter reasons). Spec: RFC 3986 URL syntax.
//
// A URL's userinfo password ("user:secret@") and every query value ("?sig=...",
// "X-Amz-Signature=...", "token=...") and fragment are replaced by "REDACTED"; scheme,
// user, host, port, path and query parameter names stay, so a log still says where.
// Pure functions, thread-safe, never throw (beyond std::bad_alloc).
#pragma once

#include <string>
#include <string_view>

namespace edgeferry {

inline constexpr std::string_view kRedacted = "REDACTED";

// `url` with its credentials redacted. Text without "://" is returned unchanged.
std::string RedactUrl(std::string_view url);

// `text` with every URL inside it (a run of non-space characters containing "://")
// redacted as by RedactUrl, e.g. an error message that quotes an endpoint.
std::string RedactUrlsIn(std::string_view text);

}  // namespace edgeferry
