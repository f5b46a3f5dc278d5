#include "edgeferry/drivers/outbox/outbox_settings.h"

#include "edgeferry/settings/table_reader.h"

namespace edgeferry::drivers {

OutboxSinkConfig OutboxSinkType::Read(settings::TableReader& r, const settings::Context& ctx,
                                      const BatchPolicy& batch) {
  OutboxSinkConfig o;
  o.name = ctx.name;
  o.gateway_id = ctx.gateway_id;
  o.batch = batch;
  o.dir = r.String("dir", ctx.data_dir + "/outbox");
  o.zstd_level = r.Int<int>("compression_level", 3, 0, 19);
  return o;
}

SinkPtr OutboxSinkType::Make(const Config& config) { return std::make_unique<OutboxSink>(config); }

}  // namespace edgeferry::drivers
