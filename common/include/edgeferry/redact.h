// Redaction of credentials in URLs, for everything the agent prints (logs, /status,
// `edgeferry status`, dead letter reasons). Spec: RFC 3986 URL syntax.
//
// A URL's whole userinfo ("user:secret@", or a token as the user name alone, "TOKEN@")
// and every query value ("?sig=...", "X-Amz-Signature=...", "token=...") and fragment
// are replaced by "REDACTED"; scheme, host, port, path and query parameter names stay,
// so a log still says where.
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

// `text` with ASCII control characters (0x00-0x1F, 0x7F: line breaks, ESC, BEL) written
// as "\xNN", for text from outside (a server's response body, a broker's message) that
// goes into one log line, /status or a terminal: it can then neither forge a log line
// nor drive the terminal. Bytes from 0x80 (UTF-8) are kept.
std::string EscapeControlChars(std::string_view text);

}  // namespace edgeferry
