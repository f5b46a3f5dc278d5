#include "edgeferry/drivers/mqtt/mqtt_control_channel.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <mqtt/async_client.h>
#include <thread>

#include "edgeferry/redact.h"
#include "edgeferry/thread_annotations.h"
#include "paho_tls.h"

namespace edgeferry::drivers {

class MqttControlChannel::Impl final : public mqtt::callback {
 public:
  Impl(MqttUplinkSinkConfig cfg, std::string subscribe, OnMessage on_message)
      : cfg_(std::move(cfg)), subscribe_(std::move(subscribe)), on_message_(std::move(on_message)) {
    const int version = cfg_.mqtt_version == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
    client_ = std::make_unique<mqtt::async_client>(cfg_.uri, cfg_.client_id, mqtt::create_options(version));
    opts_ = CleanConnectOptions(cfg_).finalize();
    client_->set_callback(*this);
  }

  ~Impl() override { Stop(); }

  void Start() {
    thread_ = std::thread([this] { Run(); });
  }

  void Stop() {
    {
      MutexLock l(mu_);
      if (stop_) return;
      stop_ = true;
    }
    cv_.NotifyAll();
    if (thread_.joinable()) thread_.join();
    try {
      if (client_->is_connected()) client_->disconnect()->wait_for(std::chrono::seconds(2));
    } catch (const mqtt::exception&) {
    }
  }

  // Not connected(): that would hide mqtt::callback::connected(cause) (clang -Woverloaded-virtual).
  bool link_up() const { return connected_; }

  Status Publish(const std::string& topic, const std::string& payload, bool retained, int timeout_ms) {
    if (!connected_) return Status::Unavailable(fmt::format("control channel to {} is not connected", cfg_.uri));
    try {
      auto tok = client_->publish(topic, payload.data(), payload.size(), 1, retained);
      if (!tok->wait_for(std::chrono::milliseconds(timeout_ms))) {
        return Status::Unavailable(fmt::format("no PUBACK from {} for {}", cfg_.uri, topic));
      }
      return Status::Ok();
    } catch (const mqtt::exception& e) {
      return Status::Unavailable(fmt::format("publish to {} on {}: {}", topic, cfg_.uri, e.what()));
    }
  }

 private:
  // Paho callbacks (Paho's thread).
  void connection_lost(const std::string& cause) override {
    {
      // Under the lock: Run() checks connected_ and then waits; set between the two,
      // the notification would be lost and the channel would never reconnect.
      MutexLock l(mu_);
      connected_ = false;
    }
    spdlog::warn("fleet: management connection to {} lost{}", RedactUrl(cfg_.uri), cause.empty() ? "" : ": " + cause);
    cv_.NotifyAll();
  }
  void message_arrived(mqtt::const_message_ptr msg) override {
    const size_t size = msg->get_payload_ref().size();
    if (size > max_payload_bytes_) {
      if (on_oversize_) on_oversize_(msg->get_topic(), size);
      return;
    }
    on_message_(msg->get_topic(), msg->to_string());
  }

 public:
  size_t max_payload_bytes_ = SIZE_MAX;
  OnOversize on_oversize_;

 private:

  void Run() EXCLUDES(mu_) {
    int64_t backoff_ms = 1000;
    MutexLock l(mu_);
    while (!stop_) {
      if (!connected_) {
        l.Unlock();
        const bool ok = ConnectAndSubscribe();
        l.Lock();
        if (ok) {
          backoff_ms = 1000;
        } else {
          const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(backoff_ms);
          while (!stop_ && std::chrono::steady_clock::now() < deadline) {
            cv_.WaitFor(l, deadline - std::chrono::steady_clock::now());
          }
          backoff_ms = std::min<int64_t>(backoff_ms * 2, 30'000);
          continue;
        }
      }
      while (!stop_ && connected_) cv_.Wait(l);
    }
  }

  bool ConnectAndSubscribe() {
    try {
      client_->connect(opts_)->wait();
      client_->subscribe(subscribe_, 1)->wait();
      connected_ = true;
      spdlog::info("fleet: connected to {}, subscribed to {}", RedactUrl(cfg_.uri), subscribe_);
      return true;
    } catch (const mqtt::exception& e) {
      spdlog::warn("fleet: cannot connect to {}: {}", RedactUrl(cfg_.uri), e.what());
      try {
        if (client_->is_connected()) client_->disconnect()->wait_for(std::chrono::seconds(1));
      } catch (const mqtt::exception&) {
      }
      return false;
    }
  }

  MqttUplinkSinkConfig cfg_;
  std::string subscribe_;
  OnMessage on_message_;
  std::unique_ptr<mqtt::async_client> client_;
  mqtt::connect_options opts_;
  std::thread thread_;
  Mutex mu_;
  CondVar cv_;
  bool stop_ GUARDED_BY(mu_) = false;
  std::atomic<bool> connected_{false};
};

MqttControlChannel::MqttControlChannel(MqttUplinkSinkConfig connection, std::string subscribe, OnMessage on_message)
    : impl_(std::make_unique<Impl>(std::move(connection), std::move(subscribe), std::move(on_message))) {}
MqttControlChannel::~MqttControlChannel() { Stop(); }
void MqttControlChannel::Start() { impl_->Start(); }
void MqttControlChannel::LimitPayload(size_t max_bytes, OnOversize on_oversize) {
  impl_->max_payload_bytes_ = max_bytes;
  impl_->on_oversize_ = std::move(on_oversize);
}
void MqttControlChannel::Stop() { impl_->Stop(); }
bool MqttControlChannel::connected() const { return impl_->link_up(); }
Status MqttControlChannel::Publish(const std::string& topic, const std::string& payload, bool retained,
                                   int timeout_ms) {
  return impl_->Publish(topic, payload, retained, timeout_ms);
}

}  // namespace edgeferry::drivers
