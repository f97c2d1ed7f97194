// MqttSource against a real broker: each test starts Debian's `mosquitto` on
// a free loopback port with its own config in a scratch directory, publishes
// with libmosquitto (QoS 0 and 1) and reads the exact samples from a real
// ring file. The broker is killed and restarted mid-run to check that the
// source reconnects, subscribes again and carries on.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <mosquitto.h>
#include <spdlog/spdlog.h>

#include "loopback.hpp"
#include "mosquitto_broker.hpp"
#include "parse_harness.hpp"
#include "ringpipe/ingest/mqtt_source.hpp"
#include "ringpipe/ingest/ring_target.hpp"
#include "ringpipe/ring/ring.hpp"
#include "ringpipe/stats/stats_segment.hpp"
#include "test_support.hpp"

namespace ringpipe::ingest {
namespace {

using namespace std::chrono_literals;
using ringpipe::testing::ScratchDir;
using ringpipe::testing::wait_until;
using testing::Got;
using testing::Tags;

using ringpipe::testing::MosquittoBroker;

// A publishing client with its own network thread.
class Publisher {
 public:
  explicit Publisher(std::uint16_t port, const std::string& username = "", const std::string& password = "") {
    mosquitto_lib_init();
    m_ = mosquitto_new(nullptr, true, this);
    if (m_ == nullptr) return;
    mosquitto_publish_callback_set(m_, [](mosquitto*, void* self, int) { ++static_cast<Publisher*>(self)->acked_; });
    ok_ = (username.empty() || mosquitto_username_pw_set(m_, username.c_str(), password.c_str()) == MOSQ_ERR_SUCCESS) &&
          mosquitto_connect(m_, "127.0.0.1", port, 30) == MOSQ_ERR_SUCCESS &&
          mosquitto_loop_start(m_) == MOSQ_ERR_SUCCESS;
  }
  ~Publisher() {
    if (m_ != nullptr) {
      mosquitto_disconnect(m_);
      mosquitto_loop_stop(m_, false);
      mosquitto_destroy(m_);
    }
  }
  [[nodiscard]] bool ok() const { return ok_; }
  bool publish(const std::string& topic, const std::string& payload, int qos, bool retain = false) {
    ++sent_;
    return mosquitto_publish(m_, nullptr, topic.c_str(), static_cast<int>(payload.size()), payload.data(), qos,
                             retain) == MOSQ_ERR_SUCCESS;
  }
  // Every publish left the client (QoS 0) or was acknowledged (QoS 1).
  bool flushed() {
    return wait_until([&] { return acked_.load() >= sent_; }, 10000ms);
  }

 private:
  mosquitto* m_ = nullptr;
  bool ok_ = false;
  std::atomic<int> acked_{0};
  int sent_ = 0;
};

// A ring file and a reader in this process.
class RingTap {
 public:
  explicit RingTap(const ScratchDir& dir) {
    ring::RingOptions o;
    o.lane_capacity_bytes = 1u << 20;
    o.lanes = 2;
    auto r = ring::Ring::create(dir.file("raw.ring"), o);
    EXPECT_TRUE(r);
    ring_ = std::make_unique<ring::Ring>(std::move(*r));
    auto reader = ring::Reader::attach(*ring_, "check");
    EXPECT_TRUE(reader);
    reader_ = std::make_unique<ring::Reader>(std::move(*reader));
  }
  [[nodiscard]] const ring::Ring& ring() const { return *ring_; }
  // Reads everything committed so far.
  void drain() {
    reader_->poll([&](const ring::RecordView& v) {
      ++records;
      EXPECT_EQ(v.type, sample::kSampleBatchRecord);
      for (Got& g : testing::decode(v.payload)) samples.push_back(std::move(g));
    });
  }
  // Waits until `n` samples named `name` are in the ring.
  bool wait_for(const std::string& name, std::size_t n) {
    return wait_until(
        [&] {
          drain();
          return count(name) >= n;
        },
        10000ms);
  }
  [[nodiscard]] std::size_t count(const std::string& name) const {
    std::size_t n = 0;
    for (const Got& g : samples) n += g.name == name;
    return n;
  }
  [[nodiscard]] std::vector<Got> named(const std::string& name) const {
    std::vector<Got> out;
    for (const Got& g : samples)
      if (g.name == name) out.push_back(g);
    return out;
  }
  std::vector<Got> samples;
  std::size_t records = 0;

 private:
  std::unique_ptr<ring::Ring> ring_;
  std::unique_ptr<ring::Reader> reader_;
};

MqttConfig base_config(std::uint16_t port) {
  MqttConfig c;
  c.name = "mqtt-test";
  c.source_id = 5;
  c.port = port;
  c.topics = {"sensors/#", "junk/#"};
  c.reconnect_min = 20ms;
  c.reconnect_max = 200ms;
  return c;
}

// Publishes probes until one arrives: the source is connected and subscribed.
bool wait_subscribed(Publisher& pub, RingTap& tap, const std::string& topic, const std::string& payload,
                     const std::string& name) {
  const std::size_t before = tap.count(name);
  return wait_until(
      [&] {
        pub.publish(topic, payload, 0);
        std::this_thread::sleep_for(20ms);
        tap.drain();
        return tap.count(name) > before;
      },
      15000ms);
}

class MqttSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    spdlog::default_logger()->set_level(spdlog::level::err);
    if (!MosquittoBroker::available()) GTEST_SKIP() << "needs Debian's mosquitto";
    const std::uint16_t port = ringpipe::testing::free_tcp_port();
    broker_ = std::make_unique<MosquittoBroker>(dir_.file("mosquitto.conf"), MosquittoBroker::anonymous_listener(port),
                                                std::vector<std::uint16_t>{port});
    ASSERT_TRUE(broker_->start());
  }
  ScratchDir dir_;
  std::unique_ptr<MosquittoBroker> broker_;
};

TEST_F(MqttSourceTest, ValuePayloadsBecomeSamplesNamedAndLabelledByTheTopicTemplate) {
  RingTap tap(dir_);
  MqttConfig c = base_config(broker_->port());
  c.qos = 1;
  c.payload = MqttPayload::kValue;
  c.topic_template = "sensors/+site/+device/+name";
  c.max_message_bytes = 64;
  c.stats_path = dir_.file("mqtt.stats");
  auto source = MqttSource::create(c, ring_target_factory(tap.ring()));
  ASSERT_TRUE(source) << source.error().message();
  ASSERT_TRUE((*source)->start());
  Publisher pub(broker_->port());
  ASSERT_TRUE(pub.ok());
  ASSERT_TRUE(wait_subscribed(pub, tap, "sensors/probe/p/probe", "1", "probe"));

  for (int i = 0; i < 50; ++i) ASSERT_TRUE(pub.publish("sensors/lab/s1/temperature", std::to_string(i) + ".5", 0));
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(pub.publish("sensors/roof/s2/humidity", " " + std::to_string(i) + "\n", 1));
  ASSERT_TRUE(pub.publish("sensors/lab/s1/temperature", "warm", 1));         // malformed_value
  ASSERT_TRUE(pub.publish("sensors/lab/too/many/levels", "1", 1));           // topic_mismatch
  ASSERT_TRUE(pub.publish("junk/x", "1", 1));                                // topic_mismatch
  ASSERT_TRUE(pub.publish("sensors/lab/s1/big", std::string(100, '1'), 1));  // message_too_large
  ASSERT_TRUE(pub.flushed());
  ASSERT_TRUE(tap.wait_for("temperature", 50));
  ASSERT_TRUE(tap.wait_for("humidity", 50));
  ASSERT_TRUE(wait_until([&] { return (*source)->stats().parse_error(ParseError::kMessageTooLarge) == 1; }, 5000ms));

  const auto temps = tap.named("temperature");
  ASSERT_EQ(temps.size(), 50u);
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(temps[i].kind, sample::Kind::kGauge);
    EXPECT_DOUBLE_EQ(temps[i].value, i + 0.5);  // one publisher, one topic: in order
    EXPECT_EQ(temps[i].tags, (Tags{{"site", "lab"}, {"device", "s1"}}));
  }
  const auto hum = tap.named("humidity");
  ASSERT_EQ(hum.size(), 50u);
  EXPECT_DOUBLE_EQ(hum[49].value, 49);
  EXPECT_EQ(hum[0].tags, (Tags{{"site", "roof"}, {"device", "s2"}}));
  const IngestStats& s = (*source)->stats();
  EXPECT_EQ(s.parse_error(ParseError::kMalformedValue), 1u);
  EXPECT_EQ(s.parse_error(ParseError::kTopicMismatch), 2u);
  EXPECT_EQ(s.parse_error(ParseError::kMessageTooLarge), 1u);
  EXPECT_EQ(s.samples_dropped.load(), 0u);

  (*source)->stop();
  auto seg = stats::StatsReader::open(c.stats_path);
  ASSERT_TRUE(seg);
  std::map<std::string, double> v;
  for (const stats::StatsEntry& e : seg->snapshot()) {
    if (e.labels.empty()) v[e.name] = e.value();
    if (e.name == "source_parse_errors_total" && e.labels.size() == 1 && e.labels[0].value == "topic_mismatch")
      v["topic_mismatch"] = e.value();
  }
  EXPECT_EQ(v["source_mqtt_connects_total"], 1);
  EXPECT_EQ(v["source_mqtt_connected"], 0);
  EXPECT_EQ(v["topic_mismatch"], 2);
  EXPECT_EQ(v["source_samples_written_total"], static_cast<double>(s.samples_written.load()));
  EXPECT_EQ(v["source_mqtt_messages_total"], static_cast<double>((*source)->mqtt_stats().messages.load()));
}

// Messages the socket already holds share one claim: the broker hands a new
// subscriber every retained message of its filter at once, so they are in
// the socket together whatever the machine's load (a live publisher's
// messages may each arrive alone when the source keeps up).
TEST_F(MqttSourceTest, MessagesTheSocketAlreadyHoldsShareOneRecord) {
  constexpr int kRetained = 200;
  {
    Publisher pub(broker_->port());
    ASSERT_TRUE(pub.ok());
    for (int i = 0; i < kRetained; ++i)
      ASSERT_TRUE(pub.publish("sensors/lab/s" + std::to_string(i) + "/temperature", std::to_string(i), 1, true));
    ASSERT_TRUE(pub.flushed());
  }
  RingTap tap(dir_);
  MqttConfig c = base_config(broker_->port());
  c.qos = 1;
  c.payload = MqttPayload::kValue;
  c.topic_template = "sensors/+site/+device/+name";
  auto source = MqttSource::create(c, ring_target_factory(tap.ring()));
  ASSERT_TRUE(source) << source.error().message();
  ASSERT_TRUE((*source)->start());
  ASSERT_TRUE(tap.wait_for("temperature", kRetained));
  (*source)->stop();
  tap.drain();
  EXPECT_EQ(tap.count("temperature"), static_cast<std::size_t>(kRetained));
  EXPECT_LT(tap.records, static_cast<std::size_t>(kRetained) / 2)
      << "retained messages each took a record of their own";
}

TEST_F(MqttSourceTest, ValuePayloadsTrueFalseOnOffAreOneAndZero) {
  RingTap tap(dir_);
  MqttConfig c = base_config(broker_->port());
  c.qos = 1;
  c.payload = MqttPayload::kValue;
  c.topic_template = "sensors/+device/+name";
  auto source = MqttSource::create(c, ring_target_factory(tap.ring()));
  ASSERT_TRUE(source) << source.error().message();
  ASSERT_TRUE((*source)->start());
  Publisher pub(broker_->port());
  ASSERT_TRUE(pub.ok());
  ASSERT_TRUE(wait_subscribed(pub, tap, "sensors/p/probe", "1", "probe"));
  const std::vector<std::pair<std::string, double>> sent = {{"true", 1}, {"false", 0}, {" TRUE\n", 1}, {"False", 0},
                                                            {"ON", 1},   {"off", 0},   {"On", 1}};
  for (const auto& [payload, v] : sent) ASSERT_TRUE(pub.publish("sensors/front/door", payload, 1));
  ASSERT_TRUE(pub.publish("sensors/front/door", "open", 1));   // malformed_value
  ASSERT_TRUE(pub.publish("sensors/front/door", "truex", 1));  // malformed_value
  ASSERT_TRUE(pub.flushed());
  ASSERT_TRUE(tap.wait_for("door", sent.size()));
  ASSERT_TRUE(wait_until([&] { return (*source)->stats().parse_error(ParseError::kMalformedValue) == 2; }, 5000ms));
  const auto doors = tap.named("door");
  ASSERT_EQ(doors.size(), sent.size());
  for (std::size_t i = 0; i < sent.size(); ++i) EXPECT_EQ(doors[i].value, sent[i].second) << sent[i].first;
  (*source)->stop();
}

TEST_F(MqttSourceTest, JsonAndInfluxPayloadsCarryTheTopicLabels) {
  RingTap tap(dir_);
  MqttConfig j = base_config(broker_->port());
  j.name = "json";
  j.topics = {"sensors/json/#"};
  j.payload = MqttPayload::kJson;
  j.topic_template = "sensors/json/+device/+name";
  j.parser.json.timestamp_field = "ts";
  auto json_source = MqttSource::create(j, ring_target_factory(tap.ring()));
  ASSERT_TRUE(json_source) << json_source.error().message();
  MqttConfig i = base_config(broker_->port());
  i.name = "influx";
  i.topics = {"sensors/influx/#"};
  i.payload = MqttPayload::kInflux;
  i.topic_template = "sensors/influx/+device";
  auto influx_source = MqttSource::create(i, ring_target_factory(tap.ring()));
  ASSERT_TRUE(influx_source) << influx_source.error().message();
  ASSERT_TRUE((*json_source)->start());
  ASSERT_TRUE((*influx_source)->start());
  Publisher pub(broker_->port());
  ASSERT_TRUE(pub.ok());
  ASSERT_TRUE(wait_subscribed(pub, tap, "sensors/json/p/probe_json", R"({"value":1})", "probe_json"));
  ASSERT_TRUE(wait_subscribed(pub, tap, "sensors/influx/p", "probe_influx v=1", "probe_influx_v"));

  ASSERT_TRUE(pub.publish("sensors/json/s7/temp", R"({"value":21.5,"ts":1700000000,"room":"a"})", 1));
  ASSERT_TRUE(pub.publish("sensors/json/s7/temp", R"({"name":"override","value":3})", 1));
  ASSERT_TRUE(pub.publish("sensors/json/s7/temp", R"({"value":)", 1));  // invalid_json
  ASSERT_TRUE(pub.publish("sensors/json/s7/pretty", "{\n  \"value\": 7,\n  \"room\": \"b\"\n}\n", 1));
  ASSERT_TRUE(pub.publish("sensors/influx/s8", "cpu,core=0 user=1.5,sys=2i 1700000000000000000\ncpu user=3", 1));
  ASSERT_TRUE(pub.flushed());
  ASSERT_TRUE(tap.wait_for("temp", 1));
  ASSERT_TRUE(tap.wait_for("override", 1));
  ASSERT_TRUE(tap.wait_for("cpu_user", 2));
  ASSERT_TRUE(tap.wait_for("pretty", 1));

  const Got t = tap.named("temp").at(0);
  EXPECT_DOUBLE_EQ(t.value, 21.5);
  EXPECT_EQ(t.ts, 1700000000LL * 1'000'000'000);
  EXPECT_EQ(t.tags, (Tags{{"room", "a"}, {"device", "s7"}}));
  EXPECT_EQ(tap.named("override").at(0).tags, (Tags{{"device", "s7"}}));
  const Got pretty = tap.named("pretty").at(0);  // one object per message, across lines
  EXPECT_DOUBLE_EQ(pretty.value, 7);
  EXPECT_EQ(pretty.tags, (Tags{{"room", "b"}, {"device", "s7"}}));
  const auto cpu = tap.named("cpu_user");
  EXPECT_DOUBLE_EQ(cpu.at(0).value, 1.5);
  EXPECT_EQ(cpu.at(0).tags, (Tags{{"core", "0"}, {"device", "s8"}}));
  EXPECT_EQ(cpu.at(1).tags, (Tags{{"device", "s8"}}));
  EXPECT_DOUBLE_EQ(tap.named("cpu_sys").at(0).value, 2);
  EXPECT_TRUE(wait_until([&] { return (*json_source)->stats().parse_error(ParseError::kInvalidJson) == 1; }, 5000ms));
}

TEST_F(MqttSourceTest, ReconnectsAfterTheBrokerRestartsAndCarriesOn) {
  RingTap tap(dir_);
  MqttConfig c = base_config(broker_->port());
  c.qos = 1;
  c.payload = MqttPayload::kValue;
  c.metric_name = "level";
  c.topic_template = "sensors/+tank";
  auto source = MqttSource::create(c, ring_target_factory(tap.ring()));
  ASSERT_TRUE(source) << source.error().message();
  ASSERT_TRUE((*source)->start());
  {
    Publisher pub(broker_->port());
    ASSERT_TRUE(pub.ok());
    ASSERT_TRUE(wait_subscribed(pub, tap, "sensors/probe", "0", "level"));
    for (int i = 0; i < 20; ++i) ASSERT_TRUE(pub.publish("sensors/before", std::to_string(i), 1));
    ASSERT_TRUE(pub.flushed());
  }
  ASSERT_TRUE(wait_until(
      [&] {
        tap.drain();
        std::size_t n = 0;
        for (const Got& g : tap.samples) n += g.tags == Tags{{"tank", "before"}};
        return n == 20;
      },
      10000ms));

  broker_->stop();
  ASSERT_TRUE(wait_until([&] { return (*source)->mqtt_stats().disconnects.load() >= 1; }, 10000ms));
  EXPECT_EQ((*source)->mqtt_stats().connected.load(), 0u);
  std::this_thread::sleep_for(300ms);  // a few failed reconnects at the capped backoff
  ASSERT_TRUE(broker_->start());
  ASSERT_TRUE(wait_until([&] { return (*source)->mqtt_stats().connects.load() >= 2; }, 10000ms));
  Publisher pub(broker_->port());
  ASSERT_TRUE(pub.ok());
  ASSERT_TRUE(wait_subscribed(pub, tap, "sensors/probe", "0", "level"));
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(pub.publish("sensors/after", std::to_string(100 + i), 1));
  ASSERT_TRUE(pub.flushed());
  ASSERT_TRUE(wait_until(
      [&] {
        tap.drain();
        std::size_t n = 0;
        for (const Got& g : tap.samples) n += g.tags == Tags{{"tank", "after"}} && g.value >= 100;
        return n == 20;
      },
      10000ms));
  EXPECT_GE((*source)->mqtt_stats().connect_failures.load(), 1u);
  EXPECT_EQ((*source)->mqtt_stats().connected.load(), 1u);
  EXPECT_EQ((*source)->stats().samples_dropped.load(), 0u);
}

// A TLS listener with a certificate from a CA made here (openssl), and a
// plain listener beside it for the publisher.
TEST(MqttSourceTls, SubscribesOverTlsWithTheConfiguredCa) {
  spdlog::default_logger()->set_level(spdlog::level::err);
  if (!MosquittoBroker::available() || std::system("command -v openssl >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "needs mosquitto and openssl";
  ScratchDir dir;
  const std::string d = dir.path().string();
  const std::string make_certs =
      "cd " + d +
      " && openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=test-ca -keyout ca.key "
      "-out ca.pem 2>/dev/null && openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key "
      "-out server.csr 2>/dev/null && printf 'subjectAltName=IP:127.0.0.1,DNS:localhost' > san.ext && "
      "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile san.ext "
      "-out server.pem 2>/dev/null && chmod 644 server.key";
  ASSERT_EQ(std::system(make_certs.c_str()), 0);
  const std::uint16_t tls_port = ringpipe::testing::free_tcp_port();
  const std::uint16_t plain_port = ringpipe::testing::free_tcp_port();
  MosquittoBroker broker(dir.file("tls.conf"),
                         "per_listener_settings false\nallow_anonymous true\nlistener " + std::to_string(plain_port) +
                             " 127.0.0.1\nlistener " + std::to_string(tls_port) + " 127.0.0.1\ncafile " + d +
                             "/ca.pem\ncertfile " + d + "/server.pem\nkeyfile " + d + "/server.key\n",
                         {tls_port, plain_port});
  ASSERT_TRUE(broker.start());

  RingTap tap(dir);
  MqttConfig c = base_config(tls_port);
  c.tls = true;
  c.ca_file = d + "/ca.pem";
  c.payload = MqttPayload::kValue;
  c.topic_template = "sensors/+name";
  auto source = MqttSource::create(c, ring_target_factory(tap.ring()));
  ASSERT_TRUE(source) << source.error().message();
  ASSERT_TRUE((*source)->start());
  Publisher pub(plain_port);
  ASSERT_TRUE(pub.ok());
  ASSERT_TRUE(wait_subscribed(pub, tap, "sensors/secure", "42", "secure"));
  EXPECT_DOUBLE_EQ(tap.named("secure").at(0).value, 42);
  EXPECT_EQ((*source)->mqtt_stats().connects.load(), 1u);

  // A client trusting another CA never gets in (the handshake fails, counted).
  ASSERT_EQ(std::system(("cd " + d +
                         " && openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=other "
                         "-keyout other.key -out other.pem 2>/dev/null")
                            .c_str()),
            0);
  MqttConfig wrong = c;
  wrong.name = "wrong-ca";
  wrong.ca_file = d + "/other.pem";
  auto refused = MqttSource::create(wrong, ring_target_factory(tap.ring()));
  ASSERT_TRUE(refused) << refused.error().message();
  ASSERT_TRUE((*refused)->start());
  EXPECT_TRUE(wait_until([&] { return (*refused)->mqtt_stats().connect_failures.load() >= 2; }, 10000ms));
  EXPECT_EQ((*refused)->mqtt_stats().connects.load(), 0u);
}

// A broker that admits only a user from its password file (mosquitto_passwd):
// the source logs in with username/password and receives; the same source
// with a wrong password is refused at every attempt, counted, and receives
// nothing.
TEST(MqttSourceAuth, LogsInWithUsernameAndPasswordAndIsRefusedWithAWrongOne) {
  spdlog::default_logger()->set_level(spdlog::level::err);
  if (!MosquittoBroker::available() || ::access("/usr/bin/mosquitto_passwd", X_OK) != 0)
    GTEST_SKIP() << "needs mosquitto and mosquitto_passwd";
  ScratchDir dir;
  const std::string passwd = dir.file("passwd");
  ASSERT_EQ(std::system(("/usr/bin/mosquitto_passwd -b -c " + passwd + " sensor-gw 's3cret pass' 2>/dev/null").c_str()),
            0);
  const std::uint16_t port = ringpipe::testing::free_tcp_port();
  MosquittoBroker broker(
      dir.file("auth.conf"),
      "listener " + std::to_string(port) + " 127.0.0.1\nallow_anonymous false\npassword_file " + passwd + "\n", {port});
  ASSERT_TRUE(broker.start());

  RingTap tap(dir);
  MqttConfig c = base_config(port);
  c.payload = MqttPayload::kValue;
  c.topic_template = "sensors/+name";
  c.username = "sensor-gw";
  c.password = "s3cret pass";
  auto source = MqttSource::create(c, ring_target_factory(tap.ring()));
  ASSERT_TRUE(source) << source.error().message();
  ASSERT_TRUE((*source)->start());

  MqttConfig wrong = c;
  wrong.name = "wrong-password";
  wrong.password = "guess";
  auto refused = MqttSource::create(wrong, ring_target_factory(tap.ring()));
  ASSERT_TRUE(refused) << refused.error().message();
  ASSERT_TRUE((*refused)->start());

  // An anonymous publisher is turned away too: the broker really checks.
  Publisher anonymous(port);
  Publisher pub(port, "sensor-gw", "s3cret pass");
  ASSERT_TRUE(pub.ok());
  ASSERT_TRUE(wait_subscribed(pub, tap, "sensors/humidity", "61.5", "humidity"));
  EXPECT_DOUBLE_EQ(tap.named("humidity").at(0).value, 61.5);
  EXPECT_EQ((*source)->mqtt_stats().connects.load(), 1u);
  EXPECT_EQ((*source)->mqtt_stats().connected.load(), 1u);

  EXPECT_TRUE(wait_until([&] { return (*refused)->mqtt_stats().connect_failures.load() >= 2; }, 10000ms));
  EXPECT_EQ((*refused)->mqtt_stats().connects.load(), 0u);
  EXPECT_EQ((*refused)->mqtt_stats().connected.load(), 0u);
  // Refused at CONNACK, so this publish fails or goes nowhere; either way
  // nothing of it may reach the ring.
  if (anonymous.ok()) (void)anonymous.publish("sensors/intruder", "1", 0);
  std::this_thread::sleep_for(200ms);
  (*refused)->stop();
  (*source)->stop();
  tap.drain();
  EXPECT_EQ(tap.count("intruder"), 0u);
  // Every sample in the ring came through the logged-in source (the probes).
  EXPECT_EQ(tap.count("humidity"), tap.samples.size());
}

TEST(MqttSource, RefusesConfigsThatCannotWork) {
  MqttConfig c;
  c.topics = {"a/#"};
  c.payload = MqttPayload::kValue;
  auto none = [](void) -> Result<std::unique_ptr<BatchTarget>> { return invalid("unused"); };
  auto no_name = MqttSource::create(c, none);
  ASSERT_FALSE(no_name);
  EXPECT_NE(no_name.error().context.find("+name"), std::string::npos) << no_name.error().context;
  c.topic_template = "a/#/b";
  EXPECT_FALSE(MqttSource::create(c, none));
  c.topic_template = "a/+name";
  c.topics.clear();
  EXPECT_FALSE(MqttSource::create(c, none));
  // A filter the broker cannot take is refused here, not at every subscribe.
  for (const char* bad : {"a/b#", "a/#/b", "a\tb", ""}) {
    c.topics = {bad};
    const auto r = MqttSource::create(c, none);
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().context.find("is not an MQTT topic filter"), std::string::npos) << r.error().context;
  }
}

}  // namespace
}  // namespace ringpipe::ingest
