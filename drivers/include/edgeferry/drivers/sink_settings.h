// Settings keys every sink type shares, and what a sink type declares to the agent's
// registry (agent/src/registry.cc). A sink type is a struct beside its driver:
//
//   struct FooSinkType {
//     static constexpr std::string_view kName = "foo";            // [sinks.x] type = "foo"
//     static constexpr BatchPolicy kDefaultBatch{1000, 1 << 20, 1'000'000'000};
//     using Config = FooSinkConfig;
//     // Reads [sinks.<ctx.name>] (all but the keys the agent reads for every sink:
//     // type, batching, retry, drain, route, processors); errors go through `r`.
//     static Config Read(settings::TableReader& r, const settings::Context& ctx, const BatchPolicy& batch);
//     static SinkPtr Make(const Config& config);
//     // Optional: values a message must never show (passwords, header values).
//     static std::vector<std::string> Secrets(const Config& config);
//   };
//
// A source type (MqttSourceType, SerialSourceType) is the same without kDefaultBatch,
// Read without `batch`, and `static SourcePtr Make(const Config&, Ingest&)`.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "edgeferry/drivers/sink.h"
#include "edgeferry/settings/context.h"

namespace edgeferry::drivers {

// An error naming `key` when `tmpl` has a {field} the templates do not know
// (batch_encoding.h: gateway_id, source, channel, prefix, seq, first_seq, last_seq,
// yyyy, mm, dd, HH).
void CheckTemplate(settings::TableReader& r, std::string_view key, const std::string& tmpl);

// `payload` = "envelope" (default, docs/envelope.md) or "raw": true for raw.
bool ReadPayloadMode(settings::TableReader& r);

// max_record_bytes and max_batch_bytes over the type's defaults `d`, each at most the
// protocol's own ceiling in bytes (sink.h, DestinationLimits).
DestinationLimits ReadDestinationLimits(settings::TableReader& r, const DestinationLimits& d,
                                        uint64_t record_ceiling, uint64_t batch_ceiling);

}  // namespace edgeferry::drivers
