#include "edgeferry/drivers/aws/kinesis_sink.h"

#include <openssl/evp.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "edgeferry/drivers/batch_encoding.h"
#include "edgeferry/drivers/envelope.h"

namespace edgeferry::drivers::aws {

namespace {
std::string Base64(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(data.data()), static_cast<int>(data.size()));
  out.resize(static_cast<size_t>(n));
  return out;
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

Delivery KinesisSink::Deliver(std::span<const StoredRecord> batch) {
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
    if (key.size() > 256) key.resize(256);
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
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(100 << attempt));
    nlohmann::json body;
    body["StreamName"] = cfg_.stream;
    body["Records"] = nlohmann::json::array();
    for (const auto& e : pending) body["Records"].push_back({{"Data", Base64(e.data)}, {"PartitionKey", e.key}});
    http::HttpRequest req;
    req.url = cfg_.endpoint + "/";
    req.body = body.dump();
    req.timeout_ms = cfg_.timeout_ms;
    req.headers = {"Content-Type: application/x-amz-json-1.1", "X-Amz-Target: Kinesis_20131202.PutRecords"};
    if (!creds_.session_token.empty()) req.headers.push_back("X-Amz-Security-Token: " + creds_.session_token);
    req.aws_sigv4 = fmt::format("aws:amz:{}:kinesis", cfg_.region);
    req.aws_key_secret = creds_.access_key_id + ":" + creds_.secret_access_key;
    const http::HttpResponse resp = client_->Send(req);
    if (resp.status != 200) {
      std::string type;
      if (auto j = nlohmann::json::parse(resp.body, nullptr, false); j.is_object()) {
        type = j.value("__type", "") + ": " + j.value("message", j.value("Message", ""));
      }
      last_error = resp.status == 0 ? resp.error : fmt::format("HTTP {} {}", resp.status, type);
      if (resp.status == 400 && !RetryableType(type)) {
        d.error = Status::Permanent("PutRecords: " + last_error);
        return d;
      }
      break;  // request-level failure: back off in the forwarder
    }
    auto j = nlohmann::json::parse(resp.body, nullptr, false);
    if (!j.is_object() || !j["Records"].is_array() || j["Records"].size() != pending.size()) {
      last_error = "PutRecords: unexpected response: " + resp.body.substr(0, 200);
      break;
    }
    std::vector<Entry> failed;
    for (size_t k = 0; k < pending.size(); ++k) {
      const auto& rec = j["Records"][k];
      if (rec.contains("ErrorCode") && !rec["ErrorCode"].is_null()) {
        last_error = rec.value("ErrorCode", "") + ": " + rec.value("ErrorMessage", "");
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
