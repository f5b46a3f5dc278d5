// The envelope encoder: a record's payload (bytes from a device or a publisher) in,
// one NDJSON line out. Whatever the bytes, the line must be one strict JSON object
// on one line that a consumer can read (depth bounded), and the payload must come
// back out of it: inline JSON equal to the original, text equal, base64 decoding to it.
// A payload reaches the encoder as content type json only when the source's check
// (ChoosePayloadEncoding, what the MQTT and serial sources apply) called it JSON.
#include <openssl/evp.h>

#include "edgeferry/drivers/envelope.h"
#include "fuzz_check.h"

namespace drivers = edgeferry::drivers;
using edgeferry::fuzz::Excerpt;
using edgeferry::fuzz::Input;
using edgeferry::fuzz::StrictJsonError;

namespace {

std::string Base64Decode(std::string_view b64) {
  std::string out(3 * (b64.size() / 4) + 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(b64.data()), static_cast<int>(b64.size()));
  FUZZ_CHECK(n >= 0, "payload is not base64");
  out.resize(static_cast<size_t>(n));
  // EVP_DecodeBlock keeps the zero bytes the padding stands for.
  if (b64.ends_with("==")) out.resize(out.size() - 2);
  else if (b64.ends_with("=")) out.resize(out.size() - 1);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in(data, size);
  const uint8_t flags = in.Byte();
  edgeferry::StoredRecord r;
  r.seq = in.Byte();
  r.record.ts_ns = static_cast<int64_t>(in.Byte()) * 1'000'000'007LL * (flags & 0x80 ? -1 : 1);
  const std::string gateway = "gw-01";
  r.record.source = "plant";
  if (flags & 0x40) r.record.channel = std::string(in.Until('\n', 64));  // topics come from outside
  // Time members: an event time, and an unsynchronized stamp whose boot id a damaged
  // buffer may fill with anything.
  const uint8_t time = in.Byte();
  if (time & 1) r.record.event_ts_ns = r.record.ts_ns * 3 + 1;
  r.record.ts_source = static_cast<edgeferry::TsSource>((time >> 1) % 3);
  if (r.record.ts_source == edgeferry::TsSource::kUnsynced) {
    r.record.boot_ns = static_cast<int64_t>(time) << 40;
    r.record.boot_id = std::string(in.Until('\n', 64));
  }
  r.record.payload = std::string(in.Rest());
  auto type = static_cast<edgeferry::ContentType>(flags % 5);
  if (type == edgeferry::ContentType::kJson &&
      drivers::ChoosePayloadEncoding(r.record.payload) != drivers::PayloadEncoding::kInlineJson) {
    type = edgeferry::ContentType::kBinary;  // the source would have dead-lettered or relabelled it
  }
  r.record.content_type = type;

  std::string line;
  drivers::AppendEnvelope(gateway, r, &line);
  FUZZ_CHECK(line.size() <= drivers::EnvelopeSizeBound(gateway, r), "the line is longer than its bound");
  FUZZ_CHECK(!line.empty() && line.back() == '\n', "the line does not end in LF");
  const std::string_view body(line.data(), line.size() - 1);
  FUZZ_CHECK(body.find_first_of("\r\n") == std::string_view::npos, "a line break inside the envelope line");
  const std::string why = StrictJsonError(body);
  FUZZ_CHECK(why.empty(), "the envelope line is not JSON (%s) for payload \"%s\": %s", why.c_str(),
             Excerpt(r.record.payload).c_str(), Excerpt(body).c_str());

  const auto j = nlohmann::json::parse(body);
  FUZZ_CHECK(j.is_object() && j.contains("payload") && j.value("gateway_id", "") == gateway &&
                 j.value("seq", uint64_t{0}) == r.seq,
             "envelope members are wrong: %s", Excerpt(body).c_str());
  FUZZ_CHECK(j.value("ts_source", "") == std::string(edgeferry::TsSourceName(r.record.ts_source)) &&
                 j.contains("event_ts") == (r.record.event_ts_ns != 0) &&
                 j.contains("boot_id") == (r.record.ts_source == edgeferry::TsSource::kUnsynced),
             "time members are wrong: %s", Excerpt(body).c_str());
  const std::string encoding = j.value("payload_encoding", "");
  if (encoding.empty()) {
    FUZZ_CHECK(j["payload"] == nlohmann::json::parse(r.record.payload),
               "inline payload differs from the record's JSON");
  } else if (encoding == "text") {
    FUZZ_CHECK(j["payload"].is_string() && j["payload"].get<std::string>() == r.record.payload,
               "text payload differs from the record's bytes");
  } else {
    FUZZ_CHECK(encoding == "base64" && j["payload"].is_string(), "unknown payload_encoding %s", encoding.c_str());
    FUZZ_CHECK(Base64Decode(j["payload"].get<std::string>()) == r.record.payload,
               "base64 payload does not decode to the record's bytes");
  }
  return 0;
}
