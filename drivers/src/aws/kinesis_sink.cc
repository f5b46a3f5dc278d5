#include "edgeferry/drivers/aws/kinesis_sink.h"

#include <openssl/evp.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "edgeferry/drivers/batch_encoding.h"
#include "edgeferry/drivers/envelope.h"
#include "edgeferry/redact.h"

namespace edgeferry::drivers::aws {

namespace {
constexpr size_t kMaxPartitionKeyBytes = 256;
constexpr size_t kMaxResponseBytes = 1 << 20;  // a 500-record PutRecords answer is ~60 KiB

std::string Base64(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(data.data()), static_cast<int>(data.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

// A string member of a JSON object, or "" for anything else (a server's response is
// outside input: any shape may arrive, none may throw).
std::string StringField(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return "";
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

bool RetryableType(const std::string& type) {
  // Bad input is the only thing retrying cannot fix.
  return type.find("ValidationException") == std::string::npos &&
         type.find("SerializationException") == std::string::npos;
}
}  // namespace

KinesisSink::KinesisSink(KinesisSinkConfig config)
    : cfg_(std::move(config)), client_(std::make_unique<http::HttpClient>(cfg_.tls)) {
  if (cfg_.endpoint.empty()) cfg_.endpoint = fmt::format("https://kinesis.{}.amazonaws.com", cfg_.region);
}
KinesisSink::~KinesisSink() = default;

BatchPolicy KinesisSink::policy() const {
  BatchPolicy p = cfg_.batch;
  p.max_records = std::min(p.max_records, kMaxRequestRecords);
  p.max_bytes = std::min<uint64_t>(p.max_bytes, kMaxRequestBytes / 2);  // envelopes and keys add to payloads
  return p;
}

Status KinesisSink::Start() {
  auto c = LoadCredentials(cfg_.credentials_file, cfg_.profile);
  if (!c.ok()) return c.status();
  creds_ = std::move(c).value();
  return Status::Ok();
}

std::string TruncateUtf8(std::string s, size_t max_bytes) {
  if (s.size() <= max_bytes) return s;
  size_t n = max_bytes;
  // Step back over continuation bytes (10xxxxxx) to the start of the cut character.
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  s.resize(n);
  return s;
}

ProbeResult KinesisSink::Probe(int64_t timeout_ns) {
  try {
    auto c = LoadCredentials(cfg_.credentials_file, cfg_.profile);
    if (!c.ok()) return ProbeResult::Failed(c.status().message());
    http::HttpRequest req;
    req.url = cfg_.endpoint + "/";
    req.body = nlohmann::json{{"StreamName", cfg_.stream}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    req.timeout_ms = std::max<long>(1, static_cast<long>(timeout_ns / 1'000'000));
    req.headers = {"Content-Type: application/x-amz-json-1.1", "X-Amz-Target: Kinesis_20131202.DescribeStreamSummary"};
    if (!c->session_token.empty()) req.headers.push_back("X-Amz-Security-Token: " + c->session_token);
    req.aws_sigv4 = fmt::format("aws:amz:{}:kinesis", cfg_.region);
    req.aws_key_secret = c->access_key_id + ":" + c->secret_access_key;
    http::HttpClient client(cfg_.tls);  // not the sink's: a probe leaves its connection cache alone
    const http::HttpResponse resp = client.Send(req);
    const std::string where = RedactUrl(cfg_.endpoint);
    if (resp.status == 0) return ProbeResult::Failed(fmt::format("{}: {}", where, RedactUrlsIn(resp.error)));
    const auto j = nlohmann::json::parse(resp.body, nullptr, false);
    if (resp.status == 200) {
      const nlohmann::json* summary = nullptr;
      if (j.is_object()) {
        if (auto it = j.find("StreamDescriptionSummary"); it != j.end() && it->is_object()) summary = &*it;
      }
      const std::string status = summary ? StringField(*summary, "StreamStatus") : "";
      if (!status.empty() && status != "ACTIVE" && status != "UPDATING") {
        return ProbeResult::Failed(fmt::format("stream {} is {} at {}", cfg_.stream, status, where));
      }
      return ProbeResult::Ok(fmt::format("stream {} {} at {}", cfg_.stream, status.empty() ? "found" : status, where));
    }
    std::string message = StringField(j, "message");
    if (message.empty()) message = StringField(j, "Message");
    std::string type = StringField(j, "__type");
    if (const auto hash = type.rfind('#'); hash != std::string::npos) type = type.substr(hash + 1);
    if (type == "AccessDeniedException") {
      return ProbeResult::Ok(fmt::format("{}: credentials accepted; DescribeStreamSummary not permitted, so stream {} "
                                         "not checked", where, cfg_.stream));
    }
    return ProbeResult::Failed(fmt::format("{}: DescribeStreamSummary {}: HTTP {}{}{}", where, cfg_.stream, resp.status,
                                           type.empty() ? "" : " " + type,
                                           message.empty() ? "" : ": " + RedactUrlsIn(message.substr(0, 300))));
  } catch (const std::exception& e) {
    return ProbeResult::Failed(std::string("DescribeStreamSummary: ") + e.what());
  }
}

void KinesisSink::Cancel() {
  cancelled_ = true;
  client_->Cancel();
}

DestinationLimits KinesisSink::limits() const {
  DestinationLimits l = cfg_.limits;
  l.gateway_id = cfg_.gateway_id;
  l.payload_only = cfg_.raw_payload;
  return l;
}

Delivery KinesisSink::Deliver(std::span<const StoredRecord> batch) {
  try {
    return DeliverOnce(batch);
  } catch (const std::exception& e) {
    // Belt and braces: nothing a response or a record contains may escape the sink.
    Delivery d;
    d.error = Status::Unavailable(std::string("PutRecords: ") + e.what());
    return d;
  }
}

Delivery KinesisSink::DeliverOnce(std::span<const StoredRecord> batch) {
  Delivery d;
  // Records still to send: index into the batch, data and key.
  struct Entry {
    size_t index;
    std::string data, key;
  };
  std::vector<Entry> pending;
  std::vector<bool> done(batch.size(), false);
  for (size_t i = 0; i < batch.size(); ++i) {
    const StoredRecord& r = batch[i];
    if (accepted_ahead_.count(r.seq)) {
      done[i] = true;  // the stream has it from an earlier partial delivery
      continue;
    }
    std::string data;
    if (cfg_.raw_payload) {
      data = r.record.payload;
    } else {
      AppendEnvelope(cfg_.gateway_id, r, &data);
      data.pop_back();  // no newline inside a Kinesis record
    }
    std::string key = ExpandTemplate(cfg_.partition_key, {cfg_.gateway_id, r.record.source, r.record.channel, "",
                                                          r.seq, r.seq, r.seq, r.record.ts_ns});
    if (key.empty()) key = cfg_.gateway_id;
    key = TruncateUtf8(std::move(key), kMaxPartitionKeyBytes);
    if (data.size() + key.size() > kMaxRecordBytes) {
      d.rejected.push_back({r.seq, fmt::format("record of {} bytes exceeds the Kinesis limit of 1 MiB",
                                               data.size() + key.size())});
      done[i] = true;
      continue;
    }
    pending.push_back({i, std::move(data), std::move(key)});
  }
  std::string last_error;
  for (int attempt = 0; !pending.empty() && attempt <= cfg_.record_retries; ++attempt) {
    for (int slept = 0; attempt > 0 && slept < (100 << attempt) && !cancelled_; slept += 50) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (cancelled_) {
      last_error = "sink stopped";
      break;
    }
    nlohmann::json body;
    body["StreamName"] = cfg_.stream;
    body["Records"] = nlohmann::json::array();
    for (const auto& e : pending) body["Records"].push_back({{"Data", Base64(e.data)}, {"PartitionKey", e.key}});
    http::HttpRequest req;
    req.url = cfg_.endpoint + "/";
    // Invalid UTF-8 in a key (from a source or channel name) is replaced, never thrown.
    req.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    req.max_body_bytes = kMaxResponseBytes;
    req.timeout_ms = cfg_.timeout_ms;
    req.headers = {"Content-Type: application/x-amz-json-1.1", "X-Amz-Target: Kinesis_20131202.PutRecords"};
    if (!creds_.session_token.empty()) req.headers.push_back("X-Amz-Security-Token: " + creds_.session_token);
    req.aws_sigv4 = fmt::format("aws:amz:{}:kinesis", cfg_.region);
    req.aws_key_secret = creds_.access_key_id + ":" + creds_.secret_access_key;
    const http::HttpResponse resp = client_->Send(req);
    d.wire_bytes += resp.body_bytes_sent;
    if (resp.status != 200) {
      std::string type;
      if (auto j = nlohmann::json::parse(resp.body, nullptr, false); j.is_object()) {
        std::string message = StringField(j, "message");
        if (message.empty()) message = StringField(j, "Message");
        type = StringField(j, "__type") + ": " + message.substr(0, 500);
      }
      last_error = resp.status == 0 ? resp.error : fmt::format("HTTP {} {}", resp.status, type);
      if (resp.status == 400 && !RetryableType(type)) {
        // Bad input: bisected down to the record the stream refuses (sink.h).
        d.error = Status::Permanent("PutRecords: " + last_error);
        d.refused = true;
        return d;
      }
      break;  // request-level failure: back off in the forwarder
    }
    auto j = nlohmann::json::parse(resp.body, nullptr, false);
    const nlohmann::json* records = nullptr;
    if (j.is_object()) {
      if (auto it = j.find("Records"); it != j.end() && it->is_array()) records = &*it;
    }
    if (records == nullptr || records->size() != pending.size()) {
      last_error = "PutRecords: unexpected response: " + resp.body.substr(0, 200);
      break;
    }
    std::vector<Entry> failed;
    for (size_t k = 0; k < pending.size(); ++k) {
      const auto& rec = (*records)[k];
      const bool failed_here =
          !rec.is_object() || (rec.contains("ErrorCode") && !rec["ErrorCode"].is_null()) || !rec.contains("SequenceNumber");
      if (failed_here) {
        // Anything but a clear success (an object with a SequenceNumber and no ErrorCode) is retried.
        const std::string code = StringField(rec, "ErrorCode");
        last_error = (code.empty() ? std::string("unexpected record result") : code) + ": " +
                     StringField(rec, "ErrorMessage").substr(0, 500);
        failed.push_back(std::move(pending[k]));
      } else {
        done[pending[k].index] = true;
      }
    }
    pending = std::move(failed);
  }
  // Ack up to the first record not done; remember accepted records beyond it.
  size_t first_open = 0;
  while (first_open < batch.size() && done[first_open]) ++first_open;
  if (first_open > 0) d.acked_through = batch[first_open - 1].seq;
  for (uint64_t s : std::set<uint64_t>(accepted_ahead_)) {
    if (s <= d.acked_through) accepted_ahead_.erase(s);
  }
  for (size_t i = first_open; i < batch.size(); ++i) {
    if (done[i]) accepted_ahead_.insert(batch[i].seq);
  }
  if (first_open < batch.size()) {
    d.error = Status::Unavailable(fmt::format("{} of {} records not accepted: {}", batch.size() - first_open,
                                              batch.size(), last_error));
  }
  return d;
}

}  // namespace edgeferry::drivers::aws
