#include "edgeferry/pipeline/route.h"

#include <algorithm>

namespace edgeferry::pipeline {

bool TopicFilterValid(std::string_view f) {
  if (f.empty() || f.size() > 65535) return false;
  for (size_t p = 0; p < f.size(); ++p) {
    if (f[p] == '#' && !(p + 1 == f.size() && (p == 0 || f[p - 1] == '/'))) return false;
    if (f[p] == '+' && !((p == 0 || f[p - 1] == '/') && (p + 1 == f.size() || f[p + 1] == '/'))) return false;
  }
  return true;
}

bool TopicMatches(std::string_view filter, std::string_view topic) {
  // MQTT 3.1.1 4.7.2: topics beginning with '$' are not matched by a leading wildcard.
  if (!topic.empty() && topic[0] == '$' && !filter.empty() && (filter[0] == '+' || filter[0] == '#')) return false;
  size_t f = 0, t = 0;
  while (true) {
    const size_t f_end = std::min(filter.find('/', f), filter.size());
    const std::string_view level = filter.substr(f, f_end - f);
    if (level == "#") return true;  // this level and every one below, or none ("a/#" matches "a")
    const size_t t_end = std::min(topic.find('/', t), topic.size());
    if (level != "+" && level != topic.substr(t, t_end - t)) return false;
    const bool filter_done = f_end == filter.size();
    const bool topic_done = t_end == topic.size();
    if (filter_done || topic_done) {
      if (filter_done && topic_done) return true;
      // "a/#" matches "a": the filter's next level is a lone '#'.
      return topic_done && !filter_done && filter.substr(f_end + 1) == "#";
    }
    f = f_end + 1;
    t = t_end + 1;
  }
}

bool Route::Selects(const Record& r) const {
  if (!sources.empty() && std::find(sources.begin(), sources.end(), r.source) == sources.end()) return false;
  if (channels.empty()) return true;
  return std::any_of(channels.begin(), channels.end(),
                     [&](const std::string& filter) { return TopicMatches(filter, r.channel); });
}

void RouteTable::Set(std::vector<Route> routes) {
  const bool all = std::any_of(routes.begin(), routes.end(), [](const Route& r) { return r.SelectsAll(); });
  auto next = std::make_shared<const std::vector<Route>>(std::move(routes));
  MutexLock l(mu_);
  routes_ = std::move(next);
  some_route_selects_all_.store(all, std::memory_order_release);
}

bool RouteTable::AnySelects(const Record& r) const {
  if (some_route_selects_all_.load(std::memory_order_acquire)) return true;  // the default: no lock per record
  std::shared_ptr<const std::vector<Route>> routes;
  {
    MutexLock l(mu_);
    routes = routes_;
  }
  return std::any_of(routes->begin(), routes->end(), [&](const Route& route) { return route.Selects(r); });
}

}  // namespace edgeferry::pipeline
