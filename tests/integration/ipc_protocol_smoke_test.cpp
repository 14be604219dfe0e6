// The messages between master and worker, seen from the worker's side: the
// test plays the master on a socketpair, starts `weir --worker 3` as the
// master does, and writes what a real master, an older one (text, before
// Protobuf), a newer one (fields and messages this weir does not know) or a
// broken one would write. A worker either starts or says why it cannot, in
// one line, and exits 1; it never crashes.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <vector>

#include "common/base/net.h"
#include "common/config/config.h"
#include "common/ipc/ipc.h"
#include "tests/support/http_client.h"
#include "tests/support/launcher.h"
#include "tests/support/origin.h"
#include "tests/support/util.h"
#include "tests/support/weir_config.h"

namespace weir::test {
namespace {

// A frame as ipc.h describes it, with any format, type and payload.
std::string raw_frame(uint16_t format, uint16_t type, std::string_view payload,
                      uint16_t fd_count = 0) {
  std::string out(ipc::kFrameHeaderSize, '\0');
  auto put16 = [&out](size_t at, uint16_t v) {
    out[at] = static_cast<char>(v & 0xff);
    out[at + 1] = static_cast<char>(v >> 8);
  };
  put16(0, format);
  put16(2, type);
  put16(4, fd_count);
  uint32_t len = static_cast<uint32_t>(payload.size());
  for (int i = 0; i < 4; ++i) out[8 + i] = static_cast<char>((len >> (8 * i)) & 0xff);
  out.append(payload);
  return out;
}

// Fields a newer weir might add: field 99 (varint) and field 100 (bytes).
const std::string kUnknownFields = std::string("\x98\x06\x01\xa2\x06\x03xyz", 9);

class IpcProtocol : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = make_temp_dir(); }
  void TearDown() override {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    remove_tree(dir_);
  }

  // Starts `weir --worker 3` on one end of a new channel; the test keeps the other.
  void start_worker() {
    ipc::Channel worker_end;
    ASSERT_TRUE(ipc::make_pair(&master_, &worker_end));
    log_ = dir_ + "/worker.log";
    const std::string binary = weir_binary();
    pid_ = ::fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      if (worker_end.fd() == 3) {
        ::fcntl(3, F_SETFD, 0);
      } else {
        ::dup2(worker_end.fd(), 3);
      }
      int out = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ::dup2(out, 1);
      ::dup2(out, 2);
      ::execl(binary.c_str(), binary.c_str(), "--worker", "3", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    worker_end.close();
  }

  void write_raw(const std::string& bytes, const std::vector<int>& fds = {}) {
    iovec iov{const_cast<char*>(bytes.data()), bytes.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    std::vector<char> control;
    if (!fds.empty()) {
      control.resize(CMSG_SPACE(sizeof(int) * fds.size()));
      msg.msg_control = control.data();
      msg.msg_controllen = control.size();
      cmsghdr* cm = CMSG_FIRSTHDR(&msg);
      cm->cmsg_level = SOL_SOCKET;
      cm->cmsg_type = SCM_RIGHTS;
      cm->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
      std::memcpy(CMSG_DATA(cm), fds.data(), sizeof(int) * fds.size());
    }
    ASSERT_EQ(::sendmsg(master_.fd(), &msg, MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size()));
  }

  // The worker's exit code (-1: killed by a signal, which fails the test).
  int wait_exit() {
    int status = 0;
    EXPECT_EQ(::waitpid(pid_, &status, 0), pid_);
    pid_ = 0;
    EXPECT_TRUE(WIFEXITED(status)) << "signal " << WTERMSIG(status) << "\n" << read_file(log_);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  // A configuration with one http frontend on a free port, in front of `origin`,
  // and that frontend's listening socket, bound as the master binds it.
  struct Setup {
    std::string yaml;
    std::string key;
    UniqueFd fd;
    uint16_t port = 0;
  };
  Setup make_setup(uint16_t origin_port) {
    Setup s;
    ProxySpec spec;
    spec.servers = {"127.0.0.1:" + std::to_string(origin_port)};
    spec.threads = 1;
    s.yaml = proxy_yaml(spec);
    s.port = spec.port;
    LoadResult r = load_config_text(s.yaml, "weir.yaml");
    EXPECT_TRUE(r.config);
    if (!r.config) return s;
    const BindConfig& b = r.config->frontends.at(0).binds.at(0);
    s.key = b.key();
    std::string error;
    s.fd = net::listen_tcp(b.addr, b.backlog, b.v6only, &error);
    EXPECT_TRUE(s.fd) << error;
    return s;
  }

  std::string dir_;
  std::string log_;
  pid_t pid_ = 0;
  ipc::Channel master_;
};

proto::Envelope hello(int generation) {
  proto::Envelope env;
  env.mutable_hello()->set_generation(generation);
  env.mutable_hello()->set_version("test-master");
  return env;
}

TEST_F(IpcProtocol, AWorkerStartsFromTheMastersMessagesAndIgnoresWhatItDoesNotKnow) {
  // A newer master: every message carries fields this weir has never heard
  // of, and an extra message of a kind it does not know comes before the
  // listeners. The worker starts, serves, and answers a command.
  OriginServer origin("o1");
  Setup s = make_setup(origin.port());
  start_worker();
  auto with_unknown = [](proto::Envelope env) {
    env.set_protocol(ipc::kProtocolVersion + 5);
    return raw_frame(ipc::kFrameProtobuf, 0, env.SerializeAsString() + kUnknownFields);
  };
  write_raw(with_unknown(hello(3)));
  proto::Envelope conf;
  conf.mutable_configuration()->set_source_name("weir.yaml");
  conf.mutable_configuration()->set_validated(s.yaml);
  write_raw(with_unknown(conf));
  // An envelope whose body is field 40, a message from the future.
  write_raw(raw_frame(ipc::kFrameProtobuf, 40, std::string("\x08\x09\xc2\x02\x02\x08\x01", 7)));
  proto::Envelope map;
  map.mutable_listener_map()->add_keys(s.key);
  write_raw(raw_frame(ipc::kFrameProtobuf, 13, map.SerializeAsString() + kUnknownFields, 1),
            {s.fd.get()});

  std::optional<ipc::Message> ready = master_.receive();
  ASSERT_TRUE(ready) << master_.error() << "\n" << read_file(log_);
  ASSERT_EQ(ready->env.body_case(), proto::Envelope::kReady) << read_file(log_);
  EXPECT_EQ(ready->env.protocol(), ipc::kProtocolVersion);
  EXPECT_EQ(ready->env.ready().pid(), pid_);
  EXPECT_EQ(ready->env.ready().threads(), 1u);
  EXPECT_FALSE(ready->env.ready().build_id().empty());
  EXPECT_EQ(ready->frame, ipc::kFrameProtobuf);

  auto r = http_get(s.port, "/");
  ASSERT_TRUE(r) << read_file(log_);
  EXPECT_EQ(r->status, 200);

  proto::Envelope cmd;
  cmd.mutable_command()->set_line("show info");
  ASSERT_TRUE(master_.send(cmd));
  std::optional<ipc::Message> reply;
  // The worker may publish its server states first.
  while ((reply = master_.receive()) && reply->env.body_case() == proto::Envelope::kState) {
  }
  ASSERT_TRUE(reply) << read_file(log_);
  ASSERT_EQ(reply->env.body_case(), proto::Envelope::kReply);
  EXPECT_NE(reply->env.reply().text().find("Pid: " + std::to_string(pid_)), std::string::npos)
      << reply->env.reply().text();

  proto::Envelope stop;
  stop.mutable_stop();
  ASSERT_TRUE(master_.send(stop));
  EXPECT_EQ(wait_exit(), 0);
}

TEST_F(IpcProtocol, AWorkerAnswersAMasterFromBeforeProtobufInText) {
  // The master of the commit before Protobuf writes text frames (format 1): the
  // worker of a package upgrade that it respawns reads them and answers in text.
  OriginServer origin("o1");
  Setup s = make_setup(origin.port());
  start_worker();
  write_raw(raw_frame(ipc::kFrameText, 1, "generation=4\nticket_secret=00112233\n"));
  write_raw(raw_frame(ipc::kFrameText, 2, std::string("weir.yaml") + '\0' + s.yaml));
  write_raw(raw_frame(ipc::kFrameText, 10, "be web1 ready 1 1 127.0.0.1:1 127.0.0.1:1 up\n"));
  write_raw(raw_frame(ipc::kFrameText, 3, s.key + "\n", 1), {s.fd.get()});
  // The answer is text: read it raw.
  char buf[4096];
  ssize_t n = 0;
  ASSERT_TRUE(wait_until(
      [&] {
        n = ::recv(master_.fd(), buf, sizeof buf, MSG_DONTWAIT);
        return n > 0;
      },
      20000))
      << read_file(log_);
  ASSERT_GE(n, static_cast<ssize_t>(ipc::kFrameHeaderSize));
  EXPECT_EQ(buf[0], 1) << "frame format";
  EXPECT_EQ(buf[2], 4) << "text type 4 is ready";
  std::string payload(buf + ipc::kFrameHeaderSize, static_cast<size_t>(n) - ipc::kFrameHeaderSize);
  EXPECT_EQ(payload.rfind("pid=" + std::to_string(pid_) + " threads=1 version=", 0), 0u) << payload;
  auto r = http_get(s.port, "/");
  ASSERT_TRUE(r) << read_file(log_);
  EXPECT_EQ(r->status, 200);
  write_raw(raw_frame(ipc::kFrameText, 6, ""));  // stop
  EXPECT_EQ(wait_exit(), 0);
}

TEST_F(IpcProtocol, AHelloWithoutAGenerationIsRefusedInOneLine) {
  start_worker();
  ASSERT_TRUE(master_.send(hello(0)));
  std::optional<ipc::Message> answer = master_.receive();
  ASSERT_TRUE(answer) << read_file(log_);
  ASSERT_EQ(answer->env.body_case(), proto::Envelope::kFailed);
  EXPECT_EQ(answer->env.failed().reason(), "the master's hello names no generation");
  EXPECT_EQ(wait_exit(), 1);
}

TEST_F(IpcProtocol, AListenerMapThatDoesNotMatchItsSocketsIsRefused) {
  OriginServer origin("o1");
  Setup s = make_setup(origin.port());
  start_worker();
  ASSERT_TRUE(master_.send(hello(2)));
  proto::Envelope conf;
  conf.mutable_configuration()->set_source_name("weir.yaml");
  conf.mutable_configuration()->set_validated(s.yaml);
  ASSERT_TRUE(master_.send(conf));
  proto::Envelope map;
  map.mutable_listener_map()->add_keys(s.key);
  map.mutable_listener_map()->add_keys("127.0.0.1:1");
  ASSERT_TRUE(master_.send(map, {s.fd.get()}));
  std::optional<ipc::Message> answer = master_.receive();
  ASSERT_TRUE(answer) << read_file(log_);
  ASSERT_EQ(answer->env.body_case(), proto::Envelope::kFailed);
  EXPECT_EQ(answer->env.failed().reason(),
            "the master's listener map names 2 socket(s) but passed 1");
  EXPECT_EQ(wait_exit(), 1);
}

// A worker started by a master that sends it a ticket secret it cannot decode
// says so on its channel and exits 1, as for any other reason it cannot start.
// (Its hex decoder used std::stoi: the first non-digit threw, and the worker
// died of an uncaught exception without a word to its master.) Only the text
// hello of a master from before Protobuf carries the secret in hexadecimal.
TEST_F(IpcProtocol, AWorkerGivenABadTicketSecretSaysWhyInsteadOfCrashing) {
  start_worker();
  write_raw(raw_frame(ipc::kFrameText, 1, "generation=7\nticket_secret=00zz\n"));
  int code = wait_exit();
  EXPECT_EQ(code, 1);
  EXPECT_NE(read_file(log_).find("the master sent a ticket secret that is not hexadecimal"),
            std::string::npos)
      << read_file(log_);
}

TEST_F(IpcProtocol, BytesThatAreNotAMessageEndTheWorkerWithAClearLine) {
  struct Case {
    std::string bytes;
    std::string says;
  };
  const Case cases[] = {
      {raw_frame(7, 1, "x"), "frame format 7, which this weir does not know"},
      {raw_frame(ipc::kFrameProtobuf, 10, "\xff\xff\xff"), "a message that does not decode"},
      {raw_frame(ipc::kFrameText, 77, "?"), "a text message of unknown type 77"},
      {raw_frame(ipc::kFrameProtobuf, 10, "", 0) + std::string("\x02\x00\x00\x00", 4) +
           std::string(4, '\0') + std::string("\x00\x00\x00\x10", 4),
       "message too large"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.says);
    start_worker();
    write_raw(c.bytes);
    EXPECT_EQ(wait_exit(), 1);
    std::string log = read_file(log_);
    EXPECT_NE(log.find("lost the master before start-up completed: "), std::string::npos) << log;
    EXPECT_NE(log.find(c.says), std::string::npos) << log;
    master_.close();
  }
}

}  // namespace
}  // namespace weir::test
