// The source and sink types the agent knows: one list each. A type is a struct beside
// its driver (drivers/include/edgeferry/drivers/sink_settings.h explains the shape:
// name, settings reader, factory, and for a sink its default batching); adding a type
// is its own folder, its files in drivers/CMakeLists.txt, and one entry below.
// docs/architecture.md "Types".
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "edgeferry/drivers/aws/aws_settings.h"
#include "edgeferry/drivers/http/http_settings.h"
#include "edgeferry/drivers/mqtt/mqtt_settings.h"
#include "edgeferry/drivers/outbox/outbox_settings.h"
#include "edgeferry/drivers/serial/serial_settings.h"

namespace edgeferry::agent {

template <typename... Types>
struct TypeList {
  // One settings type per entry, in the list's order.
  using Settings = std::variant<typename Types::Config...>;
};

using SourceTypes = TypeList<drivers::MqttSourceType, drivers::serial::SerialSourceType>;
using SinkTypes = TypeList<drivers::OutboxSinkType, drivers::MqttUplinkSinkType, drivers::http::HttpSinkType,
                           drivers::aws::KinesisSinkType, drivers::aws::S3SinkType>;

// A source's or sink's typed settings: exactly one driver configuration.
using SourceSettings = SourceTypes::Settings;
using SinkSettings = SinkTypes::Settings;

// The `type` name of the settings held ("mqtt", "serial", "outbox", ...).
std::string_view TypeName(const SourceSettings& settings);
std::string_view TypeName(const SinkSettings& settings);

// "mqtt, serial" and "outbox, mqtt, http, kinesis, s3": for messages.
std::string KnownSourceTypes();
std::string KnownSinkTypes();

// Reads [sources.<ctx.name>] as source type `type` through `r` (errors are recorded
// there); nullopt when no source type has that name.
std::optional<SourceSettings> ReadSourceSettings(std::string_view type, settings::TableReader& r,
                                                 const settings::Context& ctx);

// The sink type's default batching (max_records, max_bytes, linger); nullopt for an
// unknown type.
std::optional<drivers::BatchPolicy> DefaultBatch(std::string_view type);

// Reads [sinks.<ctx.name>] as sink type `type`, with the batching the agent read
// over DefaultBatch; nullopt when no sink type has that name.
std::optional<SinkSettings> ReadSinkSettings(std::string_view type, settings::TableReader& r,
                                             const settings::Context& ctx, const drivers::BatchPolicy& batch);

// The secrets `settings` holds (passwords, header values) that a message must never
// show: what the type's optional `Secrets(config)` returns; none without one.
std::vector<std::string> SecretsOf(const SourceSettings& settings);
std::vector<std::string> SecretsOf(const SinkSettings& settings);

// The driver for `settings`; never null. A source pushes into `ingest` (borrowed: it
// must outlive the source). Nothing connects before Start().
drivers::SourcePtr MakeSource(const SourceSettings& settings, drivers::Ingest& ingest);
drivers::SinkPtr MakeSink(const SinkSettings& settings);

}  // namespace edgeferry::agent
