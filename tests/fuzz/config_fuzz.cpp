// libFuzzer target: the configuration loader must turn any bytes into either a
// configuration or a list of positioned errors, never a crash or a hang.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  weir::LoadResult r = weir::load_config_text(text, "fuzz.yaml");
  if (!r.config && r.errors.empty()) std::abort();  // a refusal always says why
  if (r.config && !r.errors.empty()) std::abort();
  return 0;
}
