// The Kinesis Data Streams and S3 sinks as configuration types (sink_settings.h explains
// the shape). Keys and defaults: docs/configuration.md, [sinks.<name>] type = "kinesis"
// and type = "s3".
#pragma once

#include <string_view>

#include "edgeferry/drivers/aws/kinesis_sink.h"
#include "edgeferry/drivers/aws/s3_sink.h"
#include "edgeferry/drivers/sink_settings.h"

namespace edgeferry::drivers::aws {

struct KinesisSinkType {
  static constexpr std::string_view kName = "kinesis";
  // PutRecords takes at most 500 records per request.
  static constexpr BatchPolicy kDefaultBatch{500, 4ull << 20, 1'000'000'000};
  using Config = KinesisSinkConfig;
  static Config Read(settings::TableReader& r, const settings::Context& ctx, const BatchPolicy& batch);
  static SinkPtr Make(const Config& config);
};

struct S3SinkType {
  static constexpr std::string_view kName = "s3";
  // One object per batch: up to a million records, 64 MiB or 5 minutes.
  static constexpr BatchPolicy kDefaultBatch{1'000'000, 64ull << 20, 300'000'000'000};
  using Config = S3SinkConfig;
  static Config Read(settings::TableReader& r, const settings::Context& ctx, const BatchPolicy& batch);
  static SinkPtr Make(const Config& config);
};

}  // namespace edgeferry::drivers::aws
