// libFuzzer target: the condition language. Any bytes, read as a test (an
// `acls:` entry), a condition over two named tests, a sample expression and a
// value template, must parse or be refused with a position inside the text,
// never crash or hang; what parses must evaluate against a small request.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/cond/condition.h"

namespace {

using namespace weir::cond;

struct Ctx final : FetchContext {
  void fetch(const FetchSpec& f, std::vector<Sample>& out) override {
    Sample s;
    switch (f.type()) {
      case Type::kIp:
        s.type = Type::kIp;
        s.ip = *parse_ip("10.1.2.3");
        break;
      case Type::kInt:
      case Type::kBool:
        s.type = f.type();
        s.num = 200;
        break;
      default:
        s.str = "/api/V1/items?id=3,x";
        break;
    }
    out.push_back(s);
    if (f.def->occurrence) out.push_back(s);  // several values
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (text.find("-f") != std::string_view::npos || text.find("map(") != std::string_view::npos) {
    return 0;  // files: not the parser's business here (and they would be read)
  }
  FileCache files;
  ParseError err;
  Ctx ctx;
  std::vector<Sample> scratch;
  NamedTests names;
  auto t = parse_test(text, files, &err);
  if (t) {
    t->evaluate(ctx, scratch);
    names["a"] = t;
  } else if (err.offset > size) {
    std::abort();  // an error points inside the text
  }
  names["b"] = parse_test("path_beg /api/", files, &err);
  if (auto c = parse_condition(text, names, files, &err)) {
    c->evaluate(ctx);
  } else if (err.offset > size) {
    std::abort();
  }
  if (auto s = parse_sample(text, files, &err)) {
    s->evaluate(ctx);
  } else if (err.offset > size) {
    std::abort();
  }
  if (auto v = parse_template(text, files, &err)) {
    v->render(ctx);
  } else if (err.offset > size) {
    std::abort();
  }
  return 0;
}
