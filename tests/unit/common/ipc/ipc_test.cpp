#include "common/ipc/ipc.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "common/ipc/legacy_text.h"
#include "common/ipc/state_text.h"

namespace weir::ipc {
namespace {

TEST(IpcChannel, MessagesAndFdsCrossARealSocketpair) {
  Channel a, b;
  ASSERT_TRUE(make_pair(&a, &b));
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  proto::Envelope hello;
  hello.mutable_hello()->set_generation(7);
  ASSERT_TRUE(a.send(hello));
  proto::Envelope map;
  map.mutable_listener_map()->add_keys("pipe-read");
  map.mutable_listener_map()->add_keys("pipe-write");
  ASSERT_TRUE(a.send(map, {p[0], p[1]}));
  auto m1 = b.receive();
  ASSERT_TRUE(m1);
  ASSERT_EQ(m1->env.body_case(), proto::Envelope::kHello);
  EXPECT_EQ(m1->env.hello().generation(), 7);
  EXPECT_EQ(m1->env.protocol(), kProtocolVersion);
  EXPECT_TRUE(m1->fds.empty());
  auto m2 = b.receive();
  ASSERT_TRUE(m2);
  ASSERT_EQ(m2->env.body_case(), proto::Envelope::kListenerMap);
  ASSERT_EQ(m2->env.listener_map().keys_size(), 2);
  EXPECT_EQ(m2->env.listener_map().keys(1), "pipe-write");
  ASSERT_EQ(m2->fds.size(), 2u);
  // The received descriptors are new numbers for the same pipe.
  ASSERT_EQ(::write(m2->fds[1].get(), "x", 1), 1);
  char c = 0;
  ASSERT_EQ(::read(p[0], &c, 1), 1);
  EXPECT_EQ(c, 'x');
  ::close(p[0]);
  ::close(p[1]);
}

TEST(IpcChannel, LargePayloadArrivesWhole) {
  Channel a, b;
  ASSERT_TRUE(make_pair(&a, &b));
  std::string big(3 << 20, 'q');
  big[12345] = 'z';
  proto::Envelope conf;
  conf.mutable_configuration()->set_validated(big);
  std::thread sender([&] { a.send(conf); });
  auto m = b.receive();
  sender.join();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->env.configuration().validated(), big);
}

TEST(IpcChannel, PeerCloseAndAnUnknownFrameFormat) {
  Channel a, b;
  ASSERT_TRUE(make_pair(&a, &b));
  a.close();
  EXPECT_FALSE(b.receive());

  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  Channel reader{UniqueFd(sv[0])};
  const char bogus[12] = {9, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0};  // format 9
  ASSERT_EQ(::write(sv[1], bogus, sizeof bogus), 12);
  EXPECT_FALSE(reader.receive());
  EXPECT_NE(reader.error().find("frame format 9, which this weir does not know"), std::string::npos)
      << reader.error();
  EXPECT_FALSE(reader.valid());
  ::close(sv[1]);
}

// A channel answers in the format its peer writes: a peer from before Protobuf
// gets text back, and its text arrives as the same envelopes.
TEST(IpcChannel, AnswersATextPeerInText) {
  Channel a, b;
  ASSERT_TRUE(make_pair(&a, &b));
  a.set_peer_format(kFrameText);
  proto::Envelope cmd;
  cmd.mutable_command()->set_line("show info");
  ASSERT_TRUE(a.send(cmd));
  auto m = b.receive();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->frame, kFrameText);
  EXPECT_EQ(m->env.protocol(), 1u);
  EXPECT_EQ(m->env.command().line(), "show info");
  EXPECT_EQ(b.peer_format(), kFrameText);
  proto::Envelope reply;
  reply.mutable_reply()->set_text("Pid: 1\n");
  ASSERT_TRUE(b.send(reply));
  auto r = a.receive();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->frame, kFrameText);
  EXPECT_EQ(r->env.reply().text(), "Pid: 1\n");
  // The upgrade state has no text form.
  proto::Envelope up;
  up.mutable_upgrade_state()->mutable_counts()->set_newest(1);
  EXPECT_FALSE(a.send(up));
  EXPECT_EQ(a.error(), "the upgrade state message has no text form");
}

TEST(LegacyText, EveryMessageOfTheTextProtocolRoundTrips) {
  std::vector<proto::Envelope> all(10);
  all[0].mutable_hello()->set_generation(12);
  all[0].mutable_hello()->set_ticket_secret(std::string("\x00\xff\x10", 3));
  all[1].mutable_configuration()->set_source_name("/etc/weir/weir.yaml");
  all[1].mutable_configuration()->set_validated("global:\n  threads: 1\n");
  all[2].mutable_listener_map()->add_keys("0.0.0.0:80");
  all[2].mutable_listener_map()->add_keys("api:/run/weir.sock");
  all[3].mutable_ready()->set_pid(42);
  all[3].mutable_ready()->set_threads(4);
  all[3].mutable_ready()->set_version("1.0.0");
  all[4].mutable_drain();
  all[5].mutable_stop();
  all[6].mutable_failed()->set_reason("weir.yaml:3:5: bad");
  all[7].mutable_command()->set_line("show stat");
  all[8].mutable_reply()->set_text("a\nb\n");
  proto::ServerState* s = all[9].mutable_state()->add_servers();
  s->set_backend("be");
  s->set_server("s1");
  s->set_admin_state("maint");
  s->set_weight(3);
  s->set_configured_weight(1);
  s->set_address("10.0.0.2:80");
  s->set_configured_address("10.0.0.1:80");
  s->set_down(true);
  s->set_agent_down(true);
  for (proto::Envelope& env : all) {
    SCOPED_TRACE(body_name(env));
    uint16_t type = 0;
    std::string payload, error;
    ASSERT_TRUE(legacy_text::encode(env, &type, &payload));
    proto::Envelope back;
    ASSERT_TRUE(legacy_text::decode(type, payload, &back, &error)) << error;
    EXPECT_EQ(back.protocol(), 1u);
    env.set_protocol(1);
    EXPECT_EQ(back.SerializeAsString(), env.SerializeAsString()) << back.DebugString();
  }
}

TEST(StateText, TheStateFileFormatKeepsEveryField) {
  const std::string text =
      "be s1 maint 3 1 10.0.0.2:80 10.0.0.1:80 down agent-down\n"
      "be s2 ready 1 1 10.0.0.3:80 10.0.0.3:80 up\n"
      "a line that is not a server\n";
  proto::StateHandover st = server_states_from_text(text);
  ASSERT_EQ(st.servers_size(), 2);
  EXPECT_EQ(st.servers(0).admin_state(), "maint");
  EXPECT_TRUE(st.servers(0).agent_down());
  EXPECT_FALSE(st.servers(1).down());
  EXPECT_EQ(server_states_to_text(st), text.substr(0, text.find("a line")));
}

// The state a master from before Protobuf hands to its re-executed successor.
TEST(UpgradeState, TheTextStateOfAnOlderMasterIsRead) {
  std::string config = "global:\n  threads: 1\n";
  std::string states = "be s1 drain 1 1 127.0.0.1:1 127.0.0.1:1 up\n";
  std::string text =
      "generation 5\nserving 4\nreloads 4\nstart_ms 1000\ncrash_streak 0\n"
      "crashes 1\npidfile /run/weir.pid\nlistener 7 0.0.0.0:80\n"
      "cli 8 /run/weir-master.sock\nwaiter 9 3\n"
      "worker 100 4 10 1 0 5000 1.0.0\nworker 101 5 11 0 0 6000 -\n"
      "ticket_secret 00ff 1\nserver_state " +
      std::to_string(states.size()) + "\n" + states + "config_bytes " +
      std::to_string(config.size()) + "\n" + config;
  proto::UpgradeState st;
  std::string error;
  ASSERT_TRUE(decode_upgrade_state(text, &st, &error)) << error;
  EXPECT_EQ(st.counts().newest(), 5);
  EXPECT_EQ(st.counts().serving(), 4);
  EXPECT_EQ(st.counts().crashes(), 1);
  EXPECT_EQ(st.start_ms(), 1000);
  EXPECT_EQ(st.pidfile(), "/run/weir.pid");
  ASSERT_EQ(st.listeners_size(), 1);
  EXPECT_EQ(st.listeners(0).fd(), 7);
  EXPECT_EQ(st.listeners(0).key(), "0.0.0.0:80");
  EXPECT_EQ(st.cli().path(), "/run/weir-master.sock");
  ASSERT_EQ(st.waiters_size(), 1);
  EXPECT_EQ(st.waiters(0).id(), 3u);
  ASSERT_EQ(st.workers_size(), 2);
  EXPECT_EQ(st.workers(0).version(), "1.0.0");
  EXPECT_TRUE(st.workers(0).ready());
  EXPECT_EQ(st.workers(0).protocol(), 1u);
  EXPECT_EQ(st.workers(1).version(), "");
  EXPECT_EQ(st.ticket_secret().secret(), std::string("\x00\xff", 2));
  EXPECT_TRUE(st.ticket_secret().from_file());
  ASSERT_EQ(st.server_state().servers_size(), 1);
  EXPECT_EQ(st.server_state().servers(0).admin_state(), "drain");
  EXPECT_EQ(st.config_bytes(), config);

  EXPECT_FALSE(decode_upgrade_state("generation x\n", &st, &error));
  EXPECT_NE(error.find("unreadable line"), std::string::npos) << error;
  EXPECT_FALSE(decode_upgrade_state("generation 3\nserver_state 999\nab", &st, &error));
  EXPECT_FALSE(decode_upgrade_state("", &st, &error));
  EXPECT_EQ(error, "not a weir master's state");
}

TEST(UpgradeState, TheProtobufStateRoundTripsAndNeedsAGeneration) {
  proto::Envelope env;
  proto::UpgradeState* st = env.mutable_upgrade_state();
  st->mutable_counts()->set_newest(9);
  st->add_workers()->set_pid(77);
  std::string frame, error;
  ASSERT_TRUE(encode_frame(env, kFrameProtobuf, 0, &frame, &error)) << error;
  proto::UpgradeState back;
  ASSERT_TRUE(decode_upgrade_state(frame, &back, &error)) << error;
  EXPECT_EQ(back.workers(0).pid(), 77);
  st->mutable_counts()->set_newest(0);
  ASSERT_TRUE(encode_frame(env, kFrameProtobuf, 0, &frame, &error)) << error;
  EXPECT_FALSE(decode_upgrade_state(frame, &back, &error));
  EXPECT_EQ(error, "the previous master's state names no generation");
}

}  // namespace
}  // namespace weir::ipc
