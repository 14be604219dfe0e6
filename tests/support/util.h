#pragma once
// Small helpers shared by the test fixtures and the integration tests: ports, hashing,
// deterministic body content, running commands, polling, files.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/fd.h"

struct evp_md_ctx_st;  // OpenSSL's EVP_MD_CTX

namespace weir::test {

// weir's own RAII file descriptor.
using UniqueFd = weir::UniqueFd;

// Ignores SIGPIPE in this process (idempotent). Children started by run_command and
// WeirProcess get the default disposition back before exec.
void ignore_sigpipe();

// A TCP port free on 127.0.0.1 a moment ago, below the kernel's ephemeral range (so no
// outgoing connection takes it before the test binds it) and reserved against the other
// test processes for the life of this one.
uint16_t free_tcp_port();

// True if a TCP connection to host:port is accepted within timeout_ms (then closed at once).
bool can_connect(uint16_t port, const std::string& host = "127.0.0.1", int timeout_ms = 2000);

// Incremental SHA-256 (OpenSSL EVP). hex_final() returns the lowercase hex digest and resets
// the object so it can hash a new message.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(std::string_view data);
  void update(const void* data, size_t n);
  std::string hex_final();

 private:
  struct Deleter {
    void operator()(evp_md_ctx_st* ctx) const;
  };
  std::unique_ptr<evp_md_ctx_st, Deleter> ctx_;
};

std::string sha256_hex(std::string_view data);

// HTTP's optional white space (spaces and tabs) removed from both ends.
std::string_view trim_ows(std::string_view s);
// ASCII lower case.
std::string ascii_lower(std::string_view s);

// Deterministic body content: the byte at absolute offset i is 'a' + (i * 7 + i / 4093) % 26.
std::string pattern_bytes(size_t offset, size_t n);
// Same content written to dst[0..n) (for streaming without building big strings).
void fill_pattern(char* dst, size_t offset, size_t n);
// sha256_hex(pattern_bytes(0, n)), computed in slices and cached per n.
std::string pattern_sha256(size_t n);

struct CommandResult {
  int exit_code = -1;  // WEXITSTATUS, 128+signal if killed by a signal, -1 on timeout/spawn error
  std::string out;
  std::string err;
};
// fork/exec argv (argv[0] is looked up in PATH when it has no '/'), feeds stdin_data on stdin,
// captures stdout and stderr. On timeout the child's process group is SIGKILLed and
// exit_code is -1.
CommandResult run_command(const std::vector<std::string>& argv, int timeout_ms = 60000,
                          const std::string& stdin_data = "");

// Polls pred every poll_ms until it returns true (-> true) or timeout_ms passes (-> false;
// pred is evaluated one last time at the deadline).
bool wait_until(std::function<bool()> pred, int timeout_ms, int poll_ms = 20);

// Whole file content; throws std::runtime_error if it cannot be opened.
std::string read_file(const std::string& path);
// Creates/truncates path with data; throws std::runtime_error on failure.
void write_file(const std::string& path, std::string_view data);
// A new empty directory /tmp/weir-test-XXXXXX.
std::string make_temp_dir();
// rm -rf (errors ignored).
void remove_tree(const std::string& path);

// The last n lines of text (all of it if it has fewer lines).
std::string tail_lines(std::string_view text, size_t n);

// ASCII case-insensitive comparison.
bool iequals(std::string_view a, std::string_view b);

// The number of a "Name: 123" line of `show info` (and other answers made of
// such lines); -1 when there is none.
int64_t info_number(const std::string& text, const std::string& name);

// `show stat` CSV (header line "# pxname,svname,...") -> one map per row, keyed
// by column name.
std::vector<std::map<std::string, std::string>> parse_stat_csv(const std::string& text);

}  // namespace weir::test
