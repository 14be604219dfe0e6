#include "common/base/version.h"

#ifndef WEIR_VERSION
#error "WEIR_VERSION must be defined by the build"
#endif

namespace weir {

const char* version() {
  return WEIR_VERSION;
}

}  // namespace weir
