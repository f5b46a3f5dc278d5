#include "edgeferry/drivers/aws/aws_settings.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>

#include "edgeferry/drivers/batch_encoding.h"
#include "edgeferry/drivers/http/http_settings.h"
#include "edgeferry/settings/common_keys.h"

namespace edgeferry::drivers::aws {

using settings::kMs;
using settings::kSec;
using settings::TableReader;

namespace {

// region (default $AWS_REGION, else us-east-1), endpoint, credentials_file, profile.
void ReadAwsCommon(TableReader& r, std::string* region, std::string* endpoint, std::string* file,
                   std::string* profile) {
  const char* env_region = std::getenv("AWS_REGION");
  *region = r.String("region", env_region && *env_region ? env_region : "us-east-1");
  // The region becomes part of a host name (kinesis.{region}.amazonaws.com).
  if (region->empty() || region->find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") != std::string::npos) {
    r.Error("region", "must be an AWS region name such as eu-central-1 (lowercase letters, digits, -)");
  }
  *endpoint = r.String("endpoint", "");
  if (!endpoint->empty() && !endpoint->starts_with("http://") && !endpoint->starts_with("https://")) {
    r.Error("endpoint", "must start with http:// or https://");
  } else if (const std::string problem = settings::AuthorityProblem(*endpoint, /*allow_userinfo=*/false);
             !problem.empty()) {
    r.Error("endpoint", problem);
  }
  *file = r.String("credentials_file", "");
  *profile = r.String("profile", "");
}

}  // namespace

KinesisSinkConfig KinesisSinkType::Read(TableReader& r, const settings::Context& ctx, const BatchPolicy& batch) {
  KinesisSinkConfig k;
  k.name = ctx.name;
  k.gateway_id = ctx.gateway_id;
  k.batch = batch;
  if (batch.max_records > 500) r.Error("max_records", "must be at most 500 for Kinesis PutRecords");
  k.stream = r.String("stream", "", /*required=*/true);
  ReadAwsCommon(r, &k.region, &k.endpoint, &k.credentials_file, &k.profile);
  k.partition_key = r.String("partition_key", k.partition_key);
  CheckTemplate(r, "partition_key", k.partition_key);
  k.raw_payload = ReadPayloadMode(r);
  k.timeout_ms = r.Duration("timeout", 30 * kSec, 100 * kMs, 3600 * kSec) / kMs;
  k.tls = http::ReadHttpTls(r);
  // PutRecords: 1 MiB per record (data + partition key), 5 MiB per request.
  k.limits = ReadDestinationLimits(r, k.limits, 1ull << 20, 5ull << 20);
  return k;
}

SinkPtr KinesisSinkType::Make(const Config& config) { return std::make_unique<KinesisSink>(config); }

S3SinkConfig S3SinkType::Read(TableReader& r, const settings::Context& ctx, const BatchPolicy& batch) {
  S3SinkConfig o;
  o.name = ctx.name;
  o.gateway_id = ctx.gateway_id;
  o.batch = batch;
  o.bucket = r.String("bucket", "", /*required=*/true);
  // S3 bucket naming rules; the name can become part of the host (virtual-hosted style).
  if (!o.bucket.empty() && (o.bucket.size() < 3 || o.bucket.size() > 63 ||
                            o.bucket.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789.-") != std::string::npos)) {
    r.Error("bucket", "must be an S3 bucket name: 3-63 lowercase letters, digits, '.' and '-'");
  }
  ReadAwsCommon(r, &o.region, &o.endpoint, &o.credentials_file, &o.profile);
  o.path_style = r.Bool("path_style", false);
  o.prefix = r.String("prefix", o.prefix);
  o.key_template = r.String("key_template", o.key_template);
  CheckTemplate(r, "key_template", o.key_template);
  if (o.key_template.find("{first_seq}") == std::string::npos || o.key_template.find("{last_seq}") == std::string::npos) {
    r.Error("key_template", "must contain {first_seq} and {last_seq}, so a retried upload writes the same key");
  }
  o.compression = *ParseCompression(r.Enum("compression", "zstd", {"none", "gzip", "zstd"}));
  o.multipart_threshold = r.Bytes("multipart_threshold", o.multipart_threshold, 5 << 20, 5ull << 30);
  o.part_size = r.Bytes("part_size", o.part_size, 5 << 20, 5ull << 30);
  o.timeout_ms = r.Duration("timeout", 120 * kSec, 100 * kMs, 3600 * kSec) / kMs;
  o.tls = http::ReadHttpTls(r);
  // 5 GiB per object; 10,000 parts per multipart upload (at most 5 TiB).
  o.limits.max_batch_bytes = std::min<uint64_t>(o.part_size * 10'000, 5ull << 40);
  o.limits = ReadDestinationLimits(r, o.limits, 5ull << 30, 5ull << 40);
  return o;
}

SinkPtr S3SinkType::Make(const Config& config) { return std::make_unique<S3Sink>(config); }

}  // namespace edgeferry::drivers::aws
