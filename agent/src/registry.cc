#include "edgeferry/agent/registry.h"

namespace edgeferry::agent {

namespace {

template <typename... Types>
std::string_view NameAt(size_t index, TypeList<Types...>) {
  static constexpr std::string_view kNames[] = {Types::kName...};
  return kNames[index];
}

template <typename... Types>
std::string NamesOf(TypeList<Types...>) {
  std::string out;
  ((out += (out.empty() ? "" : ", ") + std::string(Types::kName)), ...);
  return out;
}

// Calls fn(Type{}) for the entry named `type`; false when none is.
template <typename Fn, typename... Types>
bool WithType(std::string_view type, TypeList<Types...>, Fn&& fn) {
  return ((Types::kName == type ? (fn(Types{}), true) : false) || ...);
}

// Type::Make on the entry the settings' alternative belongs to (same position).
template <typename Ptr, typename... Types, typename Settings, typename... Args>
Ptr MakeFrom(TypeList<Types...>, const Settings& settings, Args&... args) {
  Ptr made;
  size_t i = 0;
  ((i++ == settings.index() ? void(made = Types::Make(std::get<typename Types::Config>(settings), args...)) : void()),
   ...);
  return made;
}

// Type::Secrets on the entry the settings' alternative belongs to, if it has one.
template <typename... Types, typename Settings>
std::vector<std::string> SecretsFrom(TypeList<Types...>, const Settings& settings) {
  std::vector<std::string> out;
  size_t i = 0;
  const auto one = [&](auto type) {
    using Type = decltype(type);
    if (i++ != settings.index()) return;
    if constexpr (requires(const typename Type::Config& c) { Type::Secrets(c); }) {
      out = Type::Secrets(std::get<typename Type::Config>(settings));
    }
  };
  (one(Types{}), ...);
  return out;
}

}  // namespace

std::string_view TypeName(const SourceSettings& s) { return NameAt(s.index(), SourceTypes{}); }
std::string_view TypeName(const SinkSettings& s) { return NameAt(s.index(), SinkTypes{}); }
std::string KnownSourceTypes() { return NamesOf(SourceTypes{}); }
std::string KnownSinkTypes() { return NamesOf(SinkTypes{}); }

std::optional<SourceSettings> ReadSourceSettings(std::string_view type, settings::TableReader& r,
                                                 const settings::Context& ctx) {
  std::optional<SourceSettings> out;
  WithType(type, SourceTypes{}, [&](auto t) { out.emplace(decltype(t)::Read(r, ctx)); });
  return out;
}

std::optional<drivers::BatchPolicy> DefaultBatch(std::string_view type) {
  std::optional<drivers::BatchPolicy> out;
  WithType(type, SinkTypes{}, [&](auto t) { out = decltype(t)::kDefaultBatch; });
  return out;
}

std::optional<SinkSettings> ReadSinkSettings(std::string_view type, settings::TableReader& r,
                                             const settings::Context& ctx, const drivers::BatchPolicy& batch) {
  std::optional<SinkSettings> out;
  WithType(type, SinkTypes{}, [&](auto t) { out.emplace(decltype(t)::Read(r, ctx, batch)); });
  return out;
}

std::vector<std::string> SecretsOf(const SourceSettings& s) { return SecretsFrom(SourceTypes{}, s); }
std::vector<std::string> SecretsOf(const SinkSettings& s) { return SecretsFrom(SinkTypes{}, s); }

drivers::SourcePtr MakeSource(const SourceSettings& settings, drivers::Ingest& ingest) {
  return MakeFrom<drivers::SourcePtr>(SourceTypes{}, settings, ingest);
}

drivers::SinkPtr MakeSink(const SinkSettings& settings) { return MakeFrom<drivers::SinkPtr>(SinkTypes{}, settings); }

}  // namespace edgeferry::agent
