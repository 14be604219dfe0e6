#pragma once
// Persistence (sticky sessions, doc/configuration.md "Sticky sessions"): what a
// request says about the server its client sticks to, and what a response
// records of it. Two forms, as HAProxy has them:
//
// - stick rules: a key of the request (match) is looked up in a stick table
//   whose server_key names the server; once a server has answered, the keys of
//   store (from the request) and store_response (from the response) are written
//   with that server's name. Names, not positions, so reloads move nobody.
// - the cookie: the request's cookie carries the server's cookie value (insert:
//   weir's own cookie, optionally with dates for maxidle / maxlife; rewrite: the
//   application's cookie takes the value; prefix: the value goes in front of the
//   application's, "VALUE~theirs"); responses get the cookie set or rewritten.
//
// The backend (Backend::acquire) decides what a stuck client gets, from the
// server's state: ready or drain keep it, DOWN, maint and a missing server send
// it to the algorithm (stick_redispatch) or get a 503.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/config/config.h"
#include "worker/http/h1/http_codec.h"

namespace weir {

class SampleSource;
struct EditableHead;
class Server;

namespace persist {

// A server's cookie value: its `cookie:`, else its name, or with `dynamic` 16 hex
// digits of SHA-256 over the backend's dynamic_key (its name by default) and the
// server's name.
std::string server_cookie(const CookieConfig& c, std::string_view backend_name,
                          const ServerConfig& s);

// The persistence cookie of a request.
struct ClientCookie {
  bool found = false;    // the request carries the cookie, valid and not expired
  std::string value;     // the server's value it names
  int64_t first_s = -1;  // insert with dates: when the cookie was first set (unix s)
  int64_t last_s = -1;   // and when last refreshed; -1: no dates
  void clear() { *this = ClientCookie{}; }
};
// Reads the cookie of `c` from the request's Cookie fields (the first one named
// c.name). Ignored (found false): no value, a rewrite/prefix value without its
// part, dates that do not parse or lie more than a minute ahead, or an age past
// maxidle / maxlife at `now_s`.
void read_client_cookie(const CookieConfig& c, const http::MessageHead& h, int64_t now_s,
                        ClientCookie* out);
// A Cookie field's value as the server gets it: insert with indirect drops weir's
// cookie, prefix gives the application its own value back. False when nothing
// changes; *out empty with true: no cookie is left, the field goes.
bool request_cookie_for_server(const CookieConfig& c, std::string_view value, std::string* out);
// Does the request need this backend's cookie handling toward the server at all?
inline bool rewrites_request(const CookieConfig& c) {
  return !c.name.empty() &&
         ((c.mode == CookieMode::kInsert && c.indirect) || c.mode == CookieMode::kPrefix);
}

// The response of `server` gets the cookie (edits `e`, the response head as it
// will leave): insert sets weir's cookie unless the request's already named this
// server with fresh enough dates (and drops a Set-Cookie of that name the server
// wrote); rewrite and prefix change the application's Set-Cookie of that name.
// `host`: the request's Host (picks the Domain). True when `e` changed.
bool edit_response(const CookieConfig& c, const ClientCookie& req, const std::string& value,
                   std::string_view host, int64_t now_s, EditableHead& e);

// Would edit_response() change the response `h`? (An untouched one is not copied.)
bool response_needs_edit(const CookieConfig& c, const ClientCookie& req, const std::string& value,
                         const http::MessageHead& h, int64_t now_s);

// Unix seconds in base 36 (lower case), and back (-1: not such a number).
std::string base36(int64_t v);
int64_t from_base36(std::string_view s);

// Stick rules.
// The server_key (stick::name_id of a server's name) of the first matching
// rule's entry; 0: none.
uint32_t match(const std::vector<StickRule>& rules, SampleSource& ctx);
// A key to store once the server is known.
struct PendingStore {
  stick::Table* table;
  std::string key;
};
// The store keys of the request (response false) or of the response (true),
// appended to *out.
void collect_stores(const std::vector<StickRule>& rules, SampleSource& ctx, bool response,
                    std::vector<PendingStore>* out);
// Writes a server's name (`key`: its stick::name_id) into the entries (made when
// missing); an entry that names it already is only refreshed, and told to the
// peers agent again once half its expiry has gone.
void store(const std::vector<PendingStore>& stores, uint32_t key);

}  // namespace persist
}  // namespace weir
